"""credit.normalisation: measured work, normalised by device, robust to liars and outliers."""

import random

from hypothesis import given
from hypothesis import strategies as st

from sparecycles.credit.normalisation import (
    MAX_GRANT_MICRO,
    MIN_RATIO,
    Claim,
    Sample,
    bounded_by_declaration,
    canonical_ms,
    clamp_elapsed,
    lower_median,
    micro_credit_for_flops,
    micro_credit_for_ms,
    reference_ms_of,
    scale_from,
)


def history(devices: dict[int, float], sizes: list[float]) -> list[Sample]:
    """Every device computes every work unit; device d takes size × its factor."""
    return [Sample(device_id=d, elapsed_ms=size * factor)
            for size in sizes for d, factor in devices.items()]


SIZES = [100, 120, 80, 300, 90, 110, 95, 105, 130, 70]


def test_elapsed_is_clamped_to_the_wall_time_the_server_saw():
    assert clamp_elapsed(10**10, wall_ms=1500.0) == 1500.0
    assert clamp_elapsed(-5, wall_ms=1500.0) == 0.0
    assert clamp_elapsed(700, wall_ms=1500.0) == 700.0
    assert clamp_elapsed(None, wall_ms=1500.0) is None
    assert clamp_elapsed(700, wall_ms=None) == 700.0


def test_a_work_unit_earns_the_same_on_a_fast_and_a_slow_device():
    # Devices 1-3 at speed x1, 4-6 four times slower.
    scale = scale_from(history({1: 1, 2: 1, 3: 1, 4: 4, 5: 4, 6: 4}, SIZES))
    fast = reference_ms_of(Claim(1, 1, 300.0), scale)
    slow = reference_ms_of(Claim(2, 4, 1200.0), scale)
    assert fast == slow
    # Raw times differ fourfold; normalised ones are equal.
    assert canonical_ms([Claim(1, 1, 300.0), Claim(2, 4, 1200.0)], scale) == fast


def test_a_device_that_always_reports_ten_times_its_time_gains_nothing():
    honest = scale_from(history({1: 1, 2: 1, 3: 1, 4: 1}, SIZES))
    liar = scale_from(history({1: 1, 2: 1, 3: 1, 4: 10}, SIZES))
    assert reference_ms_of(Claim(9, 4, 300.0), honest) == \
        reference_ms_of(Claim(9, 4, 3000.0), liar)


def test_fast_cheaters_and_one_flooding_device_do_not_set_the_scale():
    honest = scale_from(history({d: 1 for d in range(1, 8)}, SIZES))
    # Three devices claim a thousandth of the time; one more floods with 500 results.
    devices = {d: 1 for d in range(1, 8)} | {20: 0.001, 21: 0.001, 22: 0.001}
    flood = [Sample(device_id=30, elapsed_ms=0.5) for _ in range(500)]
    attacked = scale_from(flood + history(devices, SIZES))
    # The reference moves by at most one honest device's position, not by their volume.
    assert 0.9 * honest.reference_ms <= attacked.reference_ms <= 1.1 * honest.reference_ms


def test_one_inflated_claim_in_a_quorum_of_two_does_not_raise_the_credit():
    scale = scale_from(history({1: 1, 2: 1, 3: 1}, SIZES))
    honest = [Claim(1, 1, 100.0), Claim(2, 2, 100.0)]
    inflated = [Claim(1, 1, 100.0), Claim(2, 2, 5000.0)]
    assert canonical_ms(inflated, scale) == canonical_ms(honest, scale)
    # In a quorum of three, two honest claims outvote one.
    three = [Claim(1, 1, 100.0), Claim(2, 2, 9000.0), Claim(3, 3, 101.0)]
    assert canonical_ms(three, scale) <= reference_ms_of(Claim(3, 3, 101.0), scale)


def test_a_claim_is_clamped_to_the_honest_spread_of_the_app_version():
    # Sizes within 3x of each other: the clamp is a few references.
    scale = scale_from(history({1: 1, 2: 1, 3: 1}, SIZES))
    assert MIN_RATIO <= scale.max_ratio <= 10
    assert reference_ms_of(Claim(1, 1, 10.0**9), scale) == scale.max_ratio * scale.reference_ms
    # Tiles that legitimately differ a hundredfold keep their credit...
    tiles = [1.0] * 15 + [100.0] * 3
    wide = scale_from(history({1: 1, 2: 1, 3: 1, 4: 4}, tiles))
    assert reference_ms_of(Claim(1, 1, 100.0), wide) == 100 * wide.reference_ms
    # ...and one device lying wildly on a few results does not widen the clamp.
    liar = [Sample(device_id=9, elapsed_ms=10.0**6) for _ in range(5)]
    attacked = scale_from(liar + history({1: 1, 2: 1, 3: 1, 4: 4, 9: 1}, tiles))
    assert attacked.max_ratio == wide.max_ratio


def test_new_devices_claim_at_most_a_typical_result():
    scale = scale_from(history({1: 1, 2: 1, 3: 1}, SIZES))
    assert reference_ms_of(Claim(1, 99, 10.0**6), scale) == scale.reference_ms
    assert reference_ms_of(Claim(1, 99, 5.0), scale) == 5.0
    # An established device's claim wins over a new device's in the quorum.
    mixed = [Claim(1, 1, 300.0), Claim(2, 99, 1.0)]
    assert canonical_ms(mixed, scale) == reference_ms_of(Claim(1, 1, 300.0), scale)


def test_uncalibrated_app_versions_use_the_clamped_time_as_is():
    scale = scale_from(history({1: 1, 2: 1}, SIZES))   # two devices: too few
    assert scale.reference_ms is None
    assert canonical_ms([Claim(1, 1, 250.0), Claim(2, 2, 4000.0)], scale) == 250.0


def test_no_reported_time_claims_nothing():
    scale = scale_from([])
    assert canonical_ms([Claim(1, 1, None)], scale) == 0.0


def test_micro_credits_are_boinc_units():
    # A day of a 1-GFLOPS reference device is 200 credit.
    assert micro_credit_for_ms(86_400_000, reference_gflops=1.0) == 200 * 10**6
    assert micro_credit_for_flops(86_400e9 / 200) == 10**6
    assert isinstance(micro_credit_for_ms(1.5, reference_gflops=1.0), int)


def test_a_declared_estimate_lowers_but_never_raises_without_approval():
    measured = 1000
    low, high = 100 * 432e9 / 10**6, 1e24        # 100 µcredit; 2.3e12 credit
    assert bounded_by_declaration(measured, declared_flops=low, approved_flops=None) == 100
    assert bounded_by_declaration(measured, declared_flops=high, approved_flops=None) == 1000
    assert bounded_by_declaration(measured, declared_flops=0, approved_flops=None) == 1000
    # Approved: the declared estimate stands, up to the approved value.
    assert bounded_by_declaration(measured, declared_flops=1e15, approved_flops=high) == \
        micro_credit_for_flops(1e15)
    # Even approved, no result is worth more than MAX_GRANT_MICRO.
    assert bounded_by_declaration(measured, declared_flops=high, approved_flops=high) == \
        MAX_GRANT_MICRO
    assert bounded_by_declaration(measured, declared_flops=high, approved_flops=432e9) == 10**6


@given(st.lists(st.floats(0, 1e7, allow_nan=False), min_size=1, max_size=9))
def test_the_lower_median_is_never_above_the_honest_majority(values):
    chosen = lower_median(values)
    assert chosen in values
    assert sum(v <= chosen for v in values) * 2 >= len(values)


@given(st.integers(1, 6), st.integers(1, 40), st.floats(1.5, 8))
def test_normalised_credit_does_not_depend_on_device_speed(n_slow, seed, factor):
    rng = random.Random(seed)
    sizes = [rng.uniform(10, 1000) for _ in range(15)]
    devices = {d: 1.0 for d in range(1, 5)} | {d: factor for d in range(10, 10 + n_slow)}
    scale = scale_from(history(devices, sizes))
    size = sizes[3]
    fast = reference_ms_of(Claim(1, 1, size), scale)
    slow = reference_ms_of(Claim(2, 10, size * factor), scale)
    assert abs(fast - slow) <= 1e-6 * max(fast, 1)
