"""Password guessing is throttled per username and per address, on every login, across processes."""

import json
import urllib.error
import urllib.request

import pytest
from django.contrib.auth import get_user_model

from sparecycles.volunteers.login_throttle import login_failure_record, login_refusal

pytestmark = pytest.mark.django_db

ATTACKER = "198.51.100.66"
ELSEWHERE = "203.0.113.77"
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    """Hundreds of password checks: the real hasher's cost is not what is tested here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def victim(db):
    return get_user_model().objects.create_user("victim", "v@example.org", "right-horse-battery")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("boss", "b@example.org", "boss-password-42")


def site_login(client, username, password, address=ATTACKER):
    return client.post("/accounts/login/", {"username": username, "password": password},
                       REMOTE_ADDR=address)


def test_thirty_wrong_passwords_on_the_site_login_are_throttled(client, victim, settings):
    statuses = [site_login(client, "victim", f"guess-{i}").status_code for i in range(30)]
    assert statuses[:10] == [200] * 10  # the form again, "wrong password"
    assert set(statuses[10:]) == {429}
    response = site_login(client, "victim", "right-horse-battery")
    assert response.status_code == 429  # the right password too, until the pause ends
    assert "Too many failed log-ins for this username" in response.content.decode()
    assert int(response["Retry-After"]) > 800
    assert "_auth_user_id" not in client.session
    # Another username, from another address: unaffected.
    get_user_model().objects.create_user("bystander", "b@example.org", "bystander-pw-99")
    response = site_login(client, "bystander", "bystander-pw-99", address=ELSEWHERE)
    assert response.status_code == 302


def test_the_admin_login_is_throttled_with_a_clear_message(client, staff):
    for i in range(10):
        response = client.post("/admin/login/", {"username": "boss", "password": f"no-{i}"},
                               REMOTE_ADDR=ATTACKER)
        assert response.status_code == 200
    response = client.post("/admin/login/", {"username": "boss", "password": "boss-password-42"},
                           REMOTE_ADDR=ATTACKER)
    assert response.status_code == 429
    assert "Too many failed log-ins for this username" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_api_token_endpoint_shares_the_username_counter(client, staff):
    for i in range(6):
        site_login(client, "boss", f"no-{i}")
    for i in range(4):
        response = client.post("/api/v1/auth/token/", {"username": "boss", "password": f"x{i}"},
                               REMOTE_ADDR=ELSEWHERE)
        assert response.status_code == 400
    response = client.post("/api/v1/auth/token/",
                           {"username": "boss", "password": "boss-password-42"},
                           REMOTE_ADDR=ELSEWHERE)
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Too many failed log-ins for this username")


def test_one_address_guessing_many_usernames_is_throttled(client, victim, settings):
    for i in range(30):
        site_login(client, f"user{i}", "guess")
    response = site_login(client, "victim", "right-horse-battery")
    assert response.status_code == 429
    assert "from your network address" in response.content.decode()
    assert site_login(client, "victim", "right-horse-battery",
                      address=ELSEWHERE).status_code == 302


def test_an_ipv6_slash_64_is_one_address(client):
    for i in range(30):
        site_login(client, f"user{i}", "guess", address=f"2001:db8:1:2::{i + 1:x}")
    assert site_login(client, "someone", "guess",
                      address="2001:db8:1:2:ffff::9").status_code == 429
    assert site_login(client, "someone", "guess", address="2001:db8:1:3::9").status_code == 200


def test_the_lock_ends_when_the_window_has_passed(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "LOGIN_THROTTLE_WINDOW_S": 600}
    start = 1_000_000_000.0  # a window boundary: 600 divides it
    for i in range(10):
        login_failure_record(address=None, username="Victim", now=start + i)
    assert login_refusal(address=None, username="victim ", now=start + 10) is not None
    assert login_refusal(address=None, username="victim", now=start + 608) is not None
    assert login_refusal(address=None, username="victim", now=start + 610) is None
    # After the pause, a new window: one more failure does not lock again.
    login_failure_record(address=None, username="victim", now=start + 611)
    assert login_refusal(address=None, username="victim", now=start + 612) is None


def test_refused_attempts_do_not_count(client, victim, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "LOGIN_FAILURES_PER_ADDRESS": 12}
    for i in range(10):
        site_login(client, "victim", f"guess-{i}")
    for _ in range(5):  # refused for the username: not guesses from this address
        assert site_login(client, "victim", "guess").status_code == 429
    assert site_login(client, "someone-else", "guess").status_code == 200


# --- scale-out: two processes, one counter -----------------------------------------------------

def token_post(base_url: str, username: str, password: str) -> int:
    request = urllib.request.Request(
        f"{base_url}/api/v1/auth/token/", method="POST",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with _no_proxy.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.django_db(transaction=True)
def test_two_processes_share_the_counter(live_server_factory, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: the embedded mode is one process with a local cache")
    get_user_model().objects.create_user("shared", "s@example.org", "the-right-password-1")
    first, second = live_server_factory(), live_server_factory()
    # Ten guesses, five on each process: with a cache per process neither would lock.
    for i in range(5):
        assert token_post(first.url, "shared", f"wrong-{i}") == 400
        assert token_post(second.url, "shared", f"wrong-b{i}") == 400
    assert token_post(first.url, "shared", "the-right-password-1") == 429
    assert token_post(second.url, "shared", "the-right-password-1") == 429
