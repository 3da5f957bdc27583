"""rows_update: one statement per row, pipelined, with Django's own value conversion."""

import datetime as dt

import pytest
from django.utils import timezone

from sparecycles.db.bulk import rows_update
from sparecycles.scheduler.models import Replica

pytestmark = pytest.mark.django_db


def test_rows_update_writes_json_datetimes_and_nulls(make_batch):
    make_batch(count=3)
    replicas = list(Replica.objects.order_by("pk"))
    when = timezone.now() - dt.timedelta(hours=1)
    outputs = [{"a": [1, 2.5, None]}, None, "text"]
    for replica, output in zip(replicas, outputs, strict=True):
        replica.output, replica.received_at, replica.error_message = output, when, "é"
    assert rows_update(Replica, replicas, ["output", "received_at", "error_message"]) == 3
    stored = list(Replica.objects.order_by("pk"))
    assert [r.output for r in stored] == outputs
    assert all(r.received_at == when and r.error_message == "é" for r in stored)


def test_rows_update_with_nothing_to_do_sends_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert rows_update(Replica, [], ["output"]) == 0


def test_row_writer_inserts_rows_with_the_fields_own_defaults_and_adapters(make_batch):
    from sparecycles.db.bulk import RowWriter
    from sparecycles.projects.models import WorkUnit

    batch = make_batch(count=1)
    template = WorkUnit.objects.get(batch=batch)
    writer = RowWriter(WorkUnit(batch=batch, app_version=template.app_version, seq=1, input={}),
                       ["seq", "input"])
    writer.write([writer.row(seq=seq, input={"n": seq, "s": "é"}) for seq in (2, 3)])
    rows = list(WorkUnit.objects.filter(batch=batch, seq__gt=1).order_by("seq"))
    assert [(r.seq, r.input) for r in rows] == [(2, {"n": 2, "s": "é"}), (3, {"n": 3, "s": "é"})]
    assert all(r.state == WorkUnit.State.OPEN and r.created_at is not None for r in rows)
