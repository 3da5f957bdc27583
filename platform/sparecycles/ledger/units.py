"""Token amounts: integers of micro-tokens everywhere, decimal strings at the edges."""

import re

MICRO = 1_000_000  # 1 token = 1,000,000 µ
# Every amount must survive a round trip through a JavaScript Number.
MAX_SAFE_MICRO = 2**53 - 1

_DECIMAL = re.compile(r"^(?P<sign>-?)(?P<whole>\d{1,10})(?:\.(?P<frac>\d{1,6}))?$")


def tokens_str(micro: int) -> str:
    """12_345_678 -> "12.345678"; 1_500_000 -> "1.5"; 0 -> "0" (PROTOCOL.md's "tokens")."""
    if isinstance(micro, bool) or not isinstance(micro, int):
        raise TypeError(f"token amounts are integers of micro-tokens, not {type(micro).__name__}")
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:06d}".rstrip("0")


def parse_tokens(text: str) -> int:
    """"1.5" -> 1_500_000. At most six decimals; no exponent, no float on the way."""
    match = _DECIMAL.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an amount of tokens like 12.5 (at most 6 decimals)")
    micro = int(match["whole"]) * MICRO + int((match["frac"] or "").ljust(6, "0"))
    return -micro if match["sign"] else micro
