"""BOINC's db_dump XML, byte for byte (credit.boinc_xml), against a golden file.

The element names and their order below are copied from BOINC's sched/db_dump.cpp
(BOINC/boinc at commit c5c6cb79b9): write_user lines 548-600, write_team lines 664-750,
write_host lines 445-535 (with <detail/>, which sched/db_dump_spec.xml sets for hosts),
write_user_deleted lines 537-546, write_host_deleted lines 434-443, tables_file lines
818-842. Numbers are "%f" there: six decimals, never an exponent.
"""

import gzip
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sparecycles.credit import boinc_xml

GOLDEN = Path(__file__).parent / "golden" / "boinc_rows.xml"

# db_dump.cpp, in the order each function writes them ("?" marks a field BOINC writes only
# sometimes: teamid when the user has a team, founder_name when the founder exists,
# description when there is one; userid on hosts of users who show them).
BOINC_USER = ["id", "name", "create_time", "total_credit", "expavg_credit", "expavg_time",
              "cpid", "country?", "url?", "teamid?", "has_profile?"]
BOINC_TEAM = ["id", "type", "name", "userid", "total_credit", "expavg_credit", "expavg_time",
              "founder_name?", "create_time", "url?", "name_html?", "description?", "country"]
BOINC_HOST = ["id", "userid?", "total_credit", "expavg_credit", "expavg_time", "p_vendor",
              "p_model", "os_name", "os_version", "misc", "create_time", "rpc_time",
              "timezone", "ncpus", "p_fpops", "p_iops", "p_membw", "m_nbytes", "m_cache",
              "m_swap", "d_total", "d_free", "n_bwup", "n_bwdown", "avg_turnaround",
              "credit_per_cpu_sec", "host_cpid"]
BOINC_USER_DELETED = ["id", "cpid"]
BOINC_HOST_DELETED = ["id", "host_cpid"]
BOINC_FLOATS = {"total_credit", "expavg_credit", "expavg_time", "p_fpops", "p_iops", "p_membw",
                "m_nbytes", "m_cache", "m_swap", "d_total", "d_free", "n_bwup", "n_bwdown",
                "avg_turnaround", "credit_per_cpu_sec"}
FIXED = re.compile(r"^-?\d+\.\d{6}$")


def follows_boinc(tags: list[str], boinc: list[str]) -> bool:
    """`tags` are BOINC's, in BOINC's order, with only its optional ones left out."""
    required = [t for t in boinc if not t.endswith("?")]
    order = [t.rstrip("?") for t in boinc]
    return (all(t in tags for t in required) and all(t in order for t in tags)
            and [order.index(t) for t in tags] == sorted(order.index(t) for t in tags))


def golden_rows():
    B = boinc_xml
    return [
        (B.USER, {"id": 7, "name": "Bell\x07\x01 <&> \"q\" 'a' 🚀\tx", "create_time": 1700000000,
                  "total_credit": 1e-06, "expavg_credit": 12345678901.5,
                  "expavg_time": 1700000000.25, "cpid": "0123456789abcdef0123456789abcdef",
                  "teamid": 3}),
        (B.USER, {"id": 8, "name": "Plain", "create_time": 1, "total_credit": 2.0,
                  "expavg_credit": -0.0, "expavg_time": 0.0,
                  "cpid": "fedcba9876543210fedcba9876543210", "teamid": None}),
        (B.TEAM, {"id": 3, "type": 1, "name": "Team ]]> <x>", "userid": 7, "total_credit": 3.5,
                  "expavg_credit": 0.1, "expavg_time": 1700000000.0,
                  "founder_name": "Anonymous", "create_time": 1600000000,
                  "description": "line1\nline2\x0c & more", "country": "None"}),
        (B.HOST, {"id": 11, "userid": None, "total_credit": 4.0, "expavg_credit": 0.5,
                  "expavg_time": 1700000000.5, "p_vendor": "x86", "p_model": "Chromium 131",
                  "os_name": "Linux", "os_version": "x86_64",
                  "misc": '{"p_fpops": "browser estimate"}', "create_time": 1, "rpc_time": 2,
                  "timezone": -18000, "ncpus": 8, "p_fpops": 2500000000.0,
                  "m_nbytes": 8589934592, "host_cpid": "00112233445566778899aabbccddeeff"}),
        (B.USER_DELETED, {"id": 9, "cpid": "abababababababababababababababab"}),
        (B.HOST_DELETED, {"id": 12, "host_cpid": "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"}),
    ]


def test_rows_match_the_golden_file_byte_for_byte():
    written = "".join(boinc_xml.row_xml(table, row) for table, row in golden_rows())
    assert written == GOLDEN.read_text(encoding="utf-8")


def test_golden_rows_parse_strictly_and_follow_boinc():
    root = ET.fromstring(f"<dump>{GOLDEN.read_text(encoding='utf-8')}</dump>")
    boinc = [BOINC_USER, BOINC_USER, BOINC_TEAM, BOINC_HOST, BOINC_USER_DELETED,
             BOINC_HOST_DELETED]
    for element, order in zip(root, boinc, strict=True):
        tags = [child.tag for child in element]
        assert follows_boinc(tags, order), (element.tag, tags)
        for child in element:
            if child.tag in BOINC_FLOATS:
                assert FIXED.match(child.text), (child.tag, child.text)
    user = root[0]
    # Control characters gone, markup and emoji kept, tab given back by the parser.
    assert user.findtext("name") == "Bell <&> \"q\" 'a' 🚀\tx"
    assert root[2].findtext("description") == "line1\nline2 & more"
    assert root[2].findtext("name") == "Team ]]> <x>"
    assert root[3].find("userid") is None  # a volunteer shown as Anonymous hides it


def test_the_table_definitions_are_boincs():
    for table, boinc in [(boinc_xml.USER, BOINC_USER), (boinc_xml.TEAM, BOINC_TEAM),
                         (boinc_xml.HOST, BOINC_HOST),
                         (boinc_xml.USER_DELETED, BOINC_USER_DELETED),
                         (boinc_xml.HOST_DELETED, BOINC_HOST_DELETED)]:
        assert follows_boinc([f.tag for f in table.fields], boinc), table.filename
    roots = {t.filename: (t.root, t.row) for t in boinc_xml.TABLES}
    # db_dump.cpp lines 80-81: table_name and tag_name.
    assert roots == {"user": ("users", "user"), "team": ("teams", "team"),
                     "host": ("hosts", "host"), "user_deleted": ("users_deleted", "user"),
                     "host_deleted": ("hosts_deleted", "host")}


@pytest.mark.parametrize("value, text", [
    (0, "0.000000"), (1e-06, "0.000001"), (1e-07, "0.000000"), (123456789.123456789,
                                                                 "123456789.123457"),
    (1e20, "100000000000000000000.000000"), (-0.0, "0.000000"), (float("nan"), "0.000000"),
    (float("inf"), "0.000000"), (None, "0.000000"), (2, "2.000000"),
])
def test_numbers_are_c_percent_f(value, text):
    assert boinc_xml.fixed(value) == text


@pytest.mark.parametrize("hostile", [
    "".join(chr(c) for c in range(0, 0x20)), "\x7f\x80\x9f", "\ud800 lone", "\ufffe\uffff",
    "]]>", "<!-- -->", "<![CDATA[", "&amp;", "&#0;", "\x00" * 100,
])
def test_any_text_makes_parsable_xml(hostile):
    row = {"id": 1, "name": hostile, "cpid": hostile, "teamid": None}
    document = (boinc_xml.XML_DECLARATION + "<users>\n" + boinc_xml.row_xml(boinc_xml.USER, row)
                + "</users>\n").encode("utf-8")
    user = ET.fromstring(document).find("user")
    assert user.findtext("name") == boinc_xml.clean(hostile)


def test_very_long_names_are_cut_to_boincs_buffer_and_still_parse():
    row = {"id": 1, "name": "🚀" * 10_000 + "&", "cpid": "x"}
    user = ET.fromstring(boinc_xml.row_xml(boinc_xml.USER, row))
    assert user.findtext("name") == "🚀" * boinc_xml.NAME_LIMIT


def test_table_writer_writes_a_declared_document_and_json(tmp_path):
    with boinc_xml.TableWriter(tmp_path, boinc_xml.USER_DELETED) as out:
        out.write({"id": 1, "cpid": "a\x07b"})
        out.write({"id": 2, "cpid": "c"})
    xml = gzip.decompress((tmp_path / "user_deleted.gz").read_bytes()).decode()
    assert xml.startswith('<?xml version="1.0" encoding="utf-8"?>\n<users_deleted>\n')
    assert [u.findtext("cpid") for u in ET.fromstring(xml)] == ["ab", "c"]
    assert gzip.decompress((tmp_path / "user_deleted.json.gz").read_bytes()) == \
        b'[{"id":1,"cpid":"ab"},{"id":2,"cpid":"c"}]\n'


def test_tables_xml_is_boincs():
    xml = boinc_xml.tables_xml(update_time=5, counts={"users": 2, "teams": 0, "hosts": 3,
                                                      "users_deleted": 1, "hosts_deleted": 0},
                               total_credit=1.5, applications=["Squares & <cubes>"])
    root = ET.fromstring(xml.encode())
    # tables_file: update_time, the counts that are not zero, total_credit, applications,
    # badges.
    assert [c.tag for c in root] == ["update_time", "nusers_total", "nhosts_total",
                                     "nusers_deleted_total", "total_credit", "applications",
                                     "badges"]
    assert root.findtext("total_credit") == "1.500000"
    assert root.find("applications/application").findtext("name") == "Squares & <cubes>"
