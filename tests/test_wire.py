"""sparecycles.wire: the protocol's version and output rules, shared by gateway, web, sandbox."""

from sparecycles import wire
from sparecycles.gateway import protocol


def test_gateway_names_are_the_wire_ones():
    assert protocol.PROTOCOL_VERSION is wire.PROTOCOL_VERSION == 1
    assert protocol.MAX_OUTPUT_DEPTH is wire.MAX_OUTPUT_DEPTH
    assert protocol.output_problem is wire.output_problem


def test_output_problem_refuses_what_cannot_be_stored_or_compared():
    deep: list = []
    for _ in range(wire.MAX_OUTPUT_DEPTH):
        deep = [deep]
    assert wire.output_problem({"ok": [1, 2.5, None, "x"]}) == ""
    assert "NaN" in wire.output_problem([float("nan")])
    assert "deeper" in wire.output_problem(deep)
    assert wire.output_problem(deep[0]) == ""


def test_output_problem_refuses_text_postgresql_can_not_store():
    """NUL and lone surrogates are valid JSON escapes that jsonb refuses (red team)."""
    assert "NUL" in wire.output_problem({"s": "a\u0000b"})
    assert "surrogate" in wire.output_problem(["\ud800"])
    assert "NUL" in wire.output_problem({"k\u0000": 1})
    assert wire.output_problem({"日本": "é😀", "x": ["\t\n"]}) == ""
    assert wire.unstorable_text("\udfff") and not wire.unstorable_text("\U0001f600")
