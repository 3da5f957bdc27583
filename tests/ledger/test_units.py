import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparecycles.ledger.units import MAX_SAFE_MICRO, parse_tokens, tokens_str

EXAMPLES = [
    (0, "0"),
    (1, "0.000001"),
    (1_500_000, "1.5"),
    (12_345_678, "12.345678"),
    (21_000_000_000_000, "21000000"),
    (-2_500_000, "-2.5"),
]


@pytest.mark.parametrize("micro, text", EXAMPLES)
def test_tokens_str(micro, text):
    assert tokens_str(micro) == text
    assert parse_tokens(text) == micro


def test_tokens_str_refuses_floats():
    with pytest.raises(TypeError):
        tokens_str(1.5)
    with pytest.raises(TypeError):
        tokens_str(True)


@pytest.mark.parametrize("text", ["", "1.", ".5", "1.0000001", "1e6", "abc", "1,5", "NaN"])
def test_parse_tokens_refuses_malformed_amounts(text):
    with pytest.raises(ValueError):
        parse_tokens(text)


@given(st.integers(min_value=-MAX_SAFE_MICRO, max_value=MAX_SAFE_MICRO))
def test_tokens_str_round_trips(micro):
    assert parse_tokens(tokens_str(micro)) == micro
