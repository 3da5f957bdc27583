"""In scale-out the per-address connection limits hold across processes (REDIS_URL)."""

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

pytestmark = pytest.mark.django_db(transaction=True)


def opened(server):
    return connect(server.ws_url, open_timeout=10)


def test_two_processes_enforce_one_open_connection_limit(live_server_factory, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: the embedded mode is one process")
    limits = {"SPARECYCLES_MAX_CONNECTIONS_PER_IP": "2",
              "SPARECYCLES_CONNECTIONS_PER_IP_PER_MIN": "0"}
    first, second = live_server_factory(env=limits), live_server_factory(env=limits)
    with opened(first), opened(second):
        # Each process holds one: with a count per process both would take another.
        for server in (first, second):
            with pytest.raises(InvalidStatus) as refused:
                with opened(server):
                    pass
            assert refused.value.response.status_code == 403
    with opened(first), opened(first):  # closed sockets gave their leases back
        pass


def test_two_processes_enforce_one_new_connections_per_minute_limit(live_server_factory,
                                                                     settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: the embedded mode is one process")
    limits = {"SPARECYCLES_MAX_CONNECTIONS_PER_IP": "0",
              "SPARECYCLES_CONNECTIONS_PER_IP_PER_MIN": "3"}
    first, second = live_server_factory(env=limits), live_server_factory(env=limits)
    for server in (first, second, first):
        with opened(server):
            pass
    with pytest.raises(InvalidStatus):
        with opened(second):
            pass
