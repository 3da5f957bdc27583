"""{{ value|credit }}: credit to the micro-credit, the unit the books keep it in.
{{ value|rac }}: recent average credit, a rate that decays every second.

Always six decimals with thousands separators ("1,234.500000", "0.000031"): any valid
result earns at least one micro-credit, so any real work shows above zero, and the number of
decimals never changes from one update to the next (a live counter doesn't jump between
"0.000031" and "0.01"). The leaderboards' JSON carries this text (credit_text), and the
volunteer page (static/volunteer/volunteer.js formatCredit) formats the stats frame's
credit_micro the same way.
"""

import math

from django import template

register = template.Library()

MICRO = 1_000_000
DECIMALS = 6


def format_credit_micro(micro: int) -> str:
    sign = "-" if micro < 0 else ""
    whole, fraction = divmod(abs(int(micro)), MICRO)
    return f"{sign}{whole:,}.{fraction:0{DECIMALS}d}"


def format_credit(value) -> str:
    """Credit (or RAC) in credits, as a float, int or Decimal."""
    return format_credit_micro(round(float(value or 0) * MICRO))


def format_rac(value) -> str:
    """Two decimals as BOINC sites show RAC, or three significant digits when it is tiny.

    Not six decimals like credit: RAC decays continuously, so micro-precision would change
    between two looks at the same page; it is a rate, not a balance.
    """
    value = float(value or 0)
    if value == 0:
        return "0.00"
    if abs(value) < 0.01:
        places = min(12, 2 - math.floor(math.log10(abs(value))))
        return f"{value:.{places}f}"
    return f"{value:,.2f}"


register.filter("credit", format_credit)
register.filter("rac", format_rac)
