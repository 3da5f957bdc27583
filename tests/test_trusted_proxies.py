"""TRUSTED_PROXIES parsing (settings-level: settings.py refuses a bad value at start-up)."""

import ipaddress

import pytest

from sparecycles.trusted_proxies import TrustedProxiesError, trusted_networks_parse


def test_addresses_and_networks_parse():
    assert trusted_networks_parse([" 127.0.0.1", "10.0.0.0/8", "::1"]) == (
        ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"))


def test_bad_trusted_proxies_are_refused_with_a_clear_message():
    with pytest.raises(TrustedProxiesError, match="not an IP address"):
        trusted_networks_parse(["nginx.local"])
