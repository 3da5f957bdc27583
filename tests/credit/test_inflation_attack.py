"""The attack of issue 15: an owner declares 1e24 FLOPs per unit through the API to mint credit.

On the old code one work unit then earned 2.3e12 credit. Now credit is bounded by the work
measured (elapsed times normalised per device); only a superuser's recorded approval lets
a declared estimate raise it, and the API refuses to let an owner approve.
"""

import dataclasses
import datetime as dt
import time
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from sparecycles.credit import claims
from sparecycles.credit.claims import app_version_scale, calibration_cache_clear
from sparecycles.credit.models import MICRO, CreditGrant, FlopsApproval, VolunteerCredit
from sparecycles.credit.normalisation import (
    DEVICE_WINDOW,
    MAX_GRANT_MICRO,
    micro_credit_for_flops,
    micro_credit_for_ms,
)
from sparecycles.credit.services import flops_approve
from sparecycles.ledger.models import Epoch
from sparecycles.ledger.policy import SHARE_WHOLE, project_code
from sparecycles.ledger.services import epochs_close_due, ledger_init
from sparecycles.ledger.verify import verify_ledger
from sparecycles.projects.models import App, AppVersion, Project, WorkUnit
from sparecycles.projects.services import QuorumParams, batch_create
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.models import DeviceCredibility
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.services import device_connect
from tests.api.conftest import token_client
from tests.ledger.conftest import TEST_POLICY

pytestmark = pytest.mark.django_db

CODE = b"def main(input):\n    return {'n': input['n'], 'square': input['n'] ** 2}\n"
BASE_MS = 200  # a work unit of size 1 on a speed-1 device


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


def devices(speeds):
    """Established devices (validation lets them settle a quorum, as if spot checks had
    confirmed them) with a slowness factor each (1 = fast, 4 = four times slower)."""
    fleet = [(device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device, s)
             for s in speeds]
    for device, _ in fleet:
        DeviceCredibility.objects.update_or_create(device=device, defaults={"confirmed": 20})
    return fleet


def run(version, fleet, *, count, elapsed=None, quorum=2):
    """Honest results for `count` new work units, each device reporting the time it took
    (the task sent a minute before, so the wall time never clamps these)."""
    batch = batch_create(app_version=version, name="run", inputs=[{"n": i} for i in range(count)],
                         quorum=QuorumParams(min_quorum=quorum, target_nresults=quorum))
    elapsed = elapsed or (lambda unit, slow, device: BASE_MS * slow * (1 + unit.seq % 3))
    for _ in range(100):
        busy = False
        for device, slow in fleet:
            for replica in tasks_dispatch(device=device, slots=1).replicas:
                busy = True
                Replica.objects.filter(pk=replica.pk).update(
                    sent_at=timezone.now() - dt.timedelta(minutes=1))
                unit = WorkUnit.objects.get(pk=replica.workunit_id)
                replica_report(device=device, task_id=replica.task_id, ok=True,
                               output={"n": unit.input["n"], "square": unit.input["n"] ** 2},
                               elapsed_ms=int(elapsed(unit, slow, device)))
        if not busy:
            break
    assert not WorkUnit.objects.filter(batch=batch).exclude(state="completed").exists()
    return batch


def upload_version(api, app, flops):
    response = api.post(f"/api/v1/apps/{app.name}/versions/", {
        "code": SimpleUploadedFile("main.py", CODE), "flops_per_unit": flops},
        format="multipart")
    assert response.status_code == 201, response.content
    return AppVersion.objects.get(app=app, number=response.json()["number"])


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.org", "pw-root-123")


def test_declaring_1e24_flops_through_the_api_earns_only_the_measured_work(owner, project,
                                                                            superuser):
    api = token_client(owner)
    app = App.objects.create(project=project, name="inflate", title="Inflated")
    version = upload_version(api, app, "1e24")
    assert version.flops_per_unit == 1e24
    fleet = devices([1, 1, 1, 4, 4, 4])
    batch = run(version, fleet, count=12)

    grants = CreditGrant.objects.filter(workunit__batch=batch)
    assert grants.count() >= 24  # two per unit, more where validation asked for a third
    # Bounded by measured work: no result is worth more than a few seconds of the reference
    # device. The largest unit takes 0.6 reference-seconds, but units differ up to 3x in size
    # and dispatch is random, so a device's speed, estimated from the medians of its few
    # results, can be off by the size spread on top of its 4x slowness (one run in about a
    # hundred gave more than 3 s): 10 reference-seconds is the honest ceiling here, against
    # 2.3e12 credit under the old code.
    bound = micro_credit_for_ms(10_000, reference_gflops=1.0)
    assert all(0 < g.amount_micro <= bound for g in grants), [g.amount_micro for g in grants]
    assert max(v.credit_micro for v in VolunteerCredit.objects.all()) < MICRO   # not 2.3e12 credit
    # Both replicas of a work unit get the same (canonical) credit.
    for unit in WorkUnit.objects.filter(batch=batch):
        assert len(set(grants.filter(workunit=unit).values_list("amount_micro", flat=True))) == 1

    # The owner cannot approve the estimate: not by the API, nor by changing the version.
    response = api.post(f"/api/v1/apps/{app.name}/versions/{version.number}/approve-flops/",
                        {"flops_per_unit": 1e24}, format="json")
    assert response.status_code == 403
    assert "superuser" in response.json()["detail"]
    assert not FlopsApproval.objects.exists()
    assert api.get(f"/api/v1/apps/{app.name}/versions/{version.number}/"
                   ).json()["flops_approval"] is None

    # A superuser approves it: recorded (who, when, value), shown by the API and the admin.
    root = token_client(superuser)
    response = root.post(f"/api/v1/apps/{app.name}/versions/{version.number}/approve-flops/",
                         {"note": "checked the kernel"}, format="json")
    assert response.status_code == 200, response.content
    shown = response.json()["flops_approval"]
    assert shown["flops_per_unit"] == 1e24 and shown["approved_by"] == "root"
    approval = FlopsApproval.objects.get()
    assert (approval.app_version, approval.approved_by, approval.flops_per_unit) == (
        version, superuser, 1e24)
    assert approval.approved_at is not None

    approved = run(version, fleet, count=2)
    assert set(CreditGrant.objects.filter(workunit__batch=approved)
               .values_list("amount_micro", flat=True)) == {MAX_GRANT_MICRO}
    # Credit granted before the approval is not changed by it.
    assert all(0 < g.amount_micro <= bound
               for g in CreditGrant.objects.filter(workunit__batch=batch))

    # A new version is a new estimate: bounded again until approved again.
    again = upload_version(api, app, "1e24")
    later = run(again, fleet, count=2)
    assert all(g.amount_micro <= bound for g in CreditGrant.objects.filter(workunit__batch=later))


def test_the_admin_shows_approvals_to_superusers_only(client, owner, project, superuser):
    app = App.objects.create(project=project, name="inflate", title="Inflated")
    version = upload_version(token_client(owner), app, "5e12")
    client.force_login(superuser)
    response = client.post("/admin/credit/flopsapproval/add/", {
        "app_version": version.pk, "flops_per_unit": "", "note": "bench checked"})
    assert response.status_code == 302, response.content[:2000]
    approval = FlopsApproval.objects.get()
    assert (approval.approved_by, approval.flops_per_unit) == (superuser, 5e12)
    page = client.get("/admin/credit/flopsapproval/").content.decode()
    assert "inflate v1" in page and "5e+12" in page and "root" in page
    # Approvals are never edited or deleted in place.
    assert client.get(f"/admin/credit/flopsapproval/{approval.pk}/delete/").status_code == 403

    owner.is_staff = True
    owner.save()
    client.force_login(owner)
    assert client.get("/admin/credit/flopsapproval/").status_code == 403
    assert client.post("/admin/credit/flopsapproval/add/", {
        "app_version": version.pk, "flops_per_unit": "1e24"}).status_code == 403
    assert FlopsApproval.objects.count() == 1


def test_a_declared_estimate_below_the_measured_work_lowers_the_credit(owner, project):
    app = App.objects.create(project=project, name="modest", title="Modest")
    version = upload_version(token_client(owner), app, "1e6")  # ~2 µcredit
    batch = run(version, devices([1, 1, 1, 4]), count=4)
    assert set(CreditGrant.objects.filter(workunit__batch=batch)
               .values_list("amount_micro", flat=True)) == {micro_credit_for_flops(1e6)}


def test_a_device_reporting_inflated_times_gains_nothing_over_its_honest_partner(owner,
                                                                                 project):
    """A device that reports 20 times its real time is outvoted in its quorum of two."""
    app = App.objects.create(project=project, name="lying", title="Lying")
    version = upload_version(token_client(owner), app, "1e24")
    fleet = devices([1, 1, 1, 1])
    liar = fleet[0][0]

    def same_size(unit, slow, device):
        return BASE_MS
    run(version, fleet, count=8, elapsed=same_size)                       # calibration
    lies = run(version, fleet, count=8, elapsed=lambda unit, slow, device:
               BASE_MS * (20 if device == liar else 1))
    lied = CreditGrant.objects.filter(workunit__batch=lies, device=liar)
    assert lied.exists()
    assert set(CreditGrant.objects.filter(workunit__batch=lies).values_list(
        "amount_micro", flat=True)) == {micro_credit_for_ms(BASE_MS, reference_gflops=1.0)}


def test_two_projects_one_inflating_after_a_run_and_an_epoch_close(owner, project, superuser):
    """Project `inflated` declares 1e24 FLOPs (and, say, gets it approved by mistake): its
    contributors still receive no more than the share the operator gave the project."""
    honest_app = App.objects.create(project=project, name="honest", title="Honest")
    honest = upload_version(token_client(owner), honest_app, "1e9")
    rival = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    inflating = Project.objects.create(slug="inflated", title="Inflated")
    inflating.owners.add(rival)
    inflated_app = App.objects.create(project=inflating, name="inflate", title="Inflated")
    inflated = upload_version(token_client(rival), inflated_app, "1e24")
    flops_approve(app_version=inflated, by=superuser, note="a mistake")

    shares = tuple(sorted([(project_code(project.pk), 500_000),
                           (project_code(inflating.pk), 200_000)]))
    genesis = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=10)
    ledger_init(params=dataclasses.replace(TEST_POLICY, project_shares=shares),
                genesis=genesis, now=genesis)
    honest_fleet, inflating_fleet = devices([1, 1, 4]), devices([1, 1, 1])
    run(honest, honest_fleet, count=6)
    run(inflated, inflating_fleet, count=6)
    honest_credit = sum(CreditGrant.objects.filter(project=project)
                        .values_list("amount_micro", flat=True))
    inflated_credit = sum(CreditGrant.objects.filter(project=inflating)
                          .values_list("amount_micro", flat=True))
    assert inflated_credit > 10**6 * honest_credit   # the inflation worked on credit...

    epochs_close_due(now=genesis + dt.timedelta(hours=1, seconds=1))
    report = verify_ledger()
    assert report.ok, report.problem
    assert report.totals["supply"] == report.totals["emitted"] - report.totals["burned"]
    epoch = Epoch.objects.get(index=0)
    paid = {line.account.code: line.amount_micro for line in epoch.entry.lines.all()
            if line.amount_micro > 0}
    emission = epoch.emission_micro
    inflaters = {f"volunteer-{d.volunteer_id}" for d, _ in inflating_fleet}
    honest_ones = {f"volunteer-{d.volunteer_id}" for d, _ in honest_fleet}
    # ...but not on tokens: the inflating project's contributors get its 20% share, no more.
    assert sum(paid.get(code, 0) for code in inflaters) == emission * 200_000 // SHARE_WHOLE
    assert sum(paid.get(code, 0) for code in honest_ones) == emission * 500_000 // SHARE_WHOLE
    assert paid["treasury"] == emission - sum(paid.get(c, 0) for c in inflaters | honest_ones)


def test_a_full_window_device_inflating_within_the_cache_ttl_gains_nothing(owner, project,
                                                                          monkeypatch):
    """A device whose median is cached (a full window at its honest speed) starts reporting
    20 times its time: for the cache's whole lifetime it is judged by that honest median,
    so each inflated claim is 20 references, clamped to max_ratio references; its honest
    partner's claim is one reference, and the lower median of the two is what both get."""
    app = App.objects.create(project=project, name="lying", title="Lying")
    version = upload_version(token_client(owner), app, "1e24")
    fleet = devices([1, 1, 1, 1])
    liar, partner = fleet[0][0], fleet[1][0]
    honest = micro_credit_for_ms(BASE_MS, reference_gflops=1.0)

    def same_size(unit, slow, device):
        return BASE_MS
    calibration = run(version, fleet, count=2 * DEVICE_WINDOW + 20, elapsed=same_size)
    assert set(CreditGrant.objects.filter(workunit__batch=calibration)
               .values_list("amount_micro", flat=True)) == {honest}
    assert all(CreditGrant.objects.filter(device=d).count() >= DEVICE_WINDOW for d, _ in fleet)
    # The burst comes within the TTL: claims' clock stands still from here on.
    frozen = time.monotonic()
    monkeypatch.setattr(claims, "time", SimpleNamespace(monotonic=lambda: frozen))
    lies = run(version, [fleet[0], fleet[1]], count=10, elapsed=lambda unit, slow, device:
               BASE_MS * (20 if device == liar else 1))
    cached = {key[2]: median for key, (_, median) in claims._device_medians.items()
              if key[0] == version.pk}
    assert cached[liar.pk] == cached[partner.pk] == BASE_MS  # judged by the honest median
    lied = CreditGrant.objects.filter(workunit__batch=lies, device=liar)
    assert lied.count() == 10
    assert set(CreditGrant.objects.filter(workunit__batch=lies)
               .values_list("amount_micro", flat=True)) == {honest}
    # Without the cache it would have been judged the same: ten inflated results do not
    # move the median of fifty.
    calibration_cache_clear()
    assert app_version_scale(app_version=version, device_ids={liar.pk}
                             ).device_median_ms == {liar.pk: BASE_MS}
