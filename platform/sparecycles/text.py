"""Text that people type and others read: names and descriptions without control characters.

A display name with a BEL (\\x07) or a team description with \\x01 is invisible on a page but
makes the daily XML exports unparseable (XML 1.0 forbids most C0 controls), confuses
terminals and logs, and lets one person hide text from another. Every model holding such
text calls these in save(), and the services call them before their own checks, so forms,
the API, the admin and services all store the same cleaned text.
"""

import re
import unicodedata

# Code points XML 1.0 cannot carry, besides the controls: U+FFFE and U+FFFF.
_NONCHARACTERS = {"\ufffe", "\uffff"}
_SPACES = re.compile(r"\s+")


def _dropped(char: str) -> bool:
    # Cc: C0 and C1 controls and DEL; Cs: lone surrogates (no UTF-8 encoding either).
    return unicodedata.category(char) in ("Cc", "Cs") or char in _NONCHARACTERS


def clean_line(value: str) -> str:
    """A one-line text (a name, a title): controls dropped, every run of white space
    (tabs and line breaks included) one space, no space at either end."""
    if not value:
        return ""
    value = "".join(" " if char in "\t\n\r\x0b\x0c\x85" else char
                    for char in value if char in "\t\n\r\x0b\x0c\x85" or not _dropped(char))
    return _SPACES.sub(" ", value).strip()


def clean_text(value: str) -> str:
    """A multi-line text (a description): line breaks become "\\n", tabs stay, every other
    control is dropped, and trailing white space goes."""
    if not value:
        return ""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(char for char in value if char in "\t\n" or not _dropped(char)).rstrip()


def clean_fields(instance, *, lines: tuple[str, ...] = (), texts: tuple[str, ...] = ()) -> None:
    """Clean a model instance's text fields in place (for save() and clean())."""
    for name in lines:
        setattr(instance, name, clean_line(getattr(instance, name) or ""))
    for name in texts:
        setattr(instance, name, clean_text(getattr(instance, name) or ""))


class CleanedTextModel:
    """A model mixin: `text_lines` and `text_blocks` name the fields people type in, cleaned
    (clean_line / clean_text) before validation (full_clean, so forms and the admin show the
    cleaned value's errors) and again in save(), which every create and update runs through."""

    text_lines: tuple[str, ...] = ()
    text_blocks: tuple[str, ...] = ()

    def clean_text_fields(self) -> None:
        clean_fields(self, lines=self.text_lines, texts=self.text_blocks)

    def clean_fields(self, exclude=None):
        self.clean_text_fields()
        super().clean_fields(exclude=exclude)

    def save(self, *args, **kwargs):
        self.clean_text_fields()
        super().save(*args, **kwargs)
