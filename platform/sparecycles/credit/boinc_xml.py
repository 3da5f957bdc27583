"""BOINC's db_dump XML: each table's elements in BOINC's order, its number formats, safe text.

The layouts are sched/db_dump.cpp's (BOINC/boinc): write_user, write_team, write_host (with
<detail/>, as db_dump_spec.xml asks for hosts), write_user_deleted, write_host_deleted and
tables_file. Numbers are C's "%f" (six fixed decimals, never an exponent) and "%d".

Text goes through clean(): characters XML 1.0 cannot carry (C0 controls but tab, newline
and return; lone surrogates; U+FFFE/U+FFFF) and C1 controls are removed, the rest cut to
BOINC's buffer size and escaped. Tab, newline and return are written as character
references, as BOINC's xml_escape does, so a parser gives them back unchanged. So whatever
a database holds, the files parse.
"""

import gzip
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
NAME_LIMIT = 2047  # BOINC's char name[2048] (db_dump.cpp write_user/write_team)
TEXT_LIMIT = 65535  # BOINC's BLOB_SIZE for team descriptions

_UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\t": "&#9;", "\n": "&#10;",
            "\r": "&#13;"}
_TO_ESCAPE = re.compile("[&<>\t\n\r]")


def clean(text: object, limit: int = NAME_LIMIT) -> str:
    """`text` with what XML cannot carry (and other control characters) removed, cut to
    `limit` characters; not escaped."""
    return _UNWANTED.sub("", str(text))[:limit]


def escape(text: object, limit: int = NAME_LIMIT) -> str:
    return _TO_ESCAPE.sub(lambda m: _ESCAPES[m.group()], clean(text, limit))


def fixed(value: object) -> str:
    """C's "%f": six decimals, no exponent; not-a-number and infinities as 0."""
    number = float(value or 0)
    if not math.isfinite(number):
        number = 0.0
    text = f"{number:.6f}"
    return "0.000000" if text == "-0.000000" else text


def integer(value: object) -> str:
    return str(int(value or 0))


@dataclass(frozen=True)
class Field:
    tag: str
    kind: str  # "int", "float", "text", "long_text", "cdata"
    indent: str = " "
    optional: bool = False  # written only when the row's value is not None


@dataclass(frozen=True)
class Table:
    filename: str  # user -> user.gz, user.json.gz
    root: str  # the enclosing element: users
    row: str  # one row's element: user
    fields: tuple[Field, ...]


def _fields(indent: str, *specs: tuple) -> tuple[Field, ...]:
    return tuple(Field(spec[0], spec[1], spec[2] if len(spec) > 2 else indent,
                       len(spec) > 3 and spec[3]) for spec in specs)


# sched/db_dump.cpp write_user (lines 548-600 at BOINC commit c5c6cb79b9): country, url
# and has_profile are optional there and have no counterpart here.
USER = Table("user", "users", "user", _fields(
    " ", ("id", "int"), ("name", "text"), ("create_time", "int"), ("total_credit", "float"),
    ("expavg_credit", "float"), ("expavg_time", "float"), ("cpid", "text"),
    ("teamid", "int", " ", True)))

# write_team (lines 664-750): founder_name only when the founder can be named; url and
# name_html have no counterpart; description only when there is one.
TEAM = Table("team", "teams", "team", _fields(
    " ", ("id", "int"), ("type", "int"), ("name", "text"), ("userid", "int"),
    ("total_credit", "float"), ("expavg_credit", "float"), ("expavg_time", "float"),
    ("founder_name", "text", "  ", True), ("create_time", "int"),
    ("description", "long_text", "", True), ("country", "text")))

# write_host with detail (lines 445-535): userid only for users who show their hosts.
HOST = Table("host", "hosts", "host", _fields(
    "    ", ("id", "int"), ("userid", "int", "    ", True), ("total_credit", "float"),
    ("expavg_credit", "float"), ("expavg_time", "float"), ("p_vendor", "text"),
    ("p_model", "text"), ("os_name", "text"), ("os_version", "text"), ("misc", "cdata"),
    ("create_time", "int", "  "), ("rpc_time", "int", "  "), ("timezone", "int", "  "),
    ("ncpus", "int", "  "), ("p_fpops", "float", "  "), ("p_iops", "float", "  "),
    ("p_membw", "float", "  "), ("m_nbytes", "float", "  "), ("m_cache", "float", "  "),
    ("m_swap", "float", "  "), ("d_total", "float", "  "), ("d_free", "float", "  "),
    ("n_bwup", "float", "  "), ("n_bwdown", "float", "  "),
    ("avg_turnaround", "float", "  "), ("credit_per_cpu_sec", "float", "  "),
    ("host_cpid", "text", "  ")))

# write_user_deleted / write_host_deleted (lines 434-443, 537-546).
USER_DELETED = Table("user_deleted", "users_deleted", "user", _fields(
    "    ", ("id", "int"), ("cpid", "text")))
HOST_DELETED = Table("host_deleted", "hosts_deleted", "host", _fields(
    "    ", ("id", "int"), ("host_cpid", "text")))

TABLES = (USER, TEAM, HOST, USER_DELETED, HOST_DELETED)


def _value(field: Field, value: object) -> str:
    if field.kind == "int":
        return integer(value)
    if field.kind == "float":
        return fixed(value)
    if field.kind == "long_text":
        return escape(value or "", TEXT_LIMIT)
    if field.kind == "cdata":
        text = clean(value or "", TEXT_LIMIT).replace("]]>", "]]]]><![CDATA[>")
        return f"<![CDATA[{text}]]>"
    return escape(value if value is not None else "")


def row_xml(table: Table, row: dict) -> str:
    lines = [f"<{table.row}>\n"]
    for field in table.fields:
        value = row.get(field.tag)
        if value is None and field.optional:
            continue
        lines.append(f"{field.indent}<{field.tag}>{_value(field, value)}</{field.tag}>\n")
    lines.append(f"</{table.row}>\n")
    return "".join(lines)


def row_json(table: Table, row: dict) -> dict:
    """The same fields as the XML (present ones only), text cleaned, numbers as numbers."""
    out = {}
    for field in table.fields:
        value = row.get(field.tag)
        if value is None:
            if field.optional:
                continue
            value = 0 if field.kind in ("int", "float") else ""
        if field.kind == "float":
            value = float(fixed(value))
        elif field.kind == "int":
            value = int(value)
        else:
            value = clean(value, TEXT_LIMIT if field.kind != "text" else NAME_LIMIT)
        out[field.tag] = value
    return out


class TableWriter:
    """<filename>.gz (BOINC XML) and <filename>.json.gz, written side by side in one pass."""

    def __init__(self, directory: Path, table: Table) -> None:
        self.table, self.count = table, 0
        self.xml = gzip.open(directory / f"{table.filename}.gz", "wt", encoding="utf-8",
                             compresslevel=6)
        self.json = gzip.open(directory / f"{table.filename}.json.gz", "wt", encoding="utf-8",
                              compresslevel=6)

    def __enter__(self) -> "TableWriter":
        self.xml.write(f"{XML_DECLARATION}<{self.table.root}>\n")
        self.json.write("[")
        return self

    def write(self, row: dict) -> None:
        self.xml.write(row_xml(self.table, row))
        self.json.write(("," if self.count else "")
                        + json.dumps(row_json(self.table, row), separators=(",", ":")))
        self.count += 1

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.xml.write(f"</{self.table.root}>\n")
            self.json.write("]\n")
        self.xml.close()
        self.json.close()


def tables_xml(*, update_time: int, counts: dict[str, int], total_credit: float,
               applications: list[str]) -> str:
    """db_dump.cpp tables_file (lines 818-842): counts only when not zero, as BOINC."""
    lines = [XML_DECLARATION, "<tables>\n",
             f"    <update_time>{integer(update_time)}</update_time>\n"]
    for key in ("users", "teams", "hosts", "users_deleted", "hosts_deleted"):
        if counts.get(key):
            tag = f"n{key}_total"
            lines.append(f"    <{tag}>{integer(counts[key])}</{tag}>\n")
    if total_credit:
        lines.append(f"    <total_credit>{fixed(total_credit)}</total_credit>\n")
    lines.append("    <applications>\n")
    for name in applications:
        lines.append("        <application>\n"
                     f"            <name>{escape(name)}</name>\n"
                     "        </application>\n")
    lines.append("    </applications>\n    <badges>\n    </badges>\n</tables>\n")
    return "".join(lines)
