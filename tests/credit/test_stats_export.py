"""The daily dump, end to end: real credit, hostile names, choices, deletions, the swap.

Element names and order are checked against BOINC's, written out in test_boinc_xml.py from
sched/db_dump.cpp (write_user lines 548-600, write_team 664-750, write_host 445-535,
write_*_deleted 434-443 / 537-546 at BOINC commit c5c6cb79b9).
"""

import gzip
import hashlib
import json
import os
import xml.etree.ElementTree as ET

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sparecycles.credit import bench_export
from sparecycles.credit import stats_export as export
from sparecycles.credit.stats_export import stats_export
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.identity import cpid as volunteer_cpid
from sparecycles.volunteers.models import Device, Team, Volunteer
from sparecycles.volunteers.services import team_create

from .test_boinc_xml import (
    BOINC_FLOATS,
    BOINC_HOST,
    BOINC_HOST_DELETED,
    BOINC_TEAM,
    BOINC_USER,
    BOINC_USER_DELETED,
    FIXED,
    follows_boinc,
)

pytestmark = pytest.mark.django_db

HOSTILE = "Bell\x07\x01\x1b <&> \"quoted\" 'single' 🚀 ]]>"
LONG = "🦀" * 100  # the column's limit, four bytes a character
HIDDEN = "Opted Out Olga"
GONE = "Deleted Dora"


def earn(device, times=1):
    for _ in range(times):
        replica = tasks_dispatch(device=device, slots=1).replicas[0]
        replica_report(device=device, task_id=replica.task_id, ok=True, output={"x": 1})


def volunteer_of(device) -> Volunteer:
    return Volunteer.objects.get(pk=device.volunteer_id)


@pytest.fixture
def site(make_batch, make_device):
    """Six volunteers, each with one device, five of them with credit."""
    make_batch(count=12, min_quorum=1, target_nresults=1)
    devices = {key: make_device().device for key in
               ("hostile", "long", "anonymous", "hidden", "gone", "idle")}
    team = team_create(founder=volunteer_of(devices["hostile"]), name="Sievers")
    for key in ("hostile", "long", "anonymous", "hidden", "gone"):
        earn(devices[key], 2 if key == "hostile" else 1)
    # Names straight into the database: the export must cope whatever the forms let in.
    names = {"hostile": HOSTILE, "long": LONG, "anonymous": "Shy Sam", "hidden": HIDDEN,
             "gone": GONE, "idle": "Idle Ivan"}
    for key, name in names.items():
        Volunteer.objects.filter(pk=devices[key].volunteer_id).update(name=name)
    Team.objects.filter(pk=team.pk).update(name="Sievers <&> \x0b🚀",
                                           description="We sieve.\x1f\x08 <b>&</b>\n")
    user = get_user_model().objects.create_user("longname", "Long.Name@Example.org", "pw-x-123")
    Volunteer.objects.filter(pk=devices["long"].volunteer_id).update(
        user=user, email_verified_at=timezone.now())
    Volunteer.objects.filter(pk=devices["anonymous"].volunteer_id).update(show_anonymous=True)
    Volunteer.objects.filter(pk=devices["hidden"].volunteer_id).update(in_stats_exports=False)
    Volunteer.objects.filter(pk=devices["gone"].volunteer_id).update(deleted_at=timezone.now())
    Device.objects.filter(pk=devices["hostile"].pk).update(
        os_name="Linux\x07", os_version="x86_64", p_vendor="x86", p_model="Chromium 131",
        p_fpops=2.5e9, timezone=3600)
    return {key: Device.objects.select_related("volunteer").get(pk=d.pk)
            for key, d in devices.items()}


def read(directory, name) -> tuple[bytes, ET.Element]:
    raw = gzip.decompress((directory / name).read_bytes())
    return raw, ET.fromstring(raw)  # expat: strict, any error raises


def test_every_file_is_declared_parsable_and_in_boincs_order(site, tmp_path):
    stats = tmp_path / "stats"
    stats_export(stats)
    for name, root, boinc in [("user.gz", "users", BOINC_USER), ("team.gz", "teams", BOINC_TEAM),
                              ("host.gz", "hosts", BOINC_HOST),
                              ("user_deleted.gz", "users_deleted", BOINC_USER_DELETED),
                              ("host_deleted.gz", "hosts_deleted", BOINC_HOST_DELETED)]:
        raw, tree = read(stats, name)
        assert raw.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n'), name
        assert tree.tag == root and len(tree), name
        for row in tree:
            tags = [child.tag for child in row]
            assert follows_boinc(tags, boinc), (name, tags)
            for child in row:
                if child.tag in BOINC_FLOATS:
                    assert FIXED.match(child.text), (name, child.tag, child.text)
    tables = (stats / "tables.xml").read_bytes()
    assert tables.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<tables>')
    ET.fromstring(tables)


def test_users_rows_names_and_cpids(site, tmp_path):
    stats = tmp_path / "stats"
    counts = stats_export(stats)
    _, users = read(stats, "user.gz")
    by_id = {int(u.findtext("id")): u for u in users}
    ids = {key: d.volunteer_id for key, d in site.items()}
    # Only credit, only those who chose to appear, never the deleted.
    assert set(by_id) == {ids["hostile"], ids["long"], ids["anonymous"]}
    assert counts["users"] == 3 and counts["users_deleted"] == 1
    assert by_id[ids["hostile"]].findtext("name") == "Bell <&> \"quoted\" 'single' 🚀 ]]>"
    assert by_id[ids["long"]].findtext("name") == LONG
    assert by_id[ids["anonymous"]].findtext("name") == "Anonymous"
    assert by_id[ids["hostile"]].findtext("total_credit") == "2.000000"
    team = Team.objects.get()
    assert by_id[ids["hostile"]].findtext("teamid") == str(team.pk)
    assert by_id[ids["long"]].find("teamid") is None  # BOINC leaves out teamid 0
    # cpid: md5(cross_project_id + email) with a verified email, of the id alone without.
    long_volunteer = site["long"].volunteer
    assert by_id[ids["long"]].findtext("cpid") == hashlib.md5(
        (long_volunteer.cross_project_id + "long.name@example.org").encode()).hexdigest()
    hostile = site["hostile"].volunteer
    assert by_id[ids["hostile"]].findtext("cpid") == hashlib.md5(
        hostile.cross_project_id.encode()).hexdigest()
    assert by_id[ids["long"]].findtext("cpid") == volunteer_cpid(
        Volunteer.objects.select_related("user").get(pk=ids["long"]))


def test_an_unverified_email_does_not_change_the_cpid(site, tmp_path):
    volunteer = site["hostile"].volunteer
    before = volunteer_cpid(volunteer)
    user = get_user_model().objects.create_user("hostile", "someone@example.org", "pw-x-123")
    Volunteer.objects.filter(pk=volunteer.pk).update(user=user)
    assert volunteer_cpid(Volunteer.objects.get(pk=volunteer.pk)) == before
    stats_export(tmp_path / "stats")
    _, users = read(tmp_path / "stats", "user.gz")
    assert before in [u.findtext("cpid") for u in users]


def test_deleted_accounts_and_their_devices_are_listed_deleted(site, tmp_path):
    stats = tmp_path / "stats"
    stats_export(stats)
    gone = site["gone"]
    _, users_deleted = read(stats, "user_deleted.gz")
    assert [(u.findtext("id"), u.findtext("cpid")) for u in users_deleted] == [
        (str(gone.volunteer_id), volunteer_cpid(gone.volunteer))]
    _, hosts_deleted = read(stats, "host_deleted.gz")
    assert [(h.findtext("id"), h.findtext("host_cpid")) for h in hosts_deleted] == [
        (str(gone.pk), gone.host_cpid)]


def test_hosts_carry_what_the_browser_reported(site, tmp_path):
    stats = tmp_path / "stats"
    stats_export(stats)
    _, hosts = read(stats, "host.gz")
    by_id = {int(h.findtext("id")): h for h in hosts}
    assert set(by_id) == {site[k].pk for k in ("hostile", "long", "anonymous")}
    host = by_id[site["hostile"].pk]
    device = site["hostile"]
    assert host.findtext("userid") == str(device.volunteer_id)
    assert host.findtext("host_cpid") == device.host_cpid and len(device.host_cpid) == 32
    assert host.findtext("rpc_time") == str(int(device.last_seen.timestamp()))
    assert host.findtext("os_name") == "Linux" and host.findtext("p_vendor") == "x86"
    assert host.findtext("p_fpops") == "2500000000.000000"
    assert host.findtext("timezone") == "3600"
    assert host.findtext("ncpus") == "1"  # the test devices report no cores: BOINC's 1
    assert host.find("p_ncpus") is None
    assert "browser estimate" in host.findtext("misc")
    assert host.findtext("total_credit") == "2.000000"
    assert float(host.findtext("expavg_credit")) > 0
    # A volunteer shown as Anonymous keeps their devices unlinked (BOINC's show_hosts).
    assert by_id[site["anonymous"].pk].find("userid") is None


def test_teams(site, tmp_path):
    stats = tmp_path / "stats"
    stats_export(stats)
    _, teams = read(stats, "team.gz")
    (team,) = teams
    assert team.findtext("name") == "Sievers <&> 🚀"
    assert team.findtext("type") == "1" and team.findtext("country") == "None"
    assert team.findtext("founder_name") == "Bell <&> \"quoted\" 'single' 🚀 ]]>"
    assert team.findtext("description") == "We sieve. <b>&</b>\n"
    assert team.find("nusers") is None


def test_a_founder_who_left_the_exports_is_not_named(site, tmp_path):
    Volunteer.objects.filter(pk=site["hostile"].volunteer_id).update(in_stats_exports=False)
    stats_export(tmp_path / "stats")
    _, teams = read(tmp_path / "stats", "team.gz")
    assert teams[0].find("founder_name") is None and teams[0].findtext("userid") == "0"


def test_opted_out_and_deleted_names_appear_in_no_file(site, tmp_path):
    stats = tmp_path / "stats"
    stats_export(stats)
    for path in stats.iterdir():
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode()
        assert HIDDEN not in text and GONE not in text, path.name
        assert "Idle Ivan" not in text  # no credit, no row


def test_tables_counts_are_boincs(site, tmp_path):
    stats = tmp_path / "stats"
    stats_export(stats)
    tables = ET.parse(stats / "tables.xml").getroot()
    # BOINC counts every user and host with credit, listed or not (db_dump.cpp TABLE_USER).
    assert tables.findtext("nusers_total") == "4"
    assert tables.findtext("nhosts_total") == "4"
    assert tables.findtext("nteams_total") == "1"
    assert tables.findtext("nusers_deleted_total") == "1"
    assert tables.findtext("nhosts_deleted_total") == "1"
    assert tables.findtext("total_credit") == "5.000000"
    assert [a.findtext("name") for a in tables.find("applications")] == ["Squares"]


def test_json_mirrors_the_xml(site, tmp_path):
    stats = tmp_path / "stats"
    stats_export(stats)
    _, users = read(stats, "user.gz")
    listed = json.loads(gzip.decompress((stats / "user.json.gz").read_bytes()))
    assert [u["id"] for u in listed] == [int(u.findtext("id")) for u in users]
    assert listed[0]["total_credit"] == 2.0 and "\x07" not in listed[0]["name"]


# --- the swap --------------------------------------------------------------------------------

def test_the_dump_is_swapped_in_whole_and_old_ones_pruned(site, tmp_path):
    stats = tmp_path / "stats"
    stats_export(stats)
    assert stats.is_symlink()
    first = stats.resolve()
    held = (stats / "user.gz").open("rb")  # a download under way
    Volunteer.objects.filter(pk=site["idle"].volunteer_id).update(in_stats_exports=False)
    for _ in range(export.KEEP_DUMPS + 2):
        stats_export(stats)
    assert stats.resolve() != first
    kept = [p for p in stats.with_name("stats.dumps").iterdir()]
    assert len(kept) == export.KEEP_DUMPS + 1
    # The reader of the old dump still gets the whole old file.
    ET.fromstring(gzip.decompress(held.read()))
    held.close()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_failed_export_leaves_the_previous_dump(site, tmp_path, monkeypatch):
    stats = tmp_path / "stats"
    stats_export(stats)
    before = os.readlink(stats)

    def broken():
        yield from ()
        raise RuntimeError("database went away")

    monkeypatch.setattr(export, "team_rows", broken)
    with pytest.raises(RuntimeError):
        stats_export(stats)
    assert os.readlink(stats) == before
    assert [p.name for p in stats.with_name("stats.dumps").iterdir()] == [
        os.path.basename(before)]


def test_a_directory_from_before_the_swap_is_replaced(site, tmp_path):
    stats = tmp_path / "stats"
    stats.mkdir()
    (stats / "user.gz").write_bytes(b"old")
    stats_export(stats)
    assert stats.is_symlink() and (stats / "user.gz").read_bytes() != b"old"


# --- queries ---------------------------------------------------------------------------------

def export_queries(path) -> int:
    with CaptureQueriesContext(connection) as queries:
        stats_export(path)
    return len(queries)


def test_the_export_makes_the_same_queries_for_ten_or_a_hundred_hosts(tmp_path):
    bench_export.seed(volunteers=5, hosts=10, teams=2, rng_seed=1, log=lambda line: None)
    small = export_queries(tmp_path / "small")
    bench_export.seed(volunteers=50, hosts=100, teams=5, rng_seed=2, log=lambda line: None)
    large = export_queries(tmp_path / "large")
    assert small == large <= 12
    _, hosts = read(tmp_path / "large", "host.gz")
    assert len(hosts) > 90  # the deleted and the opted out are the only ones missing


def test_bench_export_reports_seconds_and_queries(tmp_path):
    bench_export.seed(volunteers=20, hosts=40, rng_seed=3, log=lambda line: None)
    result = bench_export.time_export(tmp_path / "stats")
    assert result.hosts == 40 and result.volunteers == 20
    assert result.seconds > 0 and 0 < result.queries <= 12
    assert result.counts["hosts"] + result.counts["hosts_deleted"] <= 40
