"""Parsing client frames at the edge (gateway.protocol): what a result's output may be."""

import json

import pytest

from sparecycles.gateway.protocol import (
    MAX_OUTPUT_DEPTH,
    FrameError,
    Result,
    output_problem,
    parse_client_frame,
)


def nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def result_frame(output) -> str:
    return json.dumps({"type": "result", "task_id": "t" * 20, "status": "ok",
                       "output": output, "elapsed_ms": 1})


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_in_an_output_are_refused_with_the_task_id(number):
    """Red team (issue 14): Python's json took NaN, the database refused it and the whole
    intake batch — honest volunteers' results too — failed."""
    with pytest.raises(FrameError) as refused:
        parse_client_frame(result_frame({"x": [1, {"y": number}]}))
    assert refused.value.code == "invalid" and refused.value.task_id == "t" * 20
    assert "NaN and Infinity are not JSON" in refused.value.message


def test_outputs_nested_deeper_than_the_limit_are_refused():
    """Red team (issue 14): 600-deep lists made recursive comparators (tolerance_equal,
    owners' validators) raise RecursionError."""
    assert isinstance(parse_client_frame(result_frame(nested(MAX_OUTPUT_DEPTH))), Result)
    assert isinstance(parse_client_frame(result_frame({"a": nested(MAX_OUTPUT_DEPTH - 1)})),
                      Result)
    for too_deep in (nested(MAX_OUTPUT_DEPTH + 1), {"a": nested(MAX_OUTPUT_DEPTH)}, nested(600)):
        with pytest.raises(FrameError, match=f"nested deeper than {MAX_OUTPUT_DEPTH} levels"):
            parse_client_frame(result_frame(too_deep))


def test_ordinary_outputs_pass_and_the_walk_does_not_recurse():
    assert output_problem({"pi": 3.14, "runs": [1, 2, None, True, "x"]}) == ""
    assert output_problem(None) == "" and output_problem(1e308) == ""
    wide = [[i] for i in range(100_000)]
    assert output_problem(wide) == ""
    assert "deeper" in output_problem(nested(100_000))   # no RecursionError


# --- hello's optional host object (the stats exports' host fields) --------------------------

def hello_frame(**extra) -> str:
    return json.dumps({"type": "hello", "protocol": 1, **extra})


def test_hello_without_host_still_parses():
    assert parse_client_frame(hello_frame()).host is None


def test_hello_host_fields_are_typed_and_kept():
    host = {"os_name": "Linux", "os_version": "6.1", "p_vendor": "x86",
            "p_model": "Chromium 131 (x86 64-bit)", "p_fpops": 2.5e9, "timezone": 3600,
            "extra": "ignored"}
    parsed = parse_client_frame(hello_frame(host=host)).host
    assert parsed.model_dump() == {k: v for k, v in host.items() if k != "extra"}


@pytest.mark.parametrize("host", [
    {"os_name": "Linux\x07"}, {"p_model": "x\x00"}, {"os_version": "\x85"},
    {"os_name": "L" * 65}, {"p_model": "M" * 129},
    {"p_fpops": 0}, {"p_fpops": -1}, {"p_fpops": 1e14}, {"p_fpops": "fast"},
    {"timezone": 15 * 3600}, {"timezone": -15 * 3600}, {"timezone": 1.5},
    {"os_name": ["Linux"]}, "Linux",
])
def test_hostile_host_fields_are_refused_at_the_edge(host):
    with pytest.raises(FrameError):
        parse_client_frame(hello_frame(host=host))


def test_infinite_speed_is_refused():
    with pytest.raises(FrameError):
        parse_client_frame('{"type": "hello", "protocol": 1, "host": {"p_fpops": Infinity}}')


def test_an_integer_over_pythons_digit_limit_refuses_its_result_not_the_frame():
    """Red team (batch extension): json.loads refuses integers over 4300 digits, so such an
    output (an owner's app may lift Python's limit) made the whole frame "not JSON": no ack,
    and in a `results` frame no ack for any result riding with it, resent forever."""
    huge = "9" * 5000
    frame = result_frame([0]).replace("[0]", f"[-{huge}]")
    with pytest.raises(FrameError) as refused:
        parse_client_frame(frame)
    assert refused.value.code == "invalid" and refused.value.task_id == "t" * 20
    assert "at most 4300 digits" in refused.value.message
    with pytest.raises(FrameError, match="slots"):
        parse_client_frame(f'{{"type": "request", "slots": {huge}}}')
    assert isinstance(parse_client_frame(result_frame(int("9" * 4300))), Result)
