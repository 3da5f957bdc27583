"""The client's address, resolved once at the edge (asgi.py wraps HTTP and WebSockets in this).

Forwarded headers (X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, ...) are believed only
when the TCP peer is one of settings.TRUSTED_PROXIES (addresses or CIDR networks; empty
by default, so nothing a client writes is believed). From a trusted peer the client is
the right-most X-Forwarded-For address that is not itself a trusted proxy: every proxy
appends the address it saw, so everything to the left of that was written by the client
and may be a lie. From any other peer the headers are removed from the scope, so nothing
further in (Django's SECURE_PROXY_SSL_HEADER, DRF's throttles, the volunteer socket) can
be fooled by them.

Afterwards scope["client"] is the one address everything uses: the scheduler's distinct
networks, the gateway's per-address limits, and the login and API throttles (through
REMOTE_ADDR). scope["peer"] keeps the TCP peer for logs.
"""

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from sparecycles.trusted_proxies import IPNetwork, trusted_networks_parse

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Every header a proxy may use to speak for the client; removed unless a trusted proxy sent it.
FORWARDED_HEADERS = frozenset({b"x-forwarded-for", b"x-real-ip", b"x-forwarded-proto",
                               b"x-forwarded-host", b"x-forwarded-port", b"forwarded"})
SECURE_SCHEMES = {"http": "https", "ws": "wss"}


@functools.lru_cache(maxsize=4096)  # the same few peers and clients, over and over
def address_parse(text: str) -> IPAddress | None:
    """An address as proxies write it: "1.2.3.4", "1.2.3.4:5678", "2001:db8::1",
    "[2001:db8::1]:5678"; None for anything else ("unknown", garbage)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPAddress | None, trusted: tuple[IPNetwork, ...]) -> bool:
    return address is not None and any(
        address.version == network.version and address in network for network in trusted)


def client_from_forwarded_for(values: list[str], peer: IPAddress,
                              trusted: tuple[IPNetwork, ...]) -> IPAddress:
    """The right-most address that is not a trusted proxy, walking X-Forwarded-For from
    the right; the peer itself if the header says nothing usable."""
    hops = [hop for value in values for hop in value.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = address_parse(hop)
        if address is None:
            break  # garbage from here leftwards: keep the last address a trusted proxy gave
        client = address
        if not is_trusted(address, trusted):
            break
    return client


def forwarded_scope(scope: dict[str, Any], trusted: tuple[IPNetwork, ...]) -> dict[str, Any]:
    """A copy of an HTTP or WebSocket scope with the client (and scheme) resolved."""
    peer_pair = scope.get("client")
    # No proxies configured (the default): no address to parse, only headers to drop.
    peer = address_parse(str(peer_pair[0])) if peer_pair and trusted else None
    headers = scope.get("headers") or []
    if not is_trusted(peer, trusted):
        kept = [(name, value) for name, value in headers
                if name.lower() not in FORWARDED_HEADERS]
        if len(kept) == len(headers):
            return scope
        return {**scope, "headers": kept}
    named: dict[bytes, list[str]] = {}
    for name, value in headers:
        if name.lower() in FORWARDED_HEADERS:
            named.setdefault(name.lower(), []).append(value.decode("latin-1"))
    client = peer
    if named.get(b"x-forwarded-for"):
        client = client_from_forwarded_for(named[b"x-forwarded-for"], peer, trusted)
    elif named.get(b"x-real-ip"):
        client = address_parse(named[b"x-real-ip"][-1]) or peer
    resolved = {**scope, "client": [str(client), 0 if client != peer else peer_pair[1]],
                "peer": peer_pair}
    proto = named.get(b"x-forwarded-proto")
    if proto:
        # The nearest proxy's word (nginx overwrites the header with its own $scheme).
        said = proto[-1].split(",")[-1].strip().lower()
        scheme = scope.get("scheme") or ("ws" if scope["type"] == "websocket" else "http")
        if said in {"https", "wss"}:
            resolved["scheme"] = SECURE_SCHEMES.get(scheme, scheme)
        elif said in {"http", "ws"}:
            resolved["scheme"] = {"https": "http", "wss": "ws"}.get(scheme, scheme)
    return resolved


class ForwardedHeadersMiddleware:
    """ASGI middleware: resolve the client address once, for HTTP and WebSockets alike."""

    def __init__(self, app, trusted_proxies: Iterable[str] | None = None) -> None:
        if trusted_proxies is None:
            from django.conf import settings

            trusted_proxies = settings.TRUSTED_PROXIES
        self.app = app
        self.trusted = trusted_networks_parse(trusted_proxies)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = forwarded_scope(scope, self.trusted)
        return await self.app(scope, receive, send)
