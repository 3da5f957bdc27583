"""The swarm against a real daphne: the whole grid end to end, judged from the database."""

import asyncio
from collections.abc import Callable

import pytest
from django.db import connections

from sparecycles.credit.models import CreditGrant
from sparecycles.projects.catalogue import bundled_app_read, bundled_batch_create
from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.projects.services import QuorumParams
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Device, Volunteer
from tests.waiting import wait_for_completed
from tools.swarm.behaviours import BehaviourOptions
from tools.swarm.client import SimulatedVolunteer
from tools.swarm.runner import Swarm, SwarmConfig, SwarmSummary

pytestmark = pytest.mark.django_db(transaction=True)

S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState
FAST = {"SPARECYCLES_RETRY_AFTER_S": "1"}
# Timeouts within seconds: deadlines of 2 s, no grace, a housekeeping pass every second.
HOUSEKEEPING = {**FAST, "SPARECYCLES_EMBEDDED_HOUSEKEEPING": "true",
                "SPARECYCLES_HOUSEKEEPING_INTERVAL_S": "1", "SPARECYCLES_DEADLINE_GRACE_S": "0"}
QUORUM_1 = QuorumParams(min_quorum=1, target_nresults=1, max_error_results=3,
                        max_total_results=6, max_success_results=4, delay_bound=600)
RUN_LIMIT_S = 45.0


def native_outputs(app: str, batch: Batch) -> dict[int, object]:
    main = bundled_app_read(app).module("main").main
    return {wu.pk: main(wu.input) for wu in batch.workunits.all()}


def all_closed(batch: Batch) -> Callable[[], bool]:
    """An `until` predicate for the runner: no open work unit left (runs in a worker thread)."""
    def closed() -> bool:
        try:
            return not WorkUnit.objects.filter(batch=batch, state=WorkUnit.State.OPEN).exists()
        finally:
            connections.close_all()  # this thread's connections only
    return closed


def swarm(url: str, **config) -> tuple[SwarmSummary, Swarm]:
    config.setdefault("duration_s", RUN_LIMIT_S)
    runner = Swarm(SwarmConfig(url=url, **config))
    return asyncio.run(runner.run()), runner


def devices_of(runner: Swarm, *behaviours: str) -> set[int]:
    public = {c.device_id for c in runner.clients if c.behaviour.name in behaviours}
    return {d.pk for d in Device.objects.all() if d.public_id in public}


def assert_all_completed_correctly(batch: Batch, expected: dict[int, object]) -> None:
    for wu in batch.workunits.all():
        assert wu.state == WorkUnit.State.COMPLETED, (wu.seq, wu.state, wu.error_reason)
        assert wu.canonical_output == expected[wu.pk], f"work unit {wu.seq} has a wrong answer"


def test_honest_volunteers_complete_every_workunit_with_the_native_answer(live_server_factory):
    server = live_server_factory(env=FAST)
    batch = bundled_batch_create("primes", count=6, quorum=QUORUM_1)
    summary, _ = swarm(server.url, volunteers=4, seed=1, until=all_closed(batch))

    assert summary.stopped_because in ("until", "no work left"), summary.problems
    assert_all_completed_correctly(batch, native_outputs("primes", batch))
    assert summary.total.accepted == 6
    assert summary.refused_by_reason == {} and summary.error_frames == {}
    assert summary.problems == []
    assert summary.code_fetches == 1  # one fetch per app version, shared by the swarm
    assert summary.dispatch_latency.n >= 1 and summary.ack_latency.n == 6
    assert Replica.objects.filter(workunit__batch=batch, validate_state=V.VALID).count() == 6


@pytest.mark.parametrize("v1_frames", [False, True], ids=["batch", "v1-frames"])
def test_the_batch_extension_and_plain_v1_frames_both_complete_every_workunit(
        live_server_factory, v1_frames):
    """Offered the batch extension, the swarm reports results in `results` frames with its
    requests (fewer requests than results); with v1_frames it keeps to v1 frames."""
    server = live_server_factory(env=FAST)
    batch = bundled_batch_create("primes", count=12, quorum=QUORUM_1)
    summary, runner = swarm(server.url, volunteers=2, seed=7, until=all_closed(batch),
                            v1_frames=v1_frames,
                            options=BehaviourOptions(think_s=0.3))

    assert summary.problems == [] and summary.refused_by_reason == {}
    assert summary.error_frames == {}
    assert_all_completed_correctly(batch, native_outputs("primes", batch))
    assert summary.total.accepted == 12 and summary.ack_latency.n == 12
    assert {c.batch for c in runner.clients} == {not v1_frames}
    frames = sum(c.stats.results_frames for c in runner.clients)
    batched = sum(c.stats.batched_results for c in runner.clients)
    if v1_frames:
        assert frames == batched == 0
    else:  # every result rode in a results frame, several to a frame
        assert batched == 12 and frames < 12


def test_quorum_two_with_random_cheaters_never_yields_a_wrong_canonical_result(
        live_server_factory):
    server = live_server_factory(env=FAST)
    batch = bundled_batch_create("mandelbrot", count=20)  # manifest: quorum 2 of 2, up to 6
    # New devices must be established by spot checks first (issue 16): allow for that.
    summary, runner = swarm(server.url, volunteers=10, mix={"honest": 0.7, "cheater": 0.3},
                            seed=3, until=all_closed(batch), duration_s=120)

    assert summary.problems == []
    assert summary.per_behaviour["cheater"].volunteers == 3
    expected = native_outputs("mandelbrot", batch)
    for wu in batch.workunits.all():
        assert wu.state in (WorkUnit.State.COMPLETED, WorkUnit.State.FAILED), wu.seq
        if wu.state == WorkUnit.State.COMPLETED:
            assert wu.canonical_output == expected[wu.pk], f"work unit {wu.seq}: wrong answer won"
        else:
            assert wu.error_reason
    cheaters = devices_of(runner, "cheater")
    cheats = Replica.objects.filter(device_id__in=cheaters, outcome=O.SUCCESS)
    assert cheats.count() == summary.per_behaviour["cheater"].accepted
    assert not cheats.filter(validate_state=V.VALID).exists()
    assert not CreditGrant.objects.filter(device_id__in=cheaters).exists()
    if cheats.exists():  # 3 of 10 volunteers: in practice they always get some work
        assert cheats.filter(validate_state=V.INVALID).exists()


def test_resending_an_acked_result_is_a_duplicate_and_changes_nothing(live_server_factory):
    server = live_server_factory(env=FAST)
    batch = bundled_batch_create("mandelbrot", count=10, quorum=QUORUM_1)
    summary, runner = swarm(server.url, volunteers=3, seed=5, duplicate_p=1.0, keep_acked=True,
                            until=all_closed(batch))
    # During the run every accepted result was sent once more, and came back duplicate.
    assert summary.total.accepted == 10
    assert summary.duplicates_sent == 10 and summary.total.duplicates == 10
    assert summary.refused_by_reason == {}

    def snapshot():
        return (
            list(Replica.objects.order_by("pk").values_list(
                "pk", "task_id", "device_id", "server_state", "outcome", "validate_state",
                "received_at", "output", "error_message")),
            list(WorkUnit.objects.order_by("pk").values_list(
                "pk", "state", "canonical_replica_id", "canonical_output", "completed_at")),
            list(CreditGrant.objects.order_by("pk").values()),
            # Saying hello again refreshes a device's last_seen; nothing else may move.
            [{k: v for k, v in row.items() if k != "last_seen"}
             for row in Device.objects.order_by("pk").values()],
            list(Volunteer.objects.order_by("pk").values()),
        )

    before = snapshot()
    owner = next(c for c in runner.clients if c.acked)
    frames = owner.acked
    # The same results again, and one with a different answer: still duplicates.
    forged = {**frames[0], "output": {"forged": True}}
    replay = SimulatedVolunteer(url=server.url, behaviour=owner.behaviour, token=owner.token)
    acks = asyncio.run(replay.resend([*frames, forged]))
    assert [a["task_id"] for a in acks] == [f["task_id"] for f in [*frames, forged]]
    assert all(a["accepted"] and a.get("duplicate") for a in acks), acks
    assert replay.device_id == owner.device_id  # the token kept its device

    # Another device cannot report it at all, and a made-up task id is unknown.
    stranger = SimulatedVolunteer(url=server.url, behaviour=owner.behaviour)
    acks = asyncio.run(stranger.resend([frames[0], {**frames[0], "task_id": "no-such-task"}]))
    assert [(a["accepted"], a.get("reason")) for a in acks] == [
        (False, "not_assigned"), (False, "unknown_task")]

    after = snapshot()
    assert after[:3] == before[:3]
    for rows_after, rows_before in zip(after[3:], before[3:], strict=True):
        # The stranger is one new device (and volunteer); nothing else changed.
        assert rows_after[: len(rows_before)] == rows_before
        assert len(rows_after) == len(rows_before) + 1


def test_flaky_errors_are_stored_and_the_work_still_completes(live_server_factory):
    server = live_server_factory(env=FAST)
    # Three flaky volunteers can fail a work unit at most three times: it never gives up.
    quorum = QuorumParams(min_quorum=1, target_nresults=1, max_error_results=4,
                          max_total_results=8, max_success_results=4, delay_bound=600)
    batch = bundled_batch_create("mandelbrot", count=20, quorum=quorum)
    summary, runner = swarm(server.url, volunteers=6, mix={"honest": 0.5, "flaky": 0.5},
                            seed=7, options=BehaviourOptions(flaky_error_p=0.8),
                            until=all_closed(batch))

    assert_all_completed_correctly(batch, native_outputs("mandelbrot", batch))
    errors = Replica.objects.filter(workunit__batch=batch, outcome=O.CLIENT_ERROR)
    assert summary.total.errors_reported > 0
    assert errors.count() == summary.total.errors_reported
    assert set(errors.values_list("device_id", flat=True)) <= devices_of(runner, "flaky")
    assert all("SimulatedError" in e for e in errors.values_list("error_message", flat=True))


def test_a_vanished_volunteer_that_returns_with_its_token_keeps_its_tasks(live_server_factory):
    server = live_server_factory(env=FAST)
    batch = bundled_batch_create("mandelbrot", count=6, quorum=QUORUM_1)
    options = BehaviourOptions(vanish_times=1, vanish_return_p=1.0, vanish_return_after_s=0.5)
    summary, _ = swarm(server.url, volunteers=3, mix={"vanishing": 1.0}, seed=11,
                       options=options, until=all_closed(batch))

    assert_all_completed_correctly(batch, native_outputs("mandelbrot", batch))
    assert summary.total.vanished >= 1
    assert summary.total.reconnects == summary.total.vanished
    assert Device.objects.count() == 3  # each came back as the same device
    # Nothing was reissued: the tasks waited for their device.
    assert Replica.objects.filter(workunit__batch=batch).count() == 6


def _late_and_honest(url: str, batch: Batch, late: dict[str, float], options: BehaviourOptions
                     ) -> tuple[SwarmSummary, SwarmSummary, Swarm]:
    """One misbehaving volunteer takes all the work first; honest ones join a second later."""
    async def both():
        bad = Swarm(SwarmConfig(url=url, volunteers=1, mix=late, options=options, seed=13,
                                idle_stop_s=2.0, duration_s=RUN_LIMIT_S))
        good = Swarm(SwarmConfig(url=url, volunteers=2, seed=14, idle_stop_s=None,
                                 until=all_closed(batch), duration_s=RUN_LIMIT_S))
        bad_run = asyncio.create_task(bad.run())
        await asyncio.sleep(1.0)
        good_summary = await good.run()
        return await bad_run, good_summary, bad

    return asyncio.run(both())


def test_slow_volunteers_are_timed_out_and_their_work_reissued(live_server_factory):
    server = live_server_factory(env=HOUSEKEEPING)
    batch = bundled_batch_create("mandelbrot", count=4, quorum=QuorumParams(
        min_quorum=1, target_nresults=1, max_error_results=3, max_total_results=6,
        max_success_results=4, delay_bound=2))
    options = BehaviourOptions(slow_overrun_s=3.0, slow_max_hold_s=15.0)
    slow, honest, runner = _late_and_honest(server.url, batch, {"slow": 1.0}, options)

    assert_all_completed_correctly(batch, native_outputs("mandelbrot", batch))
    slow_devices = devices_of(runner, "slow")
    held = Replica.objects.filter(workunit__batch=batch, device_id__in=slow_devices)
    assert held.exists()
    for replica in held:
        # Reissued to someone else after the deadline ...
        assert Replica.objects.filter(workunit=replica.workunit_id, sent_at__gt=replica.deadline
                                      ).exclude(device_id__in=slow_devices).exists()
        # ... and the late answer, when it came, was still taken: valid if its unit was still
        # open, otherwise stored as too late and worth no credit (issue 15).
        if replica.received_at is not None:
            assert replica.received_at > replica.deadline
            assert replica.validate_state in (V.VALID, V.TOO_LATE)
            if replica.validate_state == V.TOO_LATE:
                assert not CreditGrant.objects.filter(replica=replica).exists()
    assert slow.total.accepted == held.filter(received_at__isnull=False).count()
    assert honest.problems == [] and slow.problems == []


def test_vanished_volunteers_are_timed_out_and_their_work_reissued(live_server_factory):
    server = live_server_factory(env=HOUSEKEEPING)
    batch = bundled_batch_create("mandelbrot", count=4, quorum=QuorumParams(
        min_quorum=1, target_nresults=1, max_error_results=3, max_total_results=6,
        max_success_results=4, delay_bound=2))
    options = BehaviourOptions(vanish_return_p=0.0)
    gone, honest, runner = _late_and_honest(server.url, batch, {"vanishing": 1.0}, options)

    assert gone.total.vanished == 1 and gone.total.results_sent == 0
    assert_all_completed_correctly(batch, native_outputs("mandelbrot", batch))
    abandoned = Replica.objects.filter(workunit__batch=batch,
                                       device_id__in=devices_of(runner, "vanishing"))
    assert abandoned.count() == gone.total.tasks_received > 0
    assert all(r.outcome == O.NO_REPLY for r in abandoned)


def test_volunteers_ride_out_a_server_crash_and_no_acked_result_is_lost(live_server_factory):
    server = live_server_factory(env=FAST)
    batch = bundled_batch_create("primes", count=12, quorum=QUORUM_1)

    async def crash_midway() -> tuple[SwarmSummary, Swarm]:
        runner = Swarm(SwarmConfig(url=server.url, volunteers=3, seed=17,
                                   until=all_closed(batch), duration_s=RUN_LIMIT_S))
        run = asyncio.create_task(runner.run())
        async with asyncio.timeout(20):
            while sum(c.stats.accepted for c in runner.clients) < 3:
                await asyncio.sleep(0.02)
        server.kill()
        await asyncio.sleep(0.5)  # the clients notice, and start retrying
        # A result acked just before the kill may not have been validated: the new
        # process's housekeeping (scale-out: the validator daemon) picks it up at start.
        await asyncio.to_thread(live_server_factory, port=server.port,
                                env={**FAST, "SPARECYCLES_EMBEDDED_HOUSEKEEPING": "true"})
        return await run, runner

    summary, runner = asyncio.run(crash_midway())

    assert summary.problems == []
    wait_for_completed(batch, 12, timeout_s=10)
    assert_all_completed_correctly(batch, native_outputs("primes", batch))
    assert summary.total.reconnects == 3  # everyone came back ...
    assert Device.objects.count() == 3  # ... as the same device
    # Every result counted once: a result whose ack died with the server was resent and
    # came back a duplicate, never stored twice.
    assert summary.total.accepted == 12
    assert Replica.objects.filter(workunit__batch=batch).count() == 12
    assert CreditGrant.objects.filter(workunit__batch=batch).count() == 12


def test_rate_limited_results_and_frames_are_sent_again_until_accepted(live_server_factory):
    server = live_server_factory(env={
        # 1 result/s (a burst of 5) per device: even a client slowed by a loaded machine
        # sends its 20 tiles faster than that, so the limit is met on any machine.
        **FAST, "SPARECYCLES_RESULTS_PER_S": "1", "SPARECYCLES_FRAMES_PER_S": "8",
        "SPARECYCLES_FRAME_BURST": "8", "SPARECYCLES_MAX_VIOLATIONS": "1000"})
    batch = bundled_batch_create("mandelbrot", count=40, quorum=QUORUM_1)  # fast tiles
    summary, _ = swarm(server.url, volunteers=2, seed=19, until=all_closed(batch))

    assert summary.problems == []
    assert summary.rate_limited > 0
    assert summary.refused_by_reason == {}  # "not now" is not a refusal
    assert_all_completed_correctly(batch, native_outputs("mandelbrot", batch))
    assert summary.total.accepted == 40


def test_a_server_that_refuses_connections_is_reported_clearly(live_server_factory):
    server = live_server_factory(env={**FAST, "SPARECYCLES_MAX_CONNECTIONS_PER_IP": "2"})
    summary, runner = swarm(server.url, volunteers=3, seed=23, reconnect_attempts=1,
                            duration_s=15, idle_stop_s=1.0)

    refused = [c for c in runner.clients if c.problem]
    assert len(refused) == 1
    assert "refused the WebSocket handshake" in refused[0].problem
    assert "SPARECYCLES_MAX_CONNECTIONS_PER_IP=0" in summary.problems[0]
