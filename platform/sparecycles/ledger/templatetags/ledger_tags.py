from django import template

from ..units import tokens_str

register = template.Library()


def _grouped(text: str) -> str:
    """ "21000000.5" -> "21,000,000.5" (display only; the API keeps tokens_str's plain form)."""
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}" + (f".{frac}" if frac else "")


@register.filter
def tokens(micro) -> str:
    """Micro-units as a decimal string for people: 21000000500000 -> "21,000,000.5"."""
    try:
        return _grouped(tokens_str(int(micro)))
    except (TypeError, ValueError):
        return ""


@register.filter
def signed_tokens(micro) -> str:
    text = tokens(micro)
    return f"+{text}" if text and not text.startswith("-") and int(micro) else text


@register.filter
def short_hash(value: str, length: int = 12) -> str:
    return f"{value[:length]}…" if value and len(value) > length else value
