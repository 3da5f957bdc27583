"""REST endpoints: supply/policy, epochs, payouts with proofs, accounts, verify, journal.jsonl."""

import json

import pytest

from sparecycles.ledger.canonical import canonical_json
from sparecycles.ledger.chain import record_hash
from sparecycles.ledger.merkle import leaf_hash, verify_inclusion
from sparecycles.ledger.models import JournalEntry
from sparecycles.ledger.services import epochs_close_due, tokens_burn
from sparecycles.ledger.units import MICRO
from sparecycles.ledger.verify import verify_records

from .conftest import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(ledger, volunteers, grant):
    for i, volunteer in enumerate(volunteers[:3]):
        grant(volunteer, (i + 1) * MICRO, at(0))
    epochs_close_due(now=at(2))
    tokens_burn(source=f"volunteer-{volunteers[0].pk}", amount_micro=MICRO, now=at(2, 1))
    return volunteers


def test_supply(client, books):
    body = client.get("/ledger/api/supply").json()
    assert body["emitted"] == "2000" and body["burned"] == "1"
    assert body["supply_micro"] == 1999 * MICRO and body["supply"] == "1999"
    assert body["policy"]["version"] == 1 and body["policy"]["initial_emission"] == "1000"
    assert body["schedule"][0] == {"epoch": 0, "starts_at": "2026-01-01T00:00:00+00:00",
                                   "emission_per_epoch_micro": 1000 * MICRO,
                                   "emission_per_epoch": "1000", "supply_before_micro": 0,
                                   "supply_before": "0"}
    assert body["head"]["seq"] == JournalEntry.objects.count()


def test_policy(client, books):
    body = client.get("/ledger/api/policy").json()
    assert [v["version"] for v in body["versions"]] == [1]
    assert "split" in body["rules"]


def test_epochs_paginate(client, books):
    body = client.get("/ledger/api/epochs?limit=1").json()
    assert [e["index"] for e in body["epochs"]] == [1]
    assert body["next"] == "/ledger/api/epochs?before=1&limit=1"
    body = client.get(body["next"]).json()
    assert [e["index"] for e in body["epochs"]] == [0] and body["next"] is None


def test_epoch_payouts_carry_proofs_that_verify(client, books):
    body = client.get("/ledger/api/epochs/0?limit=2").json()
    root = body["epoch"]["merkle_root"]
    assert body["tree_size"] == 3 and len(body["payouts"]) == 2 and body["next"]
    more = client.get(body["next"]).json()["payouts"]
    for payout in body["payouts"] + more:
        leaf = canonical_json({"account": payout["account"], "amount": payout["amount_micro"],
                               "epoch": 0})
        assert verify_inclusion(index=payout["leaf_index"], size=3, leaf=leaf_hash(leaf),
                                path=payout["audit_path"], root=root)


def test_one_proof_includes_the_sealing_entry(client, books):
    code = f"volunteer-{books[1].pk}"
    body = client.get(f"/ledger/api/epochs/0/proofs/{code}").json()
    assert body["account"] == code and body["amount"] == "333.333333"
    entry = json.loads(body["entry"]["canonical"])
    assert record_hash({**entry, "hash": None}) == body["entry"]["hash"]
    assert entry["data"]["merkle_root"] == body["merkle_root"]


def test_account_history(client, books):
    code = f"volunteer-{books[0].pk}"
    body = client.get(f"/ledger/api/accounts/{code}").json()
    assert body["account"]["balance"] == "165.666667"
    assert [h["kind"] for h in body["history"]] == ["burn", "epoch"]
    assert body["history"][0]["balance_after"] == "165.666667"
    assert body["history"][1]["balance_after"] == "166.666667"


def test_entry(client, books):
    body = client.get("/ledger/api/entries/1").json()
    assert body["record"]["kind"] == "policy"
    assert canonical_json({k: v for k, v in body["record"].items() if k != "hash"}).decode() \
        == body["canonical"]


def test_verify(client, books):
    body = client.get("/ledger/api/verify").json()
    assert body["ok"] is True and body["problem"] is None and body["epochs"] == 2


def test_journal_jsonl_reverifies_offline(client, books):
    response = client.get("/ledger/api/journal.jsonl")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/jsonl")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == JournalEntry.objects.count()
    records = [json.loads(line) for line in lines]
    assert verify_records(records).ok
    records[2]["lines"][1]["amount"] += 1
    report = verify_records(records)
    assert not report.ok and report.problem.seq == 3


@pytest.mark.django_db(transaction=True)
async def test_journal_streams_under_asgi(async_client):
    from asgiref.sync import sync_to_async
    from django.db import connections

    from sparecycles.ledger.services import ledger_init

    from .conftest import GENESIS, TEST_POLICY
    await sync_to_async(ledger_init)(params=TEST_POLICY, genesis=GENESIS, now=GENESIS)
    await sync_to_async(epochs_close_due)(now=at(3))
    try:
        response = await async_client.get("/ledger/api/journal.jsonl")
        assert response.status_code == 200 and response.is_async
        chunks = [chunk async for chunk in response.streaming_content]
        assert len(b"".join(chunks).splitlines()) == 4
    finally:
        # The ORM ran on sync_to_async's thread: close its connection, or PostgreSQL
        # cannot drop the test database at the end of the session.
        await sync_to_async(connections.close_all)()


@pytest.mark.parametrize("url, status, text", [
    ("/ledger/api/epochs/9", 404, "Epoch 9 is not closed"),
    ("/ledger/api/epochs/0?limit=0", 400, "limit must be a whole number from 1 to 500"),
    ("/ledger/api/epochs/0?limit=100000", 400, "limit"),
    ("/ledger/api/epochs?before=x", 400, "before"),
    ("/ledger/api/epochs/0/proofs/volunteer-999999", 404, "received no payout in epoch 0"),
    ("/ledger/api/epochs/0/proofs/%00", 404, "received no payout"),
    ("/ledger/api/epochs/55555555555555555555555/proofs/treasury", 404, "not closed"),
    ("/ledger/api/accounts/x", 404, "There is no account called"),
    ("/ledger/api/accounts/treasury?limit=-3", 400, "limit"),
    ("/ledger/api/entries/0", 404, "no entry #0"),
    ("/ledger/api/nothing/here", 404, "No ledger API at /ledger/api/nothing/here"),
])
def test_bad_input_is_a_clear_json_4xx(client, books, url, status, text):
    response = client.get(url)
    assert response.status_code == status
    assert text in response.json()["detail"]
    assert response.json()["code"] == {400: "invalid", 404: "not_found"}[status]


def test_api_is_read_only(client, books):
    response = client.post("/ledger/api/supply")
    assert response.status_code == 405
