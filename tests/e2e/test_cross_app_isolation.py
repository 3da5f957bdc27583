"""One owner's app code against another owner's results, in the volunteer's browser.

Found by the red team (tests/redteam/README.md, issue 14): every app a volunteer ran
shared one compute worker, hence one Pyodide interpreter (a namespace per app version, but
modules — json, builtins, sys — shared). Owner A's app (hostile/poison_main.py) patches
json.dumps/json.loads on its first task. The volunteer then ran owner B's honest app in the
same worker: B's outputs were rewritten before the page saw them (the page only checks they
are valid JSON within the size limit), and B's inputs kept and later returned as A's own
output.

Because the rewrite is deterministic, every volunteer that ran A's task forges B's results
identically, so replication (min_quorum) did not catch it either.

Now a slot restarts its compute frame (a fresh worker and runtime) whenever the next task's
app or version differs from the one it ran: B's results are B's, and A learns nothing of B.
"""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from sparecycles.projects.models import App, Project, WorkUnit
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.scheduler.models import Replica
from tests.e2e.test_volunteer_page import wait_for_done
from tests.live_server import REPO
from tests.waiting import wait_for_completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ONE = QuorumParams(min_quorum=1, target_nresults=1)
POISON = (REPO / "tests/e2e/hostile/poison_main.py").read_bytes()
VICTIM = b"def main(input):\n    return {'n': input['n'], 'sq': input['n'] ** 2}\n"


def owned_app(owner: str, name: str, code: bytes):
    user = get_user_model().objects.create_user(owner, password="pw-owner-123456")
    project = Project.objects.create(slug=f"{name}-project", title=name)
    project.owners.add(user)
    app = App.objects.create(project=project, name=name, title=name)
    return app_version_create(app=app, code=code)


def test_one_owners_app_can_not_forge_or_read_another_owners_results(live_daphne, page):
    poison = owned_app("owner-a", "poison", POISON)
    victim = owned_app("owner-b", "victim", VICTIM)

    page.goto(f"{live_daphne.url}/")
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    page.locator("#set-workers").select_option("1")
    arm = batch_create(app_version=poison, name="arm", inputs=[{"stage": "arm"}], quorum=ONE)
    page.get_by_role("button", name="Start").click()
    wait_for_done(page, 1)
    wait_for_completed(arm, 1)

    honest = batch_create(app_version=victim, name="honest", inputs=[{"n": n} for n in (3, 4)],
                          quorum=ONE)
    wait_for_completed(honest, 2)
    report = batch_create(app_version=poison, name="report", inputs=[{"stage": "report"}],
                          quorum=ONE)
    wait_for_completed(report, 1)

    outputs = {w.input["n"]: w.canonical_output for w in WorkUnit.objects.filter(batch=honest)}
    stolen = Replica.objects.get(workunit__batch=report).output["stolen"]
    print("\nvictim's canonical outputs:", outputs, "\nstolen by the poison app:", stolen)
    assert outputs == {3: {"n": 3, "sq": 9}, 4: {"n": 4, "sq": 16}}
    assert stolen == []
