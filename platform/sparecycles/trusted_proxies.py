"""TRUSTED_PROXIES parsed: a settings-level helper (settings.py checks the setting with it at
start-up, web/forwarded.py uses the networks), so it imports no app."""

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxiesError(ValueError):
    pass


def trusted_networks_parse(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """TRUSTED_PROXIES entries ("10.0.0.5", "10.0.0.0/8", "::1") as networks."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise TrustedProxiesError(
                f"TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                "(write e.g. 127.0.0.1 or 10.0.0.0/8, separated by commas).") from None
    return tuple(networks)
