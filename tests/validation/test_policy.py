"""The pure decisions: Sarmenta's credibility, result groups, the canonical choice."""

import math

import pytest

from sparecycles.scheduler.validators import exact_equal
from sparecycles.validation.policy import (
    Voter,
    canonical_choose,
    device_credibility,
    group_credibilities,
    result_groups,
    spot_check_rate,
)

NEW = Voter(credibility=device_credibility(confirmed=0, assumed_share=0.3))
VETERAN = Voter(credibility=device_credibility(confirmed=20, assumed_share=0.3),
                established=True)


def test_credibility_starts_at_one_minus_f_and_grows_with_checks_survived():
    assert device_credibility(confirmed=0, assumed_share=0.3) == pytest.approx(0.7)
    values = [device_credibility(confirmed=k, assumed_share=0.3) for k in range(10)]
    assert values == sorted(values) and values[-1] < 1
    # Sarmenta's 1 - f/(k e) for large k.
    assert device_credibility(confirmed=1000, assumed_share=0.3) == pytest.approx(
        1 - 0.3 / (1000 * math.e), rel=1e-3)
    assert device_credibility(confirmed=5, assumed_share=0.3, suspect=True) < 0.5


def test_group_credibility_is_a_probability_over_the_groups():
    [alone] = group_credibilities([[0.7]])
    assert alone == pytest.approx(0.7 / (0.7 + 0.3))
    split = group_credibilities([[0.9, 0.9], [0.7]])
    assert split[0] > 0.9 > split[1] and sum(split) < 1


def test_two_new_devices_never_validate_each_other_however_many_agree():
    for count in (2, 3, 6):
        verdict = canonical_choose([{"x": 1}] * count, [NEW] * count, exact_equal,
                                   min_quorum=2, threshold=0.5)
        assert verdict.choice is None
        assert "established" in verdict.reason


def test_an_established_device_and_a_new_one_settle_a_quorum():
    verdict = canonical_choose([{"x": 1}, {"x": 1}], [VETERAN, NEW], exact_equal,
                               min_quorum=2, threshold=0.99)
    assert verdict.choice is not None and verdict.choice.group == [0, 1]
    assert verdict.choice.credibility >= 0.99


def test_a_credible_minority_beats_a_larger_group_of_new_devices():
    # Two new colluders agree; one veteran and one new device agree on something else.
    outputs = [{"x": 666}, {"x": 666}, {"x": 1}, {"x": 1}]
    verdict = canonical_choose(outputs, [NEW, NEW, VETERAN, NEW], exact_equal,
                               min_quorum=2, threshold=0.5)
    assert verdict.choice is not None and verdict.choice.group == [2, 3]


def test_below_the_threshold_more_replicas_are_needed():
    barely = Voter(credibility=device_credibility(confirmed=2, assumed_share=0.3),
                   established=True)
    verdict = canonical_choose([{"x": 1}, {"x": 1}], [barely, NEW], exact_equal,
                               min_quorum=2, threshold=0.99)
    assert verdict.choice is None and "below the threshold" in verdict.reason
    assert verdict.best_size == 2


def test_quorum_one_keeps_the_plain_majority_rule():
    verdict = canonical_choose([{"x": 1}], [NEW], exact_equal, min_quorum=1, threshold=0.99)
    assert verdict.choice is not None


def test_a_comparator_that_raises_is_not_swallowed():
    def broken(a, b):
        raise RuntimeError("validator bug")

    with pytest.raises(RuntimeError):
        result_groups([{"x": 1}, {"x": 2}], broken)


def test_spot_check_rate_falls_with_credibility_to_a_floor():
    rates = [spot_check_rate(confirmed=k, new_rate=0.5, floor=0.02) for k in range(40)]
    assert rates[0] == 0.5 and rates == sorted(rates, reverse=True) and rates[-1] == 0.02
    assert spot_check_rate(confirmed=40, new_rate=0.5, floor=0.02, app_rate=0.1) == 0.1
