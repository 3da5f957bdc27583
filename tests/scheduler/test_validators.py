import math

from sparecycles.scheduler.validators import (
    check_set,
    comparator_for,
    exact_equal,
    tolerance_equal,
)


def test_exact_ignores_key_order_but_not_types():
    assert exact_equal({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1})
    assert not exact_equal({"a": 1}, {"a": True})
    assert not exact_equal([1, 2], [2, 1])


def test_tolerance_walks_json_trees():
    a = {"pi": 3.14159, "runs": [1.0, 2.0], "name": "x"}
    assert tolerance_equal(a, {"pi": 3.1416, "runs": [1.0, 2.00001], "name": "x"}, abs_tol=1e-4)
    assert not tolerance_equal(a, {"pi": 3.2, "runs": [1.0, 2.0], "name": "x"}, abs_tol=1e-4)
    assert not tolerance_equal(a, {"pi": 3.14159, "runs": [1.0], "name": "x"}, abs_tol=1)
    assert not tolerance_equal({"n": "1"}, {"n": 1}, abs_tol=1)
    assert tolerance_equal(100.0, 101.0, rel_tol=0.02)
    assert tolerance_equal(math.nan, math.nan)


def test_custom_validator_runs_equivalent_and_survives_crashes():
    equal = comparator_for(validator="custom", options={},
                           code="def equivalent(a, b):\n    return a['k'] == b['k']\n")
    assert equal({"k": 1, "t": 5}, {"k": 1, "t": 6})
    assert not equal({"k": 1}, {})  # KeyError inside equivalent means "not equal"


def test_check_set_needs_a_strict_majority_and_the_quorum():
    assert check_set([1, 1], exact_equal, min_quorum=2) == [0, 1]
    assert check_set([1, 2], exact_equal, min_quorum=2) is None
    assert check_set([1, 2, 1], exact_equal, min_quorum=2) == [0, 2]
    assert check_set([1, 1, 2, 2], exact_equal, min_quorum=2) is None
    assert check_set([5], exact_equal, min_quorum=1) == [0]
    assert check_set([1, 1, 2], exact_equal, min_quorum=3) is None
