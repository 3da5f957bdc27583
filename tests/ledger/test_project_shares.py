"""Per-project emission shares: the operator sets each project's part of every epoch.

Within a project the part is split by the credit validated for that project, so credit
inflated in one project never takes another project's tokens. Unallotted parts and
projects without contributors go to the treasury. Versioned in the ledger like every
policy change; verify_ledger re-derives every payout from the journal alone.
"""

import dataclasses
import datetime as dt
import itertools

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparecycles.credit.models import CreditGrant
from sparecycles.ledger.chain import ChainVerifier, record_hash
from sparecycles.ledger.models import Epoch, JournalEntry, PolicyVersion
from sparecycles.ledger.policy import (
    SHARE_WHOLE,
    PolicyError,
    project_code,
    split_by_project,
)
from sparecycles.ledger.selectors import journal_chunks
from sparecycles.ledger.services import (
    InsufficientFunds,
    epochs_close_due,
    ledger_init,
    policy_announce,
    tokens_burn,
    tokens_transfer,
)
from sparecycles.ledger.units import MICRO
from sparecycles.ledger.verify import verify_ledger, verify_records
from sparecycles.projects.models import App, Batch, Project, WorkUnit
from sparecycles.projects.services import app_version_create
from sparecycles.scheduler.models import Replica

from .conftest import GENESIS, TEST_POLICY, at
from .test_properties import Rollback, check_books

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_version(db):
    project = Project.objects.create(slug="inflated", title="Inflated")
    app = App.objects.create(project=project, name="inflate", title="Inflated")
    return app_version_create(app=app, code=b"def main(input):\n    return input\n",
                              flops_per_unit=1e24)


@pytest.fixture
def grant_in():
    """grant_in(app_version, volunteer, credit_micro, granted_at): a grant in that project."""
    seqs = itertools.count(1)
    batches = {}

    def make(version, volunteer, amount_micro: int, granted_at: dt.datetime) -> CreditGrant:
        if version.pk not in batches:
            batches[version.pk] = Batch.objects.create(app_version=version, name="grants")
        workunit = WorkUnit.objects.create(batch=batches[version.pk], app_version=version,
                                           seq=next(seqs), input={})
        replica = Replica.objects.create(
            workunit=workunit, volunteer=volunteer, server_state=Replica.ServerState.OVER,
            outcome=Replica.Outcome.SUCCESS, validate_state=Replica.ValidateState.VALID)
        return CreditGrant.objects.create(replica=replica, workunit=workunit,
                                          project_id=version.app.project_id, volunteer=volunteer,
                                          amount_micro=amount_micro, granted_at=granted_at)
    return make


def payouts_of(epoch_index: int) -> dict[str, int]:
    entry = Epoch.objects.get(index=epoch_index).entry
    return {line.account.code: line.amount_micro
            for line in entry.lines.select_related("account") if line.amount_micro > 0}


# -- the split, pure ----------------------------------------------------------------------

def test_split_by_project_gives_each_project_its_share_and_the_rest_to_the_treasury():
    shares = (("project-1", 600_000), ("project-2", 300_000), ("project-3", 50_000))
    credits = {"project-1": [("volunteer-1", 10), ("volunteer-2", 30)],
               "project-2": [("volunteer-3", 10**15)]}   # project 2 inflates its credit
    paid = split_by_project(1000 * MICRO, shares=shares, credits=credits)
    assert paid == {"volunteer-1": 150 * MICRO, "volunteer-2": 450 * MICRO,
                    "volunteer-3": 300 * MICRO,
                    "treasury": 100 * MICRO}   # 5% of project 3 (no credit) + 5% unallotted


@given(total=st.integers(0, 10**15),
       shares=st.lists(st.integers(1, SHARE_WHOLE // 4), min_size=1, max_size=4),
       credits=st.dictionaries(
           st.integers(1, 5),
           st.lists(st.tuples(st.integers(1, 6), st.integers(1, 10**18)), max_size=4),
           max_size=5))
def test_split_by_project_is_exact_and_never_crosses_projects(total, shares, credits):
    shares = tuple((project_code(i + 1), s) for i, s in enumerate(shares))
    by_project = {project_code(p): sorted({f"volunteer-{v}": c for v, c in rows}.items())
                  for p, rows in credits.items()}
    paid = split_by_project(total, shares=shares, credits=by_project)
    assert sum(paid.values()) == total and all(v > 0 for v in paid.values())
    # What each project's contributors get is exactly what that project alone would pay.
    for code, share in shares:
        alone = split_by_project(total, shares=((code, share),), credits=by_project)
        alone.pop("treasury", None)
        assert sum(alone.values()) <= total * share // SHARE_WHOLE


def test_shares_that_break_a_rule_are_refused():
    for bad in [(("project-1", 0),), (("project-1", SHARE_WHOLE + 1),),
                (("project-2", 10), ("project-1", 10)), (("project-1", 600_000),
                                                         ("project-2", 500_000)),
                (("squares", 10),), (("project-1", 1.5),)]:
        with pytest.raises(PolicyError):
            dataclasses.replace(TEST_POLICY, project_shares=bad).check()


# -- through the ledger ------------------------------------------------------------------

def test_an_inflating_project_takes_no_more_than_its_share(app_version, second_version,
                                                           grant_in, volunteers):
    honest, inflated = app_version, second_version
    shares = tuple(sorted([(project_code(honest.app.project_id), 600_000),
                           (project_code(inflated.app.project_id), 300_000)]))
    ledger_init(params=dataclasses.replace(TEST_POLICY, project_shares=shares),
                genesis=GENESIS, now=GENESIS)
    grant_in(honest, volunteers[0], 3 * MICRO, at(0, 10))
    grant_in(honest, volunteers[1], 1 * MICRO, at(0, 20))
    grant_in(inflated, volunteers[2], 10**17, at(0, 30))    # 10^11 credit
    grant_in(inflated, volunteers[1], 10**17, at(0, 40))    # a volunteer in both projects
    epochs_close_due(now=at(1, 1))

    paid = payouts_of(0)
    emission = 1000 * MICRO
    assert paid == {f"volunteer-{volunteers[0].pk}": 450 * MICRO,
                    f"volunteer-{volunteers[1].pk}": 150 * MICRO + 150 * MICRO,
                    f"volunteer-{volunteers[2].pk}": 150 * MICRO,
                    "treasury": emission - 900 * MICRO}
    report = verify_ledger()
    assert report.ok, report.problem
    assert report.totals["supply"] == report.totals["emitted"] - report.totals["burned"]


def test_shares_are_announced_for_a_future_epoch_with_the_command(app_version, second_version,
                                                                  grant_in, volunteers,
                                                                  capsys):
    ledger_init(params=TEST_POLICY, genesis=GENESIS, now=GENESIS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.utils.timezone.now", lambda: at(0, 60))
        call_command("ledger_policy", "--announce", "--project-share", "squares=70%",
                     "--project-share", "inflated=100000", "--note", "per-project shares")
        call_command("ledger_policy")
    out = capsys.readouterr().out
    assert "Announced policy v2, effective from epoch 1" in out
    assert "squares 70.00%, inflated 10.00%, treasury 20.00%" in out
    version = PolicyVersion.objects.get(version=2)
    assert version.project_shares == sorted([
        [project_code(app_version.app.project_id), 700_000],
        [project_code(second_version.app.project_id), 100_000]])
    assert version.entry.data["project_shares"] == version.project_shares

    # Epoch 0 still splits site-wide; epoch 1 by project.
    grant_in(app_version, volunteers[0], 1 * MICRO, at(0, 100))
    grant_in(second_version, volunteers[1], 10**15, at(0, 200))
    grant_in(app_version, volunteers[0], 1 * MICRO, at(1, 100))
    grant_in(second_version, volunteers[1], 10**15, at(1, 200))
    epochs_close_due(now=at(2, 1))
    assert payouts_of(0)[f"volunteer-{volunteers[1].pk}"] > 999 * MICRO
    assert payouts_of(1) == {f"volunteer-{volunteers[0].pk}": 700 * MICRO,
                             f"volunteer-{volunteers[1].pk}": 100 * MICRO,
                             "treasury": 200 * MICRO}
    assert verify_ledger().ok

    # A policy back to one site-wide split is a policy change like any other.
    policy_announce(params=dataclasses.replace(TEST_POLICY, project_shares=None),
                    now=at(2, 5))
    assert PolicyVersion.objects.get(version=3).project_shares is None
    assert verify_ledger().ok


def test_the_verifier_refuses_payouts_that_ignore_the_shares(app_version, second_version,
                                                             grant_in, volunteers):
    shares = ((project_code(app_version.app.project_id), 500_000),)
    ledger_init(params=dataclasses.replace(TEST_POLICY, project_shares=shares),
                genesis=GENESIS, now=GENESIS)
    grant_in(app_version, volunteers[0], 1 * MICRO, at(0, 10))
    grant_in(second_version, volunteers[1], 10**15, at(0, 20))
    epochs_close_due(now=at(1, 1))
    records = [record for batch in journal_chunks() for _, record in batch]
    assert verify_records(records).ok
    epoch = next(r for r in records if r["kind"] == "epoch")
    # The unshared project's volunteer claims the treasury's half, hashes redone.
    from sparecycles.ledger.chain import record_hash
    epoch["lines"] = [({"account": line["account"], "amount": 500 * MICRO}
                       if line["account"] == "treasury" else line) for line in epoch["lines"]]
    epoch["lines"] = [line if line["account"] != "treasury" else
                      {"account": f"volunteer-{volunteers[1].pk}", "amount": 500 * MICRO}
                      for line in epoch["lines"]]
    epoch["lines"].sort(key=lambda line: line["account"])
    epoch["hash"] = record_hash(epoch)
    verifier = ChainVerifier()
    problems = [verifier.feed(r) for r in records[:records.index(epoch) + 1]]
    assert problems[-1] is not None and "pro-rata" in problems[-1].message
    # Dropping the per-project credit is refused too.
    epoch["data"].pop("projects")
    epoch["hash"] = record_hash(epoch)
    verifier = ChainVerifier()
    problems = [verifier.feed(r) for r in records[:records.index(epoch) + 1]]
    assert problems[-1] is not None and "keys" in problems[-1].message


# -- the books hold, whatever happens ------------------------------------------------------

operations = st.lists(st.one_of(
    # credit: project (0 honest, 1 inflating: a million times more credit), who, amount, ago
    st.tuples(st.just("credit"), st.integers(0, 1), st.integers(0, 3),
              st.integers(0, 50 * MICRO), st.integers(0, 5400)),
    st.tuples(st.just("tick"), st.integers(1, 7200)),
    st.tuples(st.just("close")),
    st.tuples(st.just("transfer"), st.integers(0, 4), st.integers(0, 4),
              st.integers(1, 400 * MICRO)),
    st.tuples(st.just("burn"), st.integers(0, 4), st.integers(1, 300 * MICRO)),
    st.tuples(st.just("reshare"), st.integers(0, SHARE_WHOLE // 2),
              st.integers(0, SHARE_WHOLE // 2)),
), max_size=30)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations, first=st.tuples(st.integers(1, SHARE_WHOLE // 2),
                                       st.integers(1, SHARE_WHOLE // 2)))
def test_supply_equals_balances_equals_emitted_minus_burned_across_projects(
        app_version, second_version, grant_in, volunteers, ops, first):
    versions = [app_version, second_version]
    codes = [project_code(v.app.project_id) for v in versions]

    def shares_of(pair):
        return tuple(sorted((code, s) for code, s in zip(codes, pair, strict=True) if s))

    try:
        with transaction.atomic():
            ledger_init(params=dataclasses.replace(TEST_POLICY, project_shares=shares_of(first)),
                        genesis=GENESIS, now=GENESIS)
            now = GENESIS
            holders = [f"volunteer-{v.pk}" for v in volunteers] + ["treasury"]
            for op in ops:
                if op[0] == "credit":
                    _, project, who, amount, ago = op
                    amount *= 10**6 if project else 1
                    grant_in(versions[project], volunteers[who], amount,
                             now - dt.timedelta(seconds=ago))
                elif op[0] == "tick":
                    now += dt.timedelta(seconds=op[1])
                elif op[0] == "close":
                    epochs_close_due(now=now)
                elif op[0] == "reshare":
                    policy_announce(params=dataclasses.replace(
                        TEST_POLICY, project_shares=shares_of(op[1:]) or None), now=now)
                elif op[0] == "transfer" and op[1] != op[2]:
                    try:
                        tokens_transfer(source=holders[op[1]], destination=holders[op[2]],
                                        amount_micro=op[3], now=now)
                    except InsufficientFunds:
                        pass
                elif op[0] == "burn":
                    try:
                        tokens_burn(source=holders[op[1]], amount_micro=op[2], now=now)
                    except InsufficientFunds:
                        pass
                check_books()
            epochs_close_due(now=now + dt.timedelta(hours=2))
            check_books()
            # Each epoch under shares paid each project's contributors at most its share.
            for entry in JournalEntry.objects.filter(kind="epoch"):
                data = entry.data
                if "projects" not in data:
                    continue
                policy = PolicyVersion.objects.get(version=data["policy"]).record()
                allotted = sum(data["emission"] * share // SHARE_WHOLE
                               for _, share in policy.params.project_shares)
                paid = {line.account.code: line.amount_micro for line in entry.lines.all()}
                assert sum(v for k, v in paid.items() if k.startswith("volunteer-")) <= allotted
                assert paid.get("treasury", 0) >= data["emission"] - allotted
            raise Rollback
    except Rollback:
        pass


def test_the_public_pages_show_the_shares(client, app_version):
    code = project_code(app_version.app.project_id)
    ledger_init(params=dataclasses.replace(TEST_POLICY, project_shares=((code, 250_000),)),
                genesis=GENESIS, now=GENESIS)
    page = client.get("/ledger/").content.decode()
    assert f"<code>{code}</code> 250000" in page
    policy = client.get("/ledger/api/policy").json()
    assert policy["versions"][0]["project_shares"] == [{"project": code, "share_ppm": 250_000}]
    assert "project_shares" in policy["rules"]


# -- clawback per (project, account) -------------------------------------------------------

def test_reversed_credit_is_clawed_back_from_what_its_own_project_paid(
        app_version, second_version, grant_in, volunteers):
    """A cheat earns in a richly allotted project and a poor one; reversing its credit in
    the poor one claws back what that project paid it, not a slice of its whole payout."""
    from sparecycles.credit.services import credit_reverse_many
    from sparecycles.ledger.models import JournalEntry, ReversalClaim

    rich, poor = app_version, second_version
    codes = {v.pk: project_code(v.app.project_id) for v in (rich, poor)}
    shares = tuple(sorted([(codes[rich.pk], 900_000), (codes[poor.pk], 100_000)]))
    ledger_init(params=dataclasses.replace(TEST_POLICY, project_shares=shares),
                genesis=GENESIS, now=GENESIS)
    cheat, other = volunteers[:2]
    grant_in(rich, cheat, 1 * MICRO, at(0, 10))       # half of rich's credit: 450 tokens
    grant_in(rich, other, 1 * MICRO, at(0, 20))
    bad = grant_in(poor, cheat, 1 * MICRO, at(0, 30))  # all of poor's credit: 100 tokens
    epochs_close_due(now=at(1, 1))
    code = f"volunteer-{cheat.pk}"
    assert payouts_of(0)[code] == 550 * MICRO
    assert credit_reverse_many(replica_ids=[bad.replica_id], reason="caught") == 1
    grant_in(rich, cheat, 1 * MICRO, at(1, 10))        # epoch 1 pays it enough to repay
    epochs_close_due(now=at(2, 1))

    [entry] = JournalEntry.objects.filter(kind="clawback")
    # The poor project paid 100 for that credit: 100 is owed, not 550 x 1/3 (183.3).
    assert entry.data["reversals"] == [[code, 0, codes[poor.pk], 1 * MICRO, 100 * MICRO, code]]
    assert ReversalClaim.objects.get().tokens_micro == 100 * MICRO
    assert dict(entry.lines.values_list("account__code", "amount_micro")) == {
        code: -100 * MICRO, "treasury": 100 * MICRO}
    report = verify_ledger()
    assert report.ok, report.problem
    assert report.totals["clawed_back"] == 100 * MICRO


def test_a_forged_per_project_clawback_fails_the_rules(app_version, second_version, grant_in,
                                                     volunteers):
    from sparecycles.credit.services import credit_reverse_many

    rich, poor = app_version, second_version
    shares = tuple(sorted([(project_code(rich.app.project_id), 900_000),
                           (project_code(poor.app.project_id), 100_000)]))
    ledger_init(params=dataclasses.replace(TEST_POLICY, project_shares=shares),
                genesis=GENESIS, now=GENESIS)
    cheat, other = volunteers[:2]
    grant_in(rich, cheat, 1 * MICRO, at(0, 10))
    grant_in(rich, other, 1 * MICRO, at(0, 20))
    bad = grant_in(poor, cheat, 1 * MICRO, at(0, 30))
    epochs_close_due(now=at(1, 1))
    credit_reverse_many(replica_ids=[bad.replica_id], reason="caught")
    grant_in(rich, cheat, 1 * MICRO, at(1, 10))
    epochs_close_due(now=at(2, 1))
    records = [record for chunk in journal_chunks() for _, record in chunk]
    assert records[-1]["kind"] == "clawback" and verify_records(records).ok
    code, project = f"volunteer-{cheat.pk}", shares[0][0]
    # The old whole-payout rule's number, or the item without its project, or another
    # project's rate: each is refused even with the entry's hash recomputed.
    for forged, says in (([[code, 0, 1 * MICRO, 183_333_333, code]], "per project"),
                         ([[code, 0, project, 1 * MICRO, 450 * MICRO, code]], "should withhold"),
                         ([[code, 0, shares[1][0], 1 * MICRO, 183_333_333, code]], "earned")):
        record = {**records[-1], "data": {**records[-1]["data"], "reversals": forged}}
        record["hash"] = record_hash(record)
        report = verify_records([*records[:-1], record])
        assert not report.ok and says in report.problem.message, report.problem
