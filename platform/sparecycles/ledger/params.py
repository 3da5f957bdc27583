"""Query and path parameters: anything malformed is a clear 4xx, never a 500."""

import re

MAX_INDEX = 2**31 - 1          # epochs, entry numbers, offsets
_DIGITS = re.compile(r"^[0-9]{1,12}$")


class BadParam(ValueError):
    """A malformed parameter; the message tells the caller what is expected."""


def int_param(request, name: str, *, default: int | None = None, minimum: int = 0,
              maximum: int = MAX_INDEX) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    if not _DIGITS.match(raw) or not minimum <= int(raw) <= maximum:
        raise BadParam(f"The parameter {name} must be a whole number from {minimum} to "
                       f"{maximum}; got {raw[:40]!r}.")
    return int(raw)


def in_range(value: int) -> bool:
    """Path integers beyond any stored index simply do not exist (and must not overflow SQL)."""
    return 0 <= value <= MAX_INDEX
