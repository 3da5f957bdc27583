"""Reading JSONL and CSV uploads: per-line errors, JSON cells, streaming limits."""

import io

import pytest
from django.core.exceptions import ValidationError

from sparecycles.projects.inputs import (
    MAX_REPORTED_ERRORS,
    format_for,
    inputs_check,
    inputs_read,
    inputs_scan,
)


def scan(data: bytes, fmt: str = "jsonl"):
    return inputs_scan(io.BytesIO(data), fmt)


def read(data: bytes, fmt: str = "jsonl"):
    return list(inputs_read(io.BytesIO(data), fmt))


def messages(data: bytes, fmt: str = "jsonl") -> list[str]:
    with pytest.raises(ValidationError) as caught:
        scan(data, fmt)
    return caught.value.messages


def test_csv_cells_are_json_when_they_can_be_and_text_otherwise():
    data = (b"a,b,c,d,e,f\n"
            b'12,abc,true,null,"[1, ""x""]",NaN\n'
            b'-1.5,,"{""k"": 1}", 007 ,"two words",Infinity\n')
    assert scan(data, "csv").count == 2
    assert read(data, "csv") == [
        {"a": 12, "b": "abc", "c": True, "d": None, "e": [1, "x"], "f": "NaN"},
        {"a": -1.5, "b": "", "c": {"k": 1}, "d": " 007 ", "e": "two words", "f": "Infinity"},
    ]


def test_csv_header_problems_stop_at_line_one():
    assert messages(b",b\n1,2\n", "csv")[0].startswith("Line 1: the header row names the "
                                                        "input fields, but a column has no name")
    assert "repeated column names: a" in messages(b"a,a\n1,2\n", "csv")[0]
    assert "The file is empty" in messages(b"", "csv")[0]


def test_csv_quoted_newlines_count_physical_lines():
    data = b'n,text\n1,"two\nlines"\n2,x,y\n'
    assert messages(data, "csv") == [
        "Line 4: 3 values, but the header names 2 fields (n, text)."]


def test_a_byte_order_mark_is_ignored():
    assert read(b"\xef\xbb\xbfn\n1\n", "csv") == [{"n": 1}]
    assert read(b'\xef\xbb\xbf{"n": 1}\n') == [{"n": 1}]


def test_csv_line_that_is_not_utf8():
    assert messages(b"n\n1\n\xff\n", "csv") == ["Line 3: not UTF-8 text."]


def test_jsonl_refuses_nan_deep_nesting_and_nul():
    errors = messages(b'{"x": NaN}\n' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b'\n'
                      b'{"s": "\\u0000"}\n{"ok": "\\\\u0000 is fine escaped"}\n')
    assert errors[0].startswith("Line 1: NaN is not valid JSON")
    assert errors[1] in ("Line 2: nested too deeply.",) or errors[1].startswith("Line 2:")
    assert errors[2].startswith("Line 3: contains a NUL character")
    assert len(errors) == 3


def test_only_the_first_errors_are_kept():
    errors = messages(b"x\n" * 1000)
    assert len(errors) == MAX_REPORTED_ERRORS + 1
    assert errors[-1] == f"…and {1000 - MAX_REPORTED_ERRORS} more bad lines."


def test_scan_counts_without_keeping_inputs():
    data = b"".join(b'{"n": %d}\n' % n for n in range(5000))
    assert scan(data).count == 5000


def test_format_from_name_or_declared():
    assert format_for("x.CSV") == "csv" and format_for("x.jsonl") == "jsonl"
    assert format_for(None) == "jsonl" and format_for("x.txt", "csv") == "csv"
    with pytest.raises(ValidationError, match="Unknown format"):
        format_for("x", "xml")


def test_inputs_given_as_a_list_are_checked():
    inputs_check([{"n": 1}])
    with pytest.raises(ValidationError) as caught:
        inputs_check([{"n": 1}, [2], {"s": "\x00"}])
    assert caught.value.messages == ["Input 2: must be a JSON object, like {\"n\": 1}.",
                                     "Input 3: contains a NUL character (\\u0000), which "
                                     "cannot be stored."]
