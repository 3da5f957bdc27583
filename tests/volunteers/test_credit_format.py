"""The credit filter: two decimals as BOINC sites show, significant digits when tiny."""

import pytest

from sparecycles.volunteers.charts import compact
from sparecycles.volunteers.templatetags.credit_format import format_credit


@pytest.mark.parametrize("value, text", [
    (0, "0.00"), (None, "0.00"), (1234.5, "1,234.50"), (0.01, "0.01"), (0.5, "0.50"),
    (0.0000312, "0.000031"), (0.0049, "0.0049"), (3e-12, "0.000000000003"), (-0.25, "-0.25"),
])
def test_format_credit(value, text):
    assert format_credit(value) == text


@pytest.mark.parametrize("value, text", [
    (0, "0"), (0.5, "0.5"), (12.25, "12.2"), (12_345.6, "12.3k"), (3.5e6, "3.5M"),
    (0.000031, "0.000031"),
])
def test_chart_axis_labels(value, text):
    assert compact(value) == text
