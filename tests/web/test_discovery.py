"""Project discovery: get_project_config and server_status (XML and JSON), as BOINC's."""

import xml.etree.ElementTree as ET

import pytest
from django.test import override_settings

from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_site(make_batch, make_device):
    """Five one-replica work units: one credited, one out on a device, three waiting."""
    make_batch(count=5, min_quorum=1, target_nresults=1)
    done, busy = make_device().device, make_device().device
    replica = tasks_dispatch(device=done, slots=1).replicas[0]
    replica_report(device=done, task_id=replica.task_id, ok=True, output={"x": 1})
    tasks_dispatch(device=busy, slots=1)
    make_device()  # connected, never computed
    return done, busy


def test_project_config_is_boincs_document(client):
    response = client.get("/get_project_config.php")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n')
    root = ET.fromstring(response.content)
    assert root.tag == "project_config"
    # get_project_config.php's order for the elements it shares with this site.
    tags = [child.tag for child in root]
    boinc = ["name", "master_url", "web_rpc_url_base", "web_stopped", "min_passwd_length",
             "sched_stopped", "min_client_version", "platforms", "terms_of_use"]
    assert [t for t in tags if t in boinc] == boinc
    assert root.findtext("name") == "Spare Cycles"
    assert root.findtext("master_url") == "http://testserver/"
    assert root.find("account_creation_disabled") is None  # sign-up is open
    assert int(root.findtext("min_client_version")) == 10000
    assert int(root.findtext("min_passwd_length")) >= 8
    platform = root.find("platforms/platform")
    assert platform.findtext("platform_name") == "browser"
    assert "statistics exports" in root.findtext("terms_of_use")


@override_settings(SITE_ORIGIN="https://cycles.example.org", SITE_NAME="Cycles <&> \x07Co")
def test_project_config_uses_the_configured_origin_and_escapes_the_name(client):
    root = ET.fromstring(client.get("/get_project_config.php").content)
    assert root.findtext("master_url") == "https://cycles.example.org/"
    assert root.findtext("name") == "Cycles <&> Co"


def test_server_status_xml_counts_work_and_people(client, busy_site):
    for url in ("/server_status.xml", "/server_status.php?xml=1"):
        response = client.get(url)
        assert response["Content-Type"] == "application/xml; charset=utf-8"
        root = ET.fromstring(response.content)
        assert root.tag == "server_status"
        states = root.find("database_file_states")
        numbers = {child.tag: child.text for child in states if child.tag != "tasks_by_app"}
        assert numbers == {
            "results_ready_to_send": "3", "results_in_progress": "1",
            "users_with_recent_credit": "1", "users_with_credit": "1",
            "users_registered_in_past_24_hours": "3", "hosts_with_recent_credit": "1",
            "hosts_with_credit": "1", "hosts_registered_in_past_24_hours": "3",
            "results_received_in_past_24_hours": "1"}
        (app,) = states.find("tasks_by_app")
        assert [c.tag for c in app] == ["id", "name", "unsent", "in_progress"]
        assert (app.findtext("name"), app.findtext("unsent"), app.findtext("in_progress")) \
            == ("square", "3", "1")


def test_server_status_json_has_the_same_numbers(client, busy_site):
    data = client.get("/server_status.json").json()
    assert data["results_ready_to_send"] == 3 and data["results_in_progress"] == 1
    assert data["results_received_in_past_24_hours"] == 1
    assert data["users_with_recent_credit"] == 1 and data["hosts_with_credit"] == 1
    assert data["recent_credit_window_s"] == 7 * 86400
    assert data["tasks_by_app"] == [{"id": data["tasks_by_app"][0]["id"], "name": "square",
                                     "unsent": 3, "in_progress": 1}]
    assert isinstance(data["generated_at"], str)
    assert all(isinstance(data[k], int) for k in data
               if k not in ("generated_at", "tasks_by_app"))


def test_an_empty_site_has_a_status_of_zeros(client):
    data = client.get("/server_status.json").json()
    assert data["results_ready_to_send"] == 0 and data["tasks_by_app"] == []
    ET.fromstring(client.get("/server_status.xml").content)


def test_status_is_counted_once_a_minute(client, busy_site, django_assert_max_num_queries):
    client.get("/server_status.json")
    with django_assert_max_num_queries(0):
        client.get("/server_status.xml")
        client.get("/server_status.json")


@pytest.mark.parametrize("url", ["/get_project_config.php", "/server_status.xml",
                                 "/server_status.json"])
def test_only_reads(client, url):
    assert client.post(url).status_code == 405
    assert client.head(url).status_code == 200


def test_the_footer_links_them(client):
    html = client.get("/stats/").content.decode()
    for href in ("/stats/", "/get_project_config.php", "/server_status.xml",
                 "/server_status.json"):
        assert f'href="{href}"' in html
