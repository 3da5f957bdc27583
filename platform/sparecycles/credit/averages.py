"""Recent average credit (RAC), BOINC's update_average with a 7-day half-life.

RAC decays continuously, so two stored averages updated at different times
can't be compared directly. `rac_key` = ln(rac) + t·ln2/half_life is the same
order as the current RAC for every row at once, so an index on it ranks by RAC.
"""

import math

HALF_LIFE_S = 7 * 86400
SECONDS_PER_DAY = 86400
KEY_FLOOR = -1e9  # key of a zero RAC: sorts last


def rac_update(*, rac: float, rac_time: float | None, credit: float, now: float,
               start: float | None = None) -> float:
    """BOINC lib/util.cpp update_average: add `credit` earned up to `now`; credit per day."""
    if rac_time is not None:
        diff = max(0.0, now - rac_time)
        weight = math.exp(-diff * math.log(2) / HALF_LIFE_S)
        rac *= weight
        if 1.0 - weight > 1e-6:
            rac += (1 - weight) * (credit / (diff / SECONDS_PER_DAY))
        else:
            rac += math.log(2) * credit * SECONDS_PER_DAY / HALF_LIFE_S
        return rac
    if credit:
        # First credit: BOINC divides by the time since the work started; with no start
        # known, count it as one half-life's average so a first result does not spike.
        elapsed = max(now - start, 3600.0) if start else HALF_LIFE_S
        return credit / (elapsed / SECONDS_PER_DAY)
    return rac


def rac_now(*, rac: float, rac_time: float | None, now: float) -> float:
    """The stored average decayed to `now`."""
    if rac_time is None or rac <= 0:
        return 0.0
    return rac * math.exp(-max(0.0, now - rac_time) * math.log(2) / HALF_LIFE_S)


def rac_key(*, rac: float, rac_time: float | None) -> float:
    if rac_time is None or rac <= 0:
        return KEY_FLOOR
    return math.log(rac) + rac_time * math.log(2) / HALF_LIFE_S


def rac_withdraw(*, rac: float, rac_time: float | None, credit: float, granted: float,
                 now: float) -> float:
    """The average as of `now` without one earlier grant of `credit` made at `granted`.

    A grant adds credit·ln2/half-life per day to the average (the steady-state form of
    update_average), then decays like the rest of it; so what it still contributes at
    `now` is that, decayed since `granted` — the same term a device's RAC is summed from
    (credit.stats_export.device_rac). Never below zero.
    """
    current = rac_now(rac=rac, rac_time=rac_time, now=now)
    rate = math.log(2) / HALF_LIFE_S
    share = credit * rate * SECONDS_PER_DAY * math.exp(-max(0.0, now - granted) * rate)
    return max(0.0, current - share)
