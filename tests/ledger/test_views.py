"""Public ledger pages: they render, they explain, and bad input is a 4xx with a message."""

import pytest

from sparecycles.ledger.services import epochs_close_due, policy_announce, tokens_transfer
from sparecycles.ledger.units import MICRO

from .conftest import TEST_POLICY, at

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(ledger, volunteers, grant):
    a, b = volunteers[:2]
    grant(a, 3 * MICRO, at(0))
    grant(b, 1 * MICRO, at(0))
    epochs_close_due(now=at(1))
    tokens_transfer(source=f"volunteer-{a.pk}", destination=f"volunteer-{b.pk}",
                    amount_micro=5 * MICRO, memo="for the pizza", now=at(1, 5))
    return volunteers


def test_overview_shows_supply_chart_policy_and_encoding(client, books):
    response = client.get("/ledger/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Token ledger" in html and "<svg" in html and "supply-line" in html
    assert "Reward policy (version 1)" in html
    assert '{&quot;account&quot;:&quot;volunteer-42&quot;,&quot;amount&quot;:1500000,' in html
    assert "SHA-256(0x00" in html and "SHA-256(0x01" in html
    assert "script-src 'self' 'wasm-unsafe-eval'" in response["Content-Security-Policy"]
    assert "<script>" not in html and " style=" not in html


def test_overview_before_the_ledger_starts(client, db):
    response = client.get("/ledger/")
    assert response.status_code == 200
    assert "The ledger starts with its first epoch" in response.content.decode()


def test_an_announced_change_is_on_the_overview(client, books):
    import dataclasses
    policy_announce(params=dataclasses.replace(TEST_POLICY, halving_epochs=8), note="slower",
                    effective_from_epoch=10**6)
    html = client.get("/ledger/").content.decode()
    assert "Policy change announced" in html and "epoch 1000000" in html


def test_epoch_pages(client, books):
    html = client.get("/ledger/epochs/").content.decode()
    assert "Epoch 0" in html
    html = client.get("/ledger/epochs/0/").content.decode()
    a, b = books[:2]
    assert f"volunteer-{a.pk}" in html and "750" in html and "250" in html
    assert "75.00 %" in html


def test_account_page_has_a_proof_button_per_payout(client, books):
    a = books[0]
    html = client.get(f"/ledger/accounts/volunteer-{a.pk}/").content.decode()
    assert "Check proof" in html
    assert f'data-proof-url="/ledger/api/epochs/0/proofs/volunteer-{a.pk}"' in html
    assert 'data-amount="750000000"' in html and "745" in html   # 750 - 5 transferred
    assert "for the pizza" in html


def test_volunteer_link_redirects_to_the_account(client, books):
    response = client.get(f"/ledger/volunteers/{books[0].pk}/")
    assert response.status_code == 302
    assert response["Location"] == f"/ledger/accounts/volunteer-{books[0].pk}/"


def test_a_volunteer_without_tokens_has_an_empty_account(client, books):
    html = client.get(f"/ledger/accounts/volunteer-{books[3].pk}/").content.decode()
    assert "No tokens yet" in html


def test_entry_page_shows_the_hashed_bytes(client, books):
    html = client.get("/ledger/entries/2/").content.decode()
    assert "Entry #2" in html and "&quot;kind&quot;:&quot;epoch&quot;" in html
    assert "Check this hash in my browser" in html


def test_verify_page(client, books):
    html = client.get("/ledger/verify/").content.decode()
    assert "The ledger verifies" in html


@pytest.mark.parametrize("url, status, text", [
    ("/ledger/epochs/7/", 404, "Epoch 7 is not closed"),
    ("/ledger/epochs/99999999999999999999999/", 404, "is not closed"),
    ("/ledger/epochs/?before=abc", 400, "before must be a whole number"),
    ("/ledger/epochs/?before=-1", 400, "before must be a whole number"),
    ("/ledger/epochs/0/?offset=1e3", 400, "offset must be a whole number"),
    ("/ledger/accounts/nobody/", 404, "There is no account called"),
    ("/ledger/accounts/volunteer-999999999999999999999/", 404, "There is no account"),
    ("/ledger/accounts/volunteer-99999/", 404, "There is no account"),
    ("/ledger/accounts/treasury/?before=%F0%9F%92%A5", 400, "before must be a whole number"),
    ("/ledger/entries/999/", 404, "No entry #999"),
    ("/ledger/entries/99999999999999999999999999/", 404, "No entry"),
])
def test_bad_input_is_a_clear_4xx(client, books, url, status, text):
    response = client.get(url)
    assert response.status_code == status
    assert text in response.content.decode()


def test_pages_are_get_only(client, books):
    assert client.post("/ledger/").status_code == 405
