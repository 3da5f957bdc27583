"""No isolation, no owner code: custom validators fail closed, with a clear reason."""

import pytest
from django.core.exceptions import ValidationError

from sparecycles.projects.models import WorkUnit
from sparecycles.projects.services import app_validator_check
from sparecycles.sandbox import isolation
from sparecycles.sandbox.errors import SandboxUnavailable
from sparecycles.sandbox.judging import pairs_judge
from sparecycles.scheduler.models import Replica
from sparecycles.validation.transitioner import workunits_transition


def test_the_mechanism_found_here_works_and_has_no_network():
    found = isolation.isolation()
    assert found.mechanism in ("bwrap", "unshare")
    assert isolation._works(found)  # the probe fails if any non-loopback interface is up


@pytest.mark.parametrize("change, message", [
    ({"ISOLATION": "chroot-and-hope"}, "no sandbox is available on this server"),
    ({"NODE": "no-such-node-binary"}, "Node.js is not installed"),
])
def test_without_a_sandbox_nothing_runs(settings, tmp_path, change, message):
    settings.SANDBOX = {**settings.SANDBOX, **change}
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')\ndef equivalent(a, b):\n    return True\n"
    with pytest.raises(SandboxUnavailable, match=message):
        pairs_judge(code=code, pairs=[(1, 1)])
    with pytest.raises(ValidationError, match=message):
        app_validator_check(validator="custom", options={}, code=code)
    assert not marker.exists()


@pytest.mark.django_db
def test_without_a_sandbox_results_wait_with_the_reason(settings, app, make_batch,
                                                        make_device, establish):
    from sparecycles.scheduler.services import tasks_dispatch
    from sparecycles.validation.services import replica_report

    app.validator, app.validate_code = "custom", "def equivalent(a, b):\n    return True\n"
    app.save()
    settings.SANDBOX = {**settings.SANDBOX, "ISOLATION": "none"}
    make_batch(count=1, min_quorum=2, target_nresults=2)
    for _ in range(2):
        device = establish(make_device().device)  # devices validation lets settle a quorum
        [replica] = tasks_dispatch(device=device, slots=1).replicas
        replica_report(device=device, task_id=replica.task_id, ok=True, output={"x": 1})
    unit = WorkUnit.objects.get()
    assert unit.state == WorkUnit.State.OPEN
    assert "no sandbox is available" in unit.error_reason
    assert set(unit.replicas.values_list("validate_state", flat=True)) == {"init"}

    # Once the server has a sandbox, housekeeping's next pass validates them.
    settings.SANDBOX = {**settings.SANDBOX, "ISOLATION": "auto"}
    from sparecycles.sandbox.pool import pool

    pool.close()  # its breaker remembers the failure for RETRY_S
    from django.db import transaction
    with transaction.atomic():
        workunits_transition([unit.pk])
    unit.refresh_from_db()
    assert unit.state == WorkUnit.State.COMPLETED and unit.error_reason == ""
    assert set(Replica.objects.values_list("validate_state", flat=True)) == {"valid"}
