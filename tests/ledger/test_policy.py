"""The public policy: windows, halving, the cap, and a split that creates or loses nothing."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparecycles.ledger.canonical import canonical_json, to_us
from sparecycles.ledger.policy import (
    DEFAULT_PARAMS,
    PolicyError,
    PolicyParams,
    PolicyRecord,
    Schedule,
    split_pro_rata,
)
from sparecycles.ledger.units import MICRO

from .conftest import GENESIS, TEST_POLICY


def schedule(*extra: PolicyRecord) -> Schedule:
    return Schedule([PolicyRecord(1, 0, to_us(GENESIS), TEST_POLICY), *extra])


def brute_force(sched: Schedule, epochs: int) -> list[int]:
    emitted, out = 0, []
    for i in range(epochs):
        amount = sched.emission(i, emitted_before=emitted)
        out.append(amount)
        emitted += amount
    return out


def test_published_defaults():
    assert DEFAULT_PARAMS == PolicyParams(epoch_seconds=86_400,
                                          initial_emission_micro=14_400 * MICRO,
                                          halving_epochs=730,
                                          max_supply_micro=21_000_000 * MICRO)
    sched = Schedule([PolicyRecord(1, 0, to_us(GENESIS), DEFAULT_PARAMS)])
    points = sched.projection()
    assert points[0]["emission"] == 14_400 * MICRO
    assert points[1] == {"epoch": 730, "start_us": to_us(GENESIS) + 730 * 86_400 * 10**6,
                         "emission": 7_200 * MICRO, "supply_before": 10_512_000 * MICRO}
    assert points[-1]["emission"] == 0
    assert points[-1]["supply_before"] == 21_000_000 * MICRO


def test_halving_and_cap():
    # 1000 x4, 500 x4, 250 x2 = 6500; the 6600 cap leaves 100 for epoch 10, then nothing.
    assert brute_force(schedule(), 13) == [1000 * MICRO] * 4 + [500 * MICRO] * 4 + \
        [250 * MICRO, 250 * MICRO, 100 * MICRO, 0, 0]


def test_windows_are_aligned_from_genesis():
    sched = schedule()
    assert sched.window(0).starts_at == GENESIS
    assert sched.window(5).start_us == to_us(GENESIS) + 5 * 3600 * 10**6
    assert sched.epoch_at(to_us(GENESIS) - 1) == -1
    assert sched.epoch_at(to_us(GENESIS)) == 0
    assert sched.epoch_at(to_us(GENESIS) + 3600 * 10**6 - 1) == 0
    assert sched.epoch_at(to_us(GENESIS) + 3600 * 10**6) == 1


def test_a_later_version_changes_length_and_emission_from_its_epoch():
    start_10 = to_us(GENESIS) + 10 * 3600 * 10**6
    v2 = PolicyRecord(2, 10, start_10, PolicyParams(epoch_seconds=60, initial_emission_micro=7,
                                                    halving_epochs=100,
                                                    max_supply_micro=10**12))
    sched = schedule(v2)
    assert sched.governing(9).version == 1 and sched.governing(10).version == 2
    assert sched.window(11).start_us == start_10 + 60 * 10**6
    assert sched.epoch_at(start_10 + 90 * 10**6) == 11
    assert brute_force(sched, 12)[10:] == [7, 7]
    assert sched.projection() == [p for p in sched.projection()]  # deterministic


@given(st.lists(st.integers(min_value=1, max_value=1_000), min_size=1, max_size=8))
def test_projection_matches_epoch_by_epoch_replay(emissions):
    params = PolicyParams(epoch_seconds=60, initial_emission_micro=emissions[0],
                          halving_epochs=len(emissions), max_supply_micro=sum(emissions) * 3)
    sched = Schedule([PolicyRecord(1, 0, 0, params)])
    replay = brute_force(sched, 2_000)
    points = sched.projection()
    for a, b in zip(points, points[1:], strict=False):
        assert all(replay[i] == a["emission"] for i in range(a["epoch"], b["epoch"]))
    assert all(x == 0 for x in replay[points[-1]["epoch"]:])


@pytest.mark.parametrize("bad", [
    dict(epoch_seconds=0), dict(halving_epochs=0), dict(max_supply_micro=-1),
    dict(initial_emission_micro=7000 * MICRO), dict(epoch_seconds=1.5),
    dict(max_supply_micro=2**53),
])
def test_invalid_policies_are_refused(bad):
    values = {**TEST_POLICY.__dict__, **bad}
    with pytest.raises(PolicyError):
        PolicyParams(**values).check()


credits = st.lists(st.tuples(st.from_regex(r"volunteer-[1-9][0-9]{0,3}", fullmatch=True),
                             st.integers(min_value=0, max_value=10**12)),
                   max_size=30, unique_by=lambda c: c[0])


@given(total=st.integers(min_value=0, max_value=10**15), credits=credits)
def test_split_creates_and_loses_nothing_and_is_fair(total, credits):
    shares = split_pro_rata(total, credits)
    positive = {code: c for code, c in credits if c > 0}
    whole = sum(positive.values())
    if not positive:
        assert shares == {}
        return
    assert sum(shares.values()) == total
    assert all(amount > 0 for amount in shares.values())
    for code, credit in positive.items():
        exact = Fraction(total * credit, whole)
        assert abs(shares.get(code, 0) - exact) < 1
    # The order of the input never matters.
    assert split_pro_rata(total, list(reversed(credits))) == shares


def test_split_remainder_goes_to_largest_fractions_then_by_code():
    # 10 split 1:1:1 -> 3 each + 1 left; all fractions equal -> lowest code gets it.
    assert split_pro_rata(10, [("volunteer-2", 5), ("volunteer-1", 5), ("volunteer-3", 5)]) == \
        {"volunteer-1": 4, "volunteer-2": 3, "volunteer-3": 3}
    # 10 split 1:2 -> 3.33, 6.67 -> the larger fraction (volunteer-9) gets the extra one.
    assert split_pro_rata(10, [("volunteer-1", 1), ("volunteer-9", 2)]) == \
        {"volunteer-1": 3, "volunteer-9": 7}


def test_canonical_json_rejects_floats_and_sorts_keys():
    assert canonical_json({"b": 1, "a": [2, "é", None]}) == '{"a":[2,"é",null],"b":1}'.encode()
    with pytest.raises(TypeError):
        canonical_json({"a": 1.0})
    with pytest.raises(TypeError):
        canonical_json({"a": True})
