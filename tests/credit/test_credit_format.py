"""The credit filter: to the micro-credit, six decimals always."""

import pytest

from sparecycles.accounts.charts import compact
from sparecycles.credit.templatetags.credit_format import (
    format_credit,
    format_credit_micro,
    format_rac,
)


@pytest.mark.parametrize("value, text", [
    (0, "0.000000"), (None, "0.000000"), (1234.5, "1,234.500000"), (0.01, "0.010000"),
    (0.5, "0.500000"), (0.0000312, "0.000031"), (0.000001, "0.000001"), (0.0049, "0.004900"),
    (-0.25, "-0.250000"), (1_000_000, "1,000,000.000000"),
])
def test_format_credit(value, text):
    assert format_credit(value) == text


def test_every_micro_credit_shows_above_zero_with_the_same_decimals():
    texts = [format_credit_micro(micro) for micro in (1, 999, 1_000_001, 123_456_789_012)]
    assert texts == ["0.000001", "0.000999", "1.000001", "123,456.789012"]
    assert {len(text.split(".")[1]) for text in texts} == {6}


@pytest.mark.parametrize("value, text", [
    (0, "0"), (0.5, "0.5"), (12.25, "12.2"), (12_345.6, "12.3k"), (3.5e6, "3.5M"),
    (0.000031, "0.000031"),
])
def test_chart_axis_labels(value, text):
    assert compact(value) == text


@pytest.mark.parametrize("value, text", [
    (0, "0.00"), (119.5, "119.50"), (1234.5, "1,234.50"), (0.0000312, "0.0000312"),
])
def test_format_rac(value, text):
    assert format_rac(value) == text
