"""The daily statistics files parse as BOINC's db_dump XML and as JSON."""

import gzip
import json
import xml.etree.ElementTree as ET

import pytest

from sparecycles.accounts.services import volunteer_update
from sparecycles.credit.stats_export import stats_export
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.services import team_create

pytestmark = pytest.mark.django_db


def test_export_writes_users_teams_and_hosts(tmp_path, make_batch, make_device):
    make_batch(count=1)
    device = make_device().device
    team_create(founder=device.volunteer, name="Sievers <&>")
    volunteer_update(volunteer=device.volunteer, name="Secret Person", show_anonymous=True)
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    replica_report(device=device, task_id=replica.task_id, ok=True, output={})
    counts = stats_export(tmp_path)
    assert counts == {"users": 1, "teams": 1, "hosts": 1}
    users = ET.fromstring(gzip.decompress((tmp_path / "user.gz").read_bytes()))
    user = users.find("user")
    assert user.findtext("name") == "Anonymous"  # the public-board choice is respected
    assert float(user.findtext("total_credit")) == 1.0
    assert float(user.findtext("expavg_credit")) > 0
    teams = ET.fromstring(gzip.decompress((tmp_path / "team.gz").read_bytes()))
    assert teams.find("team").findtext("name") == "Sievers <&>"
    hosts = json.loads(gzip.decompress((tmp_path / "host.json.gz").read_bytes()))
    assert hosts[0]["total_credit"] == 1.0 and hosts[0]["userid"] == device.volunteer_id
    assert ET.parse(tmp_path / "tables.xml").getroot().findtext("nusers_total") == "1"
    assert "Secret Person" not in gzip.decompress((tmp_path / "user.json.gz").read_bytes()).decode()
