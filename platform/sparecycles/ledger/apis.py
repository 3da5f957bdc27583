"""The ledger's REST endpoints: plain JSON (and one JSON-lines stream), read-only, public.

Amounts are given twice: "<name>_micro" as an integer of micro-tokens and
"<name>" as a decimal string of tokens. Errors have the site's one shape
(sparecycles/errors.py): {"detail": "...", "code": "not_found"}, also for 404 and 405.
"""

from functools import wraps

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from sparecycles.errors import error_response, json_errors

from . import selectors
from .canonical import canonical_json, from_us
from .merkle import EMPTY_ROOT, LEAF_PREFIX, NODE_PREFIX
from .models import Epoch
from .params import BadParam, in_range, int_param
from .policy import PolicyRecord
from .units import tokens_str
from .verify import verify_ledger_cached

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
JSONL_CHUNK = 500

MERKLE_ENCODING = {
    "leaf": 'canonical JSON {"account": <code>, "amount": <micro-tokens>, "epoch": <index>} '
            "(keys sorted, no whitespace, UTF-8, integers only)",
    "leaf_hash": f"SHA-256(0x{LEAF_PREFIX.hex()} || leaf)",
    "node_hash": f"SHA-256(0x{NODE_PREFIX.hex()} || left || right)",
    "tree": "RFC 6962: the root of n > 1 leaves is node(root of the first k, root of the rest), "
            "k the largest power of two below n; leaves in the order of the epoch entry's "
            "positive lines (sorted by account code)",
    "empty_root": EMPTY_ROOT,
    "proof": "RFC 9162 section 2.1.3.2 audit path, leaf to root",
}
ENTRY_HASH = ("SHA-256 of the canonical JSON of the record without its \"hash\" key; "
              "\"prev\" is the hash of the entry before (64 zeros for entry 1)")


def error(status: int, message: str) -> JsonResponse:
    return error_response(status, message)


def api(view):
    """GET only (405 otherwise); a malformed parameter is a 400 with a message."""
    @json_errors(methods=("GET",))
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except BadParam as exc:
            return error(400, str(exc))
    return wrapped


def money(name: str, micro: int) -> dict:
    return {f"{name}_micro": micro, name: tokens_str(micro)}


def policy_json(record: PolicyRecord) -> dict:
    p = record.params
    return {"version": record.version, "effective_from_epoch": record.effective_from_epoch,
            "starts_at": from_us(record.starts_at_us).isoformat(),
            "epoch_seconds": p.epoch_seconds, "halving_epochs": p.halving_epochs,
            **money("initial_emission", p.initial_emission_micro),
            **money("max_supply", p.max_supply_micro),
            # null: one site-wide split by credit; else each project's parts per million.
            "project_shares": (None if p.project_shares is None
                               else [{"project": code, "share_ppm": share}
                                     for code, share in p.project_shares])}


def epoch_json(epoch: Epoch) -> dict:
    return {"index": epoch.index, "starts_at": epoch.starts_at.isoformat(),
            "ends_at": epoch.ends_at.isoformat(), "closed_at": epoch.closed_at.isoformat(),
            "policy_version": epoch.policy_version, **money("emission", epoch.emission_micro),
            "credit_micro": epoch.credit_micro, "recipients": epoch.recipients,
            "merkle_root": epoch.merkle_root,
            "entry": {"seq": epoch.entry.seq, "hash": epoch.entry.hash},
            "url": reverse("ledger:api-epoch", args=[epoch.index])}


@api
def index(request: HttpRequest) -> JsonResponse:
    names = ["api-supply", "api-policy", "api-epochs", "api-verify", "api-journal"]
    return JsonResponse({
        "endpoints": {name.removeprefix("api-"): reverse(f"ledger:{name}") for name in names},
        "epoch": "/ledger/api/epochs/<index>",
        "proof": "/ledger/api/epochs/<index>/proofs/<account>",
        "account": "/ledger/api/accounts/<account>",
        "entry": "/ledger/api/entries/<seq>",
        "entry_hash": ENTRY_HASH, "merkle": MERKLE_ENCODING,
    })


@api
def supply(request: HttpRequest) -> JsonResponse:
    """Supply now, the policy in force and announced, and the whole emission schedule."""
    summary = selectors.supply_summary()
    sched = summary["schedule"]
    return JsonResponse({
        "started": summary["started"],
        **money("supply", summary["supply_micro"]), **money("emitted", summary["emitted_micro"]),
        **money("burned", summary["burned_micro"]), **money("treasury", summary["treasury_micro"]),
        **money("max_supply", summary["max_supply_micro"]),
        **money("next_emission", summary["next_emission_micro"]),
        "genesis": summary["genesis"].isoformat(),
        "epoch_in_progress": summary["epoch_in_progress"],
        "epoch_in_progress_ends": summary["epoch_in_progress_ends"].isoformat(),
        "epochs_closed": summary["epochs_closed"],
        "head": {"seq": summary["head_seq"], "hash": summary["head_hash"]},
        "policy": policy_json(summary["current_policy"]),
        "announced": [policy_json(r) for r in summary["upcoming_policies"]],
        "schedule": [{"epoch": p["epoch"], "starts_at": from_us(p["start_us"]).isoformat(),
                      **money("emission_per_epoch", p["emission"]),
                      **money("supply_before", p["supply_before"])}
                     for p in sched.projection()],
    })


@api
def policy(request: HttpRequest) -> JsonResponse:
    sched, started = selectors.schedule()
    live = {r.version for r in sched.segments}
    return JsonResponse({
        "started": started,
        "versions": [{**policy_json(r), "superseded": r.version not in live}
                     for r in sched.records],
        "rules": {
            "epoch": "epoch i of version v runs from v.starts_at + (i - v.effective_from_epoch)"
                     " * v.epoch_seconds, for epoch_seconds; the highest version whose "
                     "effective_from_epoch <= i governs it",
            "emission": "min(initial_emission >> (i // halving_epochs), "
                        "max_supply - emitted before epoch i)",
            "split": "floor(E * c / C) to each volunteer with credit c of total C; the "
                     "remainder one micro-token each to the largest E * c mod C, ties by "
                     "account code; no credit: all to the treasury",
            "project_shares": "when a version has project_shares, project p is allotted "
                              "floor(E * share_p / 1000000) and that allotment is split as "
                              "above by the credit validated for p in the epoch; allotments "
                              "without credit and the unallotted rest go to the treasury",
            "changes": "a new version takes effect only from an epoch not yet begun when it "
                       "is announced, and is itself an entry of the journal",
        },
    })


@api
def epochs(request: HttpRequest) -> JsonResponse:
    before = int_param(request, "before")
    limit = int_param(request, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    rows = selectors.epoch_list(before=before, limit=limit)
    more = len(rows) == limit and rows[-1].index > 0
    return JsonResponse({
        "epochs": [epoch_json(e) for e in rows],
        "next": f"{reverse('ledger:api-epochs')}?before={rows[-1].index}&limit={limit}"
        if more else None,
    })


@api
def epoch(request: HttpRequest, index: int) -> JsonResponse:
    """One epoch and a page of its payouts, each with its Merkle inclusion proof."""
    found = selectors.epoch_get(index) if in_range(index) else None
    if found is None:
        return error(404, f"Epoch {index} is not closed yet (or does not exist).")
    offset = int_param(request, "offset", default=0)
    limit = int_param(request, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    payouts, tree = selectors.epoch_payouts(found)
    page = payouts[offset:offset + limit]
    return JsonResponse({
        "epoch": epoch_json(found), "tree_size": tree.size, "merkle": MERKLE_ENCODING,
        "payouts": [{"account": p.account, **money("amount", p.amount_micro),
                     "credit_micro": p.credit_micro, "leaf_index": p.index,
                     "audit_path": tree.audit_path(p.index)} for p in page],
        "next": f"{reverse('ledger:api-epoch', args=[index])}?offset={offset + limit}"
                f"&limit={limit}" if offset + limit < len(payouts) else None,
    })


@api
def proof(request: HttpRequest, index: int, code: str) -> JsonResponse:
    """Everything needed to check one payout: leaf, audit path, root, and the sealing entry."""
    found = selectors.epoch_get(index) if in_range(index) else None
    if found is None:
        return error(404, f"Epoch {index} is not closed yet (or does not exist).")
    result = selectors.proof_for(found, code)
    if result is None:
        return error(404, f"{code[:60]} received no payout in epoch {index}.")
    return JsonResponse({**result, "merkle": MERKLE_ENCODING})


@api
def account(request: HttpRequest, code: str) -> JsonResponse:
    view = selectors.account_view(code)
    if view is None:
        return error(404, f"There is no account called {code[:60]!r}: use treasury, emission, "
                          "burn or volunteer-<number>.")
    before = int_param(request, "before")
    limit = int_param(request, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    history = selectors.account_history(code, before=before, limit=limit)
    return JsonResponse({
        "account": {"code": view.code, "kind": view.kind, "name": view.title,
                    **money("balance", view.balance_micro),
                    **money("owed", selectors.account_owed_micro(view.code))},
        "history": [{"seq": h.seq, "kind": h.kind, "at": h.at.isoformat(), "memo": h.memo,
                     "epoch": h.epoch, **money("amount", h.amount_micro),
                     **money("balance_after", h.balance_after_micro), "entry_hash": h.entry_hash}
                    for h in history],
        "next": f"{reverse('ledger:api-account', args=[code])}?before={history[-1].seq}"
                f"&limit={limit}" if len(history) == limit else None,
    })


@api
def entry(request: HttpRequest, seq: int) -> JsonResponse:
    found = selectors.entry_get(seq) if in_range(seq) else None
    if found is None:
        return error(404, f"The journal has no entry #{seq}.")
    record = selectors.entry_record(found)
    return JsonResponse({
        "record": record, "entry_hash": ENTRY_HASH,
        "canonical": canonical_json({k: v for k, v in record.items() if k != "hash"}).decode(),
    })


@api
def verify(request: HttpRequest) -> JsonResponse:
    report, checked_at = verify_ledger_cached()
    return JsonResponse({**report.as_dict(), "checked_at": checked_at.isoformat()})


@api
def journal(request: HttpRequest) -> StreamingHttpResponse:
    """The whole journal as JSON lines (one canonical record per line), streamed."""
    if isinstance(request, ASGIRequest):
        body = _journal_async()
    else:
        body = selectors.journal_jsonl(chunk=JSONL_CHUNK)
    response = StreamingHttpResponse(body, content_type="application/jsonl; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="sparecycles-journal-{stamp}.jsonl"'
    response["Cache-Control"] = "no-store"
    return response


async def _journal_async():
    """Under ASGI: one thread hop per chunk, so the journal never sits whole in memory."""
    upto, _ = await sync_to_async(selectors.chain_head)()
    after = 0
    while after < upto:
        chunk, after = await sync_to_async(_jsonl_chunk)(after, upto)
        if not chunk:
            return
        yield chunk


def _jsonl_chunk(after: int, upto: int) -> tuple[bytes, int]:
    for batch in selectors.journal_chunks(after=after, upto=upto, chunk=JSONL_CHUNK):
        return (b"".join(canonical_json(r) + b"\n" for _, r in batch), batch[-1][0].seq)
    return b"", upto


def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    return error(404, f"No ledger API at /ledger/api/{rest[:60]}: see /ledger/api/ for the list.")
