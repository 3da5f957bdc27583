"""Import the dump the way a statistics site does, and find every row it should.

Sites such as BOINC Combined Stats stream each file through a SAX handler (bsimport's
*XMLFileHandler.java): one row per <user>/<team>/<host> element, each child's text a field,
numbers read as decimals, users keyed by cpid. This test does the same with the stdlib's
expat-based SAX parser (strict: any malformed byte fails the import).
"""

import gzip
import re
import xml.sax
from collections import defaultdict

import pytest
from django.db.models import Sum
from django.utils import timezone

from sparecycles.credit import bench_export
from sparecycles.credit.models import MICRO, CreditGrant, TeamCredit, VolunteerCredit
from sparecycles.credit.stats_export import stats_export
from sparecycles.volunteers.models import Device, Volunteer

pytestmark = pytest.mark.django_db

DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")  # no exponent, no NaN, no spaces
CPID = re.compile(r"^[0-9a-f]{32}$")
NUMBERS = {"id", "userid", "teamid", "create_time", "rpc_time", "timezone", "ncpus", "type",
           "total_credit", "expavg_credit", "expavg_time", "p_fpops", "m_nbytes", "p_iops",
           "p_membw", "m_cache", "m_swap", "d_total", "d_free", "n_bwup", "n_bwdown",
           "avg_turnaround", "credit_per_cpu_sec"}


class RowHandler(xml.sax.ContentHandler):
    """Rows of one file: the depth-2 elements, their children's text as fields."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.depth, self.row, self.text = 0, None, []

    def startElement(self, name, attrs):
        self.depth += 1
        if self.depth == 2:
            self.row = {}
        self.text = []

    def characters(self, content):
        self.text.append(content)

    def endElement(self, name):
        if self.depth == 3:
            self.row[name] = "".join(self.text)
        elif self.depth == 2:
            self.rows.append(self.row)
        self.depth -= 1


def import_file(path) -> list[dict[str, str]]:
    handler = RowHandler()
    with gzip.open(path, "rb") as stream:
        xml.sax.parse(stream, handler)
    for row in handler.rows:
        for field, value in row.items():
            if field in NUMBERS:
                assert DECIMAL.match(value), (path.name, field, value)
    return handler.rows


def test_a_stats_site_imports_every_row_it_should(tmp_path):
    bench_export.seed(volunteers=60, hosts=150, teams=4, log=lambda line: None)
    Volunteer.objects.filter(pk__in=Volunteer.objects.order_by("-pk").values("pk")[:2]).update(
        deleted_at=timezone.now())
    stats = tmp_path / "stats"
    stats_export(stats)
    users = import_file(stats / "user.gz")
    teams = import_file(stats / "team.gz")
    hosts = import_file(stats / "host.gz")
    deleted = import_file(stats / "user_deleted.gz")
    hosts_deleted = import_file(stats / "host_deleted.gz")

    # Expected, from the books directly.
    listed = VolunteerCredit.objects.filter(
        credit_micro__gt=0, volunteer__in_stats_exports=True,
        volunteer__deleted_at__isnull=True, volunteer__merged_into__isnull=True)
    expected_users = dict(listed.values_list("volunteer_id", "credit_micro"))
    device_credit = dict(CreditGrant.objects.filter(reversal__isnull=True).order_by()
                         .values("device_id").annotate(s=Sum("amount_micro"))
                         .values_list("device_id", "s"))
    expected_hosts = {pk: device_credit[pk] for pk in Device.objects.filter(
        volunteer__in_stats_exports=True, volunteer__deleted_at__isnull=True)
        .values_list("pk", flat=True) if device_credit.get(pk, 0) > 0}
    expected_teams = dict(TeamCredit.objects.filter(credit_micro__gt=0)
                          .values_list("team_id", "credit_micro"))

    assert {int(u["id"]): round(float(u["total_credit"]) * MICRO) for u in users} == \
        expected_users
    assert {int(h["id"]): round(float(h["total_credit"]) * MICRO) for h in hosts} == \
        expected_hosts
    assert {int(t["id"]): round(float(t["total_credit"]) * MICRO) for t in teams} == \
        expected_teams
    assert len(users) > 40 and len(hosts) > 100 and deleted and hosts_deleted

    # Sites key users by cpid and hosts by host_cpid: unique, 32 hex digits, in every file.
    cpids = [u["cpid"] for u in users] + [d["cpid"] for d in deleted]
    assert len(set(cpids)) == len(cpids) and all(CPID.match(c) for c in cpids)
    host_cpids = [h["host_cpid"] for h in hosts] + [h["host_cpid"] for h in hosts_deleted]
    assert len(set(host_cpids)) == len(host_cpids) and all(CPID.match(c) for c in host_cpids)

    # References resolve: a host's userid is a listed user, a user's teamid a team with credit.
    user_ids = {int(u["id"]) for u in users}
    assert {int(h["userid"]) for h in hosts if "userid" in h} <= user_ids
    team_ids = {int(t["id"]) for t in teams}
    assert {int(u["teamid"]) for u in users if "teamid" in u} <= team_ids | {
        pk for pk in TeamCredit.objects.values_list("team_id", flat=True)}
    per_user = defaultdict(int)
    for h in hosts:
        if "userid" in h:
            per_user[int(h["userid"])] += 1
    assert per_user  # hosts are linked to their users where the user allows it
    # Every name parsed and came through without control characters.
    assert all(not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", u["name"]) for u in users)
    assert any("<&>" in u["name"] for u in users)
