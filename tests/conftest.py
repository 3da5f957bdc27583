"""Fixtures shared by every test: a project chain and a volunteer device."""

import os
import tempfile
import time
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.core.management.commands import flush as flush_command

from sparecycles import secret_key
from sparecycles.projects.models import App, Project
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.services import device_connect

pytest_plugins = ["tests.live_server"]  # live_server_factory / live_server_url: a real daphne

# The servers tests start (and sparecycles.asgi imported here) run on the development key
# that settings already chose, told so the way `make run` tells them (secret_key.py).
os.environ.update(secret_key.development_key_environ(os.environ, django_settings.VAR_DIR))

# This process drives housekeeping itself (tests call the jobs): importing sparecycles.asgi,
# as the socket tests do, must not start the embedded loop in a thread that would race them.
django_settings.SPARECYCLES["EMBEDDED_HOUSEKEEPING"] = False

# Channels' communicator waits 1 s for each frame. On a loaded 2-core CI machine a frame can
# take longer than that, and the test then fails on time, not behaviour. A wait costs time
# only when a frame is late, so the tests wait up to 15 s: a missing frame still fails.
FRAME_WAIT = 15
for _name in ("connect", "receive_from", "receive_json_from"):
    getattr(WebsocketCommunicator, _name).__defaults__ = (FRAME_WAIT,)
WebsocketCommunicator.disconnect.__defaults__ = (1000, FRAME_WAIT)

# Static files come from the sources under plain names, whatever `make run`'s collectstatic
# left in staticfiles/: an empty STATIC_ROOT of the tests' own, here and in the servers they
# start (tests/web/test_static_delivery.py collects into a directory of its own).
os.environ["STATIC_ROOT"] = tempfile.mkdtemp(prefix="sparecycles-test-static-")
django_settings.STATIC_ROOT = Path(os.environ["STATIC_ROOT"])

# Transactional tests end with `flush` (one TRUNCATE of every table). A live server of the
# test may still be inside a transaction then (a batch it gathered, a page's last poll), and
# PostgreSQL may pick the TRUNCATE as a deadlock's victim. Production never truncates, so the
# tests retry it, as the server's own writes retry theirs (db.deadlock_retry).
_flush_handle = flush_command.Command.handle


def _flush_retrying_deadlocks(self, **options):
    for attempt in range(1, 6):
        try:
            return _flush_handle(self, **options)
        except CommandError as exc:
            if attempt == 5 or "deadlock" not in str(exc.__cause__).lower():
                raise
            time.sleep(0.2 * attempt)


flush_command.Command.handle = _flush_retrying_deadlocks

SQUARE_APP = b"def main(input):\n    return {'n': input['n'], 'square': input['n'] ** 2}\n"


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("owner", "owner@example.org", "pw-owner-123")


@pytest.fixture
def project(owner):
    project = Project.objects.create(slug="squares", title="Squares")
    project.owners.add(owner)
    return project


@pytest.fixture
def app(project):
    return App.objects.create(project=project, name="square", title="Squares")


def approved(version):
    """Let `version`'s declared FLOPs estimate stand (a superuser's recorded approval), so a
    test's credit is the declared amount whatever the (unmeasured) elapsed times."""
    from sparecycles.credit.services import flops_approve

    User = get_user_model()
    root = (User.objects.filter(username="credit-approver").first()
            or User.objects.create_superuser("credit-approver", "root@example.org", "pw-root-123"))
    flops_approve(app_version=version, by=root, note="test fixture")
    return version


@pytest.fixture
def app_version(app):
    return approved(app_version_create(app=app, code=SQUARE_APP, flops_per_unit=432e9))  # 1 credit


@pytest.fixture
def make_batch(app_version):
    def make(count=3, **quorum):
        return batch_create(app_version=app_version, name="test batch",
                            inputs=[{"n": i} for i in range(1, count + 1)],
                            quorum=QuorumParams(**quorum))
    return make


@pytest.fixture
def make_device(db):
    def make(token=None, runtimes=("pyodide",)):
        return device_connect(token=token, capabilities={"runtimes": list(runtimes)})
    return make


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A new channel layer per test: each async test runs on its own event loop, and a
    Redis layer's connections and locks belong to the loop that made them."""
    from channels.layers import channel_layers

    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.fixture
def sent_to_groups() -> list[tuple[str, dict]]:
    """Every group_send of this test's channel layer, as (group, message), in order: the
    configured layer (in-memory, or channels_redis in scale-out), counting as it sends."""
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
    from django.utils.module_loading import import_string

    config = django_settings.CHANNEL_LAYERS[DEFAULT_CHANNEL_LAYER]
    sent: list[tuple[str, dict]] = []

    class CountingLayer(import_string(config["BACKEND"])):
        async def group_send(self, group, message):
            sent.append((group, message))
            await super().group_send(group, message)

    channel_layers.backends[DEFAULT_CHANNEL_LAYER] = CountingLayer(**config.get("CONFIG", {}))
    return sent


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Per-process limiter state must not leak from one test into the next."""
    from sparecycles.gateway import ratelimit

    ratelimit.connections = ratelimit.ConnectionLimiter()
    ratelimit.device_results = ratelimit.DeviceBuckets()


@pytest.fixture(autouse=True)
def _fresh_calibration():
    """Credit's per-process calibration cache (references, device medians) must not leak
    from one test into the next."""
    from sparecycles.credit.claims import calibration_cache_clear

    calibration_cache_clear()
    yield
    calibration_cache_clear()


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Throttle counters (login, API) must not leak from one test into the next, nor from an
    earlier run: Redis keeps them. Only the cache's own keys go (never FLUSHDB)."""
    from django.core.cache import cache

    if django_settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(django_settings.REDIS_URL)
        try:
            prefix = django_settings.CACHES["default"]["KEY_PREFIX"]
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    """Tests drive housekeeping themselves (a background thread would race them), and
    files they make go to a temporary folder."""
    settings.SPARECYCLES = {**settings.SPARECYCLES, "EMBEDDED_HOUSEKEEPING": False,
                            "STATS_DIR": str(tmp_path / "stats"),
                            # Tie-breakers go to any device unless a test says otherwise.
                            "RELIABLE_RETRY_WAIT_S": 0,
                            # Known answers for slow bundled apps (primes): a few seconds.
                            "KNOWN_ANSWER_BUDGET_S": 5}


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Close connections after each use, so threads of async tests don't hold the test DB open."""
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    settings.DATABASES["default"].setdefault("TEST", {})


@pytest.fixture
def establish(db):
    """Give devices an established record (as if spot checks and established peers had
    confirmed `confirmed` of their results): validation lets them settle a quorum."""
    from sparecycles.validation.models import DeviceCredibility

    def make(*devices, confirmed=20):
        for device in devices:
            DeviceCredibility.objects.update_or_create(device=device,
                                                       defaults={"confirmed": confirmed})
        return devices[0] if len(devices) == 1 else devices
    return make


@pytest.fixture
def earn():
    """Compute one task on `device` and report it; with quorum 1 it is valid and credited."""
    def run(device, output=None):
        replica = tasks_dispatch(device=device, slots=1).replicas[0]
        replica_report(device=device, task_id=replica.task_id, ok=True,
                       output=output if output is not None else {"x": 1})
        return replica
    return run
