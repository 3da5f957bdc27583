"""The daily statistics files, served from SPARECYCLES["STATS_DIR"]."""

import gzip
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.http import http_date

from sparecycles.credit.stats_export import stats_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def exported(make_volunteer):
    make_volunteer("Ada", credit=12.5)
    stats_export()
    return Path(settings.SPARECYCLES["STATS_DIR"])


def test_gzip_files_are_served_as_they_are(client, exported):
    response = client.get("/stats/user.gz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    assert "Content-Encoding" not in response  # stats sites want the .gz itself
    assert response["Content-Disposition"] == 'attachment; filename="user.gz"'
    xml = gzip.decompress(b"".join(response.streaming_content)).decode()
    assert "<name>Ada</name>" in xml and "<total_credit>12.500000</total_credit>" in xml
    users = json.loads(gzip.decompress(b"".join(client.get("/stats/user.json.gz")
                                                 .streaming_content)))
    assert users[0]["name"] == "Ada"


def test_tables_xml_and_conditional_get(client, exported):
    response = client.get("/stats/tables.xml")
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    assert b"<nusers_total>1</nusers_total>" in b"".join(response.streaming_content)
    head = client.head("/stats/tables.xml")
    assert head.status_code == 200 and head["Last-Modified"]
    since = http_date((exported / "tables.xml").stat().st_mtime + 1)
    assert client.get("/stats/tables.xml", HTTP_IF_MODIFIED_SINCE=since).status_code == 304


@pytest.mark.parametrize("name", ["settings.py", "user.xml", "..%2Fsparecycles.sqlite3",
                                  "user.gz.tmp", "team.json"])
def test_only_the_export_files_can_be_fetched(client, exported, name):
    assert client.get(f"/stats/{name}").status_code == 404


def test_not_exported_yet(client, db):
    assert client.get("/stats/team.gz").status_code == 404
    html = client.get("/stats/").content.decode()
    assert "none exported yet" in html


def test_index_lists_the_files(client, exported):
    html = client.get("/stats/").content.decode()
    for name in ("user.gz", "team.gz", "host.gz", "user.json.gz", "tables.xml"):
        assert f'href="/stats/{name}"' in html
