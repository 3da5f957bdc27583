"""projects/signals.py: a new batch announces its work units, chunk by chunk, inside the
creating transaction (the scheduler issues their replicas on it)."""

import pytest

from sparecycles.projects import services
from sparecycles.projects.models import WorkUnit
from sparecycles.projects.services import QuorumParams, batch_create
from sparecycles.projects.signals import workunits_created

pytestmark = pytest.mark.django_db


def test_each_chunk_of_new_work_units_is_announced_once(app_version, monkeypatch):
    monkeypatch.setattr(services, "BULK_SIZE", 2)
    heard = []

    def receiver(sender, *, batch, workunit_ids, replicas_each, **kwargs):
        heard.append((batch.pk, list(workunit_ids), replicas_each))

    workunits_created.connect(receiver)
    try:
        batch = batch_create(app_version=app_version, name="b",
                             inputs=[{"n": n} for n in range(5)],
                             quorum=QuorumParams(min_quorum=1, target_nresults=2))
    finally:
        workunits_created.disconnect(receiver)
    assert [len(ids) for _, ids, _ in heard] == [2, 2, 1]
    assert {b for b, _, _ in heard} == {batch.pk} and {r for _, _, r in heard} == {2}
    assert sorted(i for _, ids, _ in heard for i in ids) == sorted(
        WorkUnit.objects.filter(batch=batch).values_list("pk", flat=True))


def test_a_receiver_that_fails_rolls_the_batch_back(app_version):
    def broken(sender, **kwargs):
        raise RuntimeError("no replicas today")

    workunits_created.connect(broken)
    try:
        with pytest.raises(RuntimeError):
            batch_create(app_version=app_version, name="b", inputs=[{"n": 1}])
    finally:
        workunits_created.disconnect(broken)
    assert not WorkUnit.objects.exists()
