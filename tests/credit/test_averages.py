import math

from sparecycles.credit.averages import HALF_LIFE_S, rac_key, rac_now, rac_update

DAY = 86400.0


def test_rac_halves_every_seven_days():
    assert math.isclose(rac_now(rac=100, rac_time=0, now=HALF_LIFE_S), 50)
    assert math.isclose(rac_now(rac=100, rac_time=0, now=2 * HALF_LIFE_S), 25)
    assert rac_now(rac=100, rac_time=None, now=1e9) == 0


def test_steady_work_converges_to_credit_per_day():
    rac, t = 0.0, None
    for day in range(1, 120):
        now = day * DAY
        rac = rac_update(rac=rac, rac_time=t, credit=100, now=now, start=now - DAY)
        t = now
    assert math.isclose(rac, 100, rel_tol=0.01)


def test_rac_key_orders_like_current_rac_across_update_times():
    # A: 100/day as of day 0; B: 60/day as of day 7 (one half-life later).
    a = rac_key(rac=100, rac_time=0)
    b = rac_key(rac=60, rac_time=HALF_LIFE_S)
    now = 10 * DAY
    assert (b > a) == (rac_now(rac=60, rac_time=HALF_LIFE_S, now=now)
                       > rac_now(rac=100, rac_time=0, now=now))
    assert rac_key(rac=0, rac_time=5) < rac_key(rac=1e-9, rac_time=0)
