"""Forwarded headers count only from TRUSTED_PROXIES (web/forwarded.py), resolved once at the edge.

The live tests start the server exactly as `make run` and `manage.py serve` do, bound to a
non-loopback address of this machine (loopback clients are exempt from the distinct-network
rule, so a spoof from 127.0.0.1 would prove nothing), and connect two sockets from that one
host, each claiming another /24 in X-Forwarded-For.
"""

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from sparecycles.scheduler.models import Replica
from sparecycles.trusted_proxies import trusted_networks_parse
from sparecycles.web.forwarded import (
    ForwardedHeadersMiddleware,
    client_from_forwarded_for,
    forwarded_scope,
)
from tests.live_server import _healthy, database_url

REPO = Path(__file__).resolve().parents[2]
HELLO = {"type": "hello", "protocol": 1, "device_token": None,
         "client": {"name": "spoofer", "version": "1"},
         "capabilities": {"runtimes": ["pyodide"], "cores": 1, "memory_mb": 1024}}


def ip(text):
    return ipaddress.ip_address(text)


def http_scope(peer, *headers, scheme="http"):
    return {"type": "http", "scheme": scheme, "client": [peer, 5555],
            "headers": [(name.encode(), value.encode()) for name, value in headers]}


# --- the resolution itself ----------------------------------------------------------------

def test_an_untrusted_peer_is_the_client_and_its_forwarded_headers_are_removed():
    scope = http_scope("198.51.100.7", ("x-forwarded-for", "10.1.1.5"), ("X-Real-IP", "10.9.9.9"),
                       ("x-forwarded-proto", "https"), ("host", "example.org"))
    resolved = forwarded_scope(scope, trusted_networks_parse([]))
    assert resolved["client"] == ["198.51.100.7", 5555]
    assert resolved["scheme"] == "http"
    assert resolved["headers"] == [(b"host", b"example.org")]  # nothing further in can read them


def test_a_trusted_peer_gives_the_right_most_untrusted_address():
    trusted = trusted_networks_parse(["127.0.0.1", "10.0.0.0/8"])
    # The client wrote "6.6.6.6"; the first proxy appended what it saw, then an inner one.
    scope = http_scope("127.0.0.1", ("x-forwarded-for", "6.6.6.6, 203.0.113.4, 10.0.0.3"),
                       ("x-forwarded-proto", "https"))
    resolved = forwarded_scope(scope, trusted)
    assert resolved["client"][0] == "203.0.113.4"
    assert resolved["scheme"] == "https"
    assert resolved["peer"] == ["127.0.0.1", 5555]


def test_forwarded_for_edge_cases():
    trusted = trusted_networks_parse(["10.0.0.0/8"])
    peer = ip("10.0.0.1")
    assert client_from_forwarded_for([], peer, trusted) == peer
    assert client_from_forwarded_for(["garbage"], peer, trusted) == peer
    assert client_from_forwarded_for(["203.0.113.9:4711"], peer, trusted) == ip("203.0.113.9")
    assert client_from_forwarded_for(["[2001:db8::7]:80"], peer, trusted) == ip("2001:db8::7")
    assert client_from_forwarded_for(["1.1.1.1", "10.0.0.9"], peer, trusted) == ip("1.1.1.1")
    # Only proxies in the chain: the left-most of them.
    assert client_from_forwarded_for(["10.0.0.7, 10.0.0.8"], peer, trusted) == ip("10.0.0.7")
    # Garbage right of the client stops the walk at the last good hop.
    assert client_from_forwarded_for(["6.6.6.6, unknown, 10.0.0.8"], peer,
                                     trusted) == ip("10.0.0.8")


def test_x_real_ip_is_used_when_a_trusted_proxy_sends_no_forwarded_for():
    trusted = trusted_networks_parse(["::1"])
    resolved = forwarded_scope(http_scope("::1", ("x-real-ip", "2001:db8::5")), trusted)
    assert resolved["client"][0] == "2001:db8::5"


def test_websocket_scheme_follows_the_trusted_proto():
    trusted = trusted_networks_parse(["127.0.0.1"])
    scope = {"type": "websocket", "scheme": "ws", "client": ["127.0.0.1", 1],
             "headers": [(b"x-forwarded-proto", b"https")]}
    assert forwarded_scope(scope, trusted)["scheme"] == "wss"


@pytest.mark.django_db
def test_https_proto_from_an_untrusted_client_does_not_make_the_request_secure(client, settings):
    """HTTPS=true's SECURE_PROXY_SSL_HEADER reads X-Forwarded-Proto; a client can't set it."""
    from asgiref.sync import async_to_sync

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    seen = {}

    async def inner(scope, receive, send):
        seen.update(scope)

    for trusted, expected in (([], False), (["203.0.113.1"], True)):
        seen.clear()
        middleware = ForwardedHeadersMiddleware(inner, trusted_proxies=trusted)
        async_to_sync(middleware)(http_scope("203.0.113.1", ("x-forwarded-proto", "https")),
                                  None, None)
        assert ((b"x-forwarded-proto", b"https") in seen["headers"]) is expected
        assert (seen["scheme"] == "https") is expected


# --- the per-address limits can't be reset by a spoof ----------------------------------------

@pytest.mark.django_db
def test_a_spoofed_forwarded_for_does_not_reset_the_api_login_throttle(client, owner):
    refused = None
    for attempt in range(40):
        response = client.post("/api/v1/auth/token/", {"username": "owner", "password": "bad"},
                               REMOTE_ADDR="198.51.100.20",
                               HTTP_X_FORWARDED_FOR=f"10.{attempt}.0.1")
        if response.status_code == 429:
            refused = attempt
            break
    assert refused is not None, "30 guesses a minute from one address must be throttled"


# --- the spoof pair against the real server ---------------------------------------------------

def local_non_loopback_ipv4() -> str | None:
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # no packet is sent: it only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Started:
    """A server command in its own process group, stopped with the whole group."""

    def __init__(self, command: list[str], *, env: dict, url: str, log: Path) -> None:
        self.url, self.log = url, log
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120  # `make run` migrates and loads the demo first
        while time.monotonic() < deadline and self.process.poll() is None:
            if _healthy(url):
                return
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"{command} did not come up. Its log:\n{log.read_text()[-6000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def uvicorn_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("uvicorn") is None


SERVERS = ["daphne", pytest.param("uvicorn", marks=pytest.mark.skipif(
    uvicorn_missing(), reason="uvicorn is not installed"))]


def start_like(how: str, host: str, tmp_path: Path, server: str = "daphne", **env) -> Started:
    port = free_port(host)
    server_env = {k: v for k, v in os.environ.items()
                  if k not in {"DJANGO_ALLOW_ASYNC_UNSAFE", "TRUSTED_PROXIES"}}
    server_env.update({"DATABASE_URL": database_url(connection.settings_dict),
                       "ALLOWED_HOSTS": f"{host},127.0.0.1", "PYTHONUNBUFFERED": "1",
                       "SPARECYCLES_RETRY_AFTER_S": "1", **env})
    if how == "make run":
        command = ["make", "--no-print-directory", "run", f"HOST={host}", f"PORT={port}",
                   f"PYTHON={sys.executable}"]
    else:
        command = [sys.executable, "manage.py", "serve", "--workers", "1", "--host", host,
                   "--port", str(port), "--no-housekeeping", "--no-validator",
                   "--server", server]
    return Started(command, env=server_env, url=f"http://{host}:{port}",
                   log=tmp_path / f"{how.replace(' ', '-')}-{server}-{port}.log")


def volunteer_socket(server: Started, forwarded_for: str):
    ws_url = server.url.replace("http://", "ws://") + "/ws/volunteer/"
    return connect(ws_url, additional_headers={"X-Forwarded-For": forwarded_for},
                   open_timeout=10)


def tasks_for(server: Started, forwarded_for: str) -> list[dict]:
    """One fresh device from this host, claiming `forwarded_for`: the tasks it is given."""
    with volunteer_socket(server, forwarded_for) as socket_:
        socket_.send(json.dumps(HELLO))
        assert json.loads(socket_.recv(timeout=10))["type"] == "welcome"
        socket_.send(json.dumps({"type": "request", "slots": 1}))
        while True:
            frame = json.loads(socket_.recv(timeout=10))
            if frame["type"] == "tasks":
                return frame["tasks"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how,asgi_server", [
    ("make run", "daphne"), ("serve", "daphne"),
    pytest.param("serve", "uvicorn", marks=SERVERS[1].marks)])
def test_a_spoofed_pair_from_one_host_never_gets_both_replicas(how, asgi_server, make_batch,
                                                               tmp_path):
    host = local_non_loopback_ipv4()
    if host is None:
        pytest.skip("this machine has no non-loopback IPv4 address to serve on")
    [workunit] = make_batch(count=1, min_quorum=2, target_nresults=2).workunits.all()
    server = start_like(how, host, tmp_path, server=asgi_server,
                        SPARECYCLES_CONNECTIONS_PER_IP_PER_MIN="3")
    try:
        first = tasks_for(server, "10.1.1.5")
        second = tasks_for(server, "10.2.2.5")
        with volunteer_socket(server, "10.3.3.5"):
            pass  # this host's third connection this minute: the last one allowed
        # A fourth claiming yet another address is still this host's fourth: refused.
        with pytest.raises(InvalidStatus) as refused:
            with volunteer_socket(server, "10.4.4.5"):
                pass
    finally:
        server.stop()
    assert refused.value.response.status_code == 403  # the answer to a denied handshake
    # Both sockets are this host's network: one replica, and the second gets none of it.
    assert len(first) == 1 and second == []
    assert Replica.objects.filter(workunit=workunit).exclude(device=None).count() == 1
    assert set(Replica.objects.filter(workunit=workunit).exclude(device=None)
               .values_list("network", flat=True)) == {str(ipaddress.ip_network(
                   f"{host}/24", strict=False))}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("asgi_server", SERVERS)
def test_forwarded_for_is_believed_from_a_trusted_proxy(asgi_server, make_batch, tmp_path):
    host = local_non_loopback_ipv4()
    if host is None:
        pytest.skip("this machine has no non-loopback IPv4 address to serve on")
    [workunit] = make_batch(count=1, min_quorum=2, target_nresults=2).workunits.all()
    server = start_like("serve", host, tmp_path, server=asgi_server, TRUSTED_PROXIES=host)
    try:
        first = tasks_for(server, "10.1.1.5")
        second = tasks_for(server, "10.2.2.5")
    finally:
        server.stop()
    assert len(first) == 1 and len(second) == 1
    assert set(Replica.objects.filter(workunit=workunit).values_list("network", flat=True)) == {
        "10.1.1.0/24", "10.2.2.0/24"}


def test_a_bad_trusted_proxies_setting_stops_the_server_with_one_line():
    env = {**os.environ, "TRUSTED_PROXIES": "127.0.0.1, nginx.local",
           "PYTHONPATH": str(REPO / "platform")}
    result = subprocess.run([sys.executable, "-c", "import sparecycles.asgi"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Spare Cycles cannot start: TRUSTED_PROXIES: 'nginx.local' is not an IP address or "
        "network (write e.g. 127.0.0.1 or 10.0.0.0/8, separated by commas)."]
