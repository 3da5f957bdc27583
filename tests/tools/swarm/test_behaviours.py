"""Behaviours: what each kind of simulated volunteer reports, without a server."""

import datetime as dt
import random

import pytest

from tools.swarm.behaviours import (
    BEHAVIOURS,
    BehaviourOptions,
    behaviour_create,
    colluded,
    randomised,
    seconds_until,
)

PRIMES_INPUT = {"lo": 100, "hi": 200}
PRIMES_OUTPUT = {"lo": 100, "hi": 200, "count": 21, "largest": 199}
TILE_INPUT = {"tile": 3, "x0": 0, "y0": 0, "size": 2, "max_iter": 9}
TILE_OUTPUT = {"tile": 3, "x0": 0, "y0": 0, "size": 2, "max_iter": 9,
               "iterations": [[1, 2], [3, 9]]}
TASK = {"task_id": "t1", "input": PRIMES_INPUT}


def make(name, seed=0, **options):
    return behaviour_create(name, rng=random.Random(seed), options=BehaviourOptions(**options))


def test_every_behaviour_in_the_issue_exists():
    assert set(BEHAVIOURS) == {"honest", "cheater", "colluder", "flaky", "slow", "vanishing",
                               "idle"}


def test_idle_never_asks_for_work_and_the_others_do():
    assert not make("idle").requests_work
    assert all(make(name).requests_work for name in BEHAVIOURS if name != "idle")


def test_honest_thinks_about_as_long_as_asked():
    assert make("honest").hold_s(TASK) == 0.0
    holds = [make("honest", seed=s, think_s=2.0).hold_s(TASK) for s in range(50)]
    assert all(1.0 <= h <= 3.0 for h in holds) and len(set(holds)) > 1


def test_unknown_behaviour_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose from honest, cheater"):
        make("lazy")


def test_honest_reports_what_it_computed():
    honest = make("honest")
    assert honest.plan(TASK, have_template=True) == "compute"
    assert honest.alter(TASK, PRIMES_OUTPUT) == PRIMES_OUTPUT
    assert honest.hold_s(TASK) == 0 and not honest.vanish_on([TASK])


def test_cheaters_skip_the_work_once_they_know_the_shape_and_answer_randomly():
    cheater = make("cheater")
    assert cheater.plan(TASK, have_template=False) == "compute"
    assert cheater.plan(TASK, have_template=True) == "fabricate"
    answers = [cheater.fabricate(TASK, PRIMES_OUTPUT) for _ in range(20)]
    assert all(a != PRIMES_OUTPUT for a in answers)
    assert len({(a["count"], a["largest"]) for a in answers}) == 20  # different every time
    assert all(a["lo"] == 100 and a["hi"] == 200 for a in answers)  # echoes look plausible
    assert make("cheater", seed=1).alter(TASK, PRIMES_OUTPUT) != make("cheater", seed=2).alter(
        TASK, PRIMES_OUTPUT)


def test_randomised_keeps_the_shape_of_nested_outputs():
    made_up = randomised(TILE_OUTPUT, {**TILE_INPUT, "tile": 4}, random.Random(1))
    assert made_up["tile"] == 4  # echoed from this task's input, not the template's
    assert len(made_up["iterations"]) == 2 and len(made_up["iterations"][0]) == 2
    assert made_up["iterations"] != TILE_OUTPUT["iterations"]


def test_randomised_output_without_numbers_is_still_wrong():
    assert randomised({"word": "x"}, {}, random.Random(1)) != {"word": "x"}


def test_colluders_agree_on_one_wrong_answer_per_input():
    one, other = make("colluder", seed=1), make("colluder", seed=2)
    a, b = one.alter(TASK, PRIMES_OUTPUT), other.alter(TASK, PRIMES_OUTPUT)
    assert a == b != PRIMES_OUTPUT
    assert set(a) == set(PRIMES_OUTPUT) and a["lo"] == 100 and a["hi"] == 200
    assert a["count"] != 21  # the first non-echoed number moved
    next_task = {**TASK, "input": {"lo": 200, "hi": 300}}
    assert one.alter(next_task, PRIMES_OUTPUT) != a  # the shift depends on the input
    assert colluded(TILE_OUTPUT, TILE_INPUT)["iterations"][0][0] != 1
    assert TILE_OUTPUT["iterations"][0][0] == 1  # the real output is not modified in place
    assert colluded(7, {"n": 1}) != 7


def test_flaky_fails_about_as_often_as_asked():
    flaky = make("flaky", seed=3, flaky_error_p=0.5)
    plans = [flaky.plan(TASK, have_template=False) for _ in range(1000)]
    assert 400 < plans.count("error") < 600
    assert "SimulatedError" in flaky.error_message(TASK)
    assert make("flaky", flaky_error_p=0.0).plan(TASK, have_template=False) == "compute"


def test_slow_holds_a_task_past_its_deadline_within_a_bound():
    slow = make("slow", slow_overrun_s=2.0, slow_max_hold_s=30.0)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 5.5 < slow.hold_s({**TASK, "deadline": soon}) <= 7.0
    assert slow.hold_s({**TASK, "deadline": "2000-01-01T00:00:00Z"}) == 2.0
    assert slow.hold_s({**TASK, "deadline": "2999-01-01T00:00:00Z"}) == 30.0


def test_vanishing_leaves_as_often_as_configured_and_maybe_returns():
    stays_away = make("vanishing", vanish_times=1, vanish_return_p=0.0)
    assert not stays_away.vanish_on([])
    assert stays_away.vanish_on([TASK]) and not stays_away.vanish_on([TASK])
    assert stays_away.comes_back_after_s() is None
    returns = make("vanishing", vanish_return_p=1.0, vanish_return_after_s=0.5)
    assert returns.comes_back_after_s() == 0.5


def test_seconds_until_reads_protocol_deadlines():
    assert seconds_until(None) == 0 and seconds_until("not a date") == 0
    assert seconds_until("2000-01-01T00:00:00Z") < 0


def test_options_are_checked():
    with pytest.raises(ValueError, match="flaky_error_p must be between 0 and 1"):
        BehaviourOptions(flaky_error_p=2).check()
