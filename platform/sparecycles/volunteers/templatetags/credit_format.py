"""{{ value|credit }}: credit as people read it, also when it is tiny.

Two decimals with thousands separators ("1,234.50"), as BOINC sites show credit; but
a small app's units can be worth 0.00003 credit, which two decimals would show as
0.00 — those keep two significant digits instead ("0.000031"). static/leaderboards/
live.js formats the same way (formatCredit), so a live update shows the same text.
"""

import math

from django import template

register = template.Library()


def format_credit(value) -> str:
    value = float(value or 0)
    if value == 0:
        return "0.00"
    if abs(value) < 0.01:
        places = min(12, 1 - math.floor(math.log10(abs(value))))
        return f"{value:.{places}f}"
    return f"{value:,.2f}"


register.filter("credit", format_credit)
