"""Public ledger pages: supply and schedule, epochs, payouts, accounts, entries, verification."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import selectors
from .canonical import canonical_json, from_us, to_us
from .charts import schedule_chart
from .merkle import LEAF_PREFIX, NODE_PREFIX
from .models import Account, JournalEntry
from .params import BadParam, in_range, int_param
from .policy import DEFAULT_PARAMS
from .verify import verify_ledger_cached

PAGE = 50


def error_page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "ledger/error.html", {"title": title, "message": message},
                  status=status)


def bad_param(view):
    """Turn a malformed query parameter into a 400 page that says what was expected."""
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except BadParam as exc:
            return error_page(request, 400, "That link is malformed", str(exc))
    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """Supply, the schedule chart, the policy (and announced changes), the latest epochs."""
    now = timezone.now()
    summary = selectors.supply_summary(now=now)
    sched = summary["schedule"]
    points = sched.projection()
    chart = schedule_chart(points, now_us=to_us(now),
                           max_supply_micro=summary["max_supply_micro"])
    eras = [{**p, "starts_at": from_us(p["start_us"])} for p in points]
    policies = _policy_rows(sched, summary)
    return render(request, "ledger/overview.html", {
        "summary": summary, "chart": chart, "eras": eras, "policies": policies,
        "has_superseded": any(row["status"] == "superseded" for row in policies),
        "epochs": selectors.epoch_list(limit=5),
        "defaults": DEFAULT_PARAMS,
        "leaf_example": canonical_json({"account": "volunteer-42", "amount": 1500000,
                                        "epoch": 7}).decode(),
        "leaf_prefix": LEAF_PREFIX.hex(), "node_prefix": NODE_PREFIX.hex(),
    })


def _policy_rows(sched, summary) -> list[dict]:
    current = summary["current_policy"].version
    live = {r.version for r in sched.segments}
    rows = []
    for record in sched.records:
        if record.version == current:
            status = "in force"
        elif record.version not in live:
            status = "superseded"
        elif record in summary["upcoming_policies"]:
            status = "announced"
        else:
            status = "past"
        rows.append({"record": record, "status": status,
                     "starts_at": from_us(record.starts_at_us),
                     "params": record.params})
    return rows


@require_GET
@bad_param
def epoch_list(request: HttpRequest) -> HttpResponse:
    before = int_param(request, "before")
    epochs = selectors.epoch_list(before=before, limit=PAGE)
    older = epochs[-1].index if len(epochs) == PAGE and epochs[-1].index > 0 else None
    return render(request, "ledger/epochs.html", {"epochs": epochs, "older": older,
                                                  "before": before})


@require_GET
@bad_param
def epoch_detail(request: HttpRequest, index: int) -> HttpResponse:
    epoch = selectors.epoch_get(index) if in_range(index) else None
    if epoch is None:
        return error_page(request, 404, f"Epoch {index} is not closed",
                          "Only closed epochs have payouts. See the list of epochs.")
    offset = int_param(request, "offset", default=0)
    payouts, tree = selectors.epoch_payouts(epoch)
    page = payouts[offset:offset + PAGE]
    credit_total = epoch.credit_micro or 1
    rows = [{"payout": p, "share": p.credit_micro * 100 / credit_total} for p in page]
    clawback = selectors.epoch_clawback(epoch)
    return render(request, "ledger/epoch.html", {
        "epoch": epoch, "rows": rows, "count": len(payouts), "clawback": clawback,
        "clawback_rows": selectors.clawback_rows(clawback) if clawback else None,
        "newer": offset - PAGE if offset >= PAGE else None,
        "older": offset + PAGE if offset + PAGE < len(payouts) else None,
        "first": offset + 1, "last": offset + len(page),
    })


@require_GET
def volunteer_account(request: HttpRequest, volunteer_id: int) -> HttpResponse:
    return redirect("ledger:account", code=Account.volunteer_code(volunteer_id))


@require_GET
@bad_param
def account_detail(request: HttpRequest, code: str) -> HttpResponse:
    """One account's history, newest first; each epoch payout can be checked in the browser."""
    account = selectors.account_view(code)
    if account is None:
        return error_page(request, 404, "No such account",
                          f"There is no account called “{code[:60]}”. Volunteer accounts are "
                          "named volunteer-<number>; the others are treasury, emission and burn.")
    before = int_param(request, "before")
    history = selectors.account_history(code, before=before, limit=PAGE)
    older = history[-1].seq if len(history) == PAGE else None
    return render(request, "ledger/account.html", {
        "account": account, "history": history, "older": older, "before": before,
        "owed_micro": selectors.account_owed_micro(code),
    })


@require_GET
def entry_detail(request: HttpRequest, seq: int) -> HttpResponse:
    entry = selectors.entry_get(seq) if in_range(seq) else None
    if entry is None:
        return error_page(request, 404, f"No entry #{seq}",
                          "The journal has no entry with that number yet.")
    record = selectors.entry_record(entry)
    content = canonical_json({k: v for k, v in record.items() if k != "hash"}).decode()
    head_seq, _ = selectors.chain_head()
    return render(request, "ledger/entry.html", {
        "entry": entry, "record": record, "canonical": content,
        "lines": record["lines"], "next_seq": entry.seq + 1 if entry.seq < head_seq else None,
        "clawback": selectors.clawback_rows(entry)
        if entry.kind == JournalEntry.Kind.CLAWBACK else None,
    })


@require_GET
def verify_page(request: HttpRequest) -> HttpResponse:
    report, checked_at = verify_ledger_cached()
    return render(request, "ledger/verify.html", {"report": report, "checked_at": checked_at},
                  status=200)
