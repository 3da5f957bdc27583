"""The runner's pure parts: the mix, the loopback rule, latency percentiles, the table."""

import pytest

from tools.swarm.client import SwarmError, endpoints
from tools.swarm.runner import (
    Latency,
    Outcomes,
    SwarmConfig,
    SwarmSummary,
    behaviour_counts,
    parse_mix,
    require_loopback,
    summary_table,
)


def test_mix_weights_are_normalised():
    assert parse_mix("honest=0.7,cheater=0.2,flaky=0.1") == pytest.approx(
        {"honest": 0.7, "cheater": 0.2, "flaky": 0.1})
    assert parse_mix("honest=7, cheater=3") == pytest.approx({"honest": 0.7, "cheater": 0.3})
    assert parse_mix("slow") == {"slow": 1.0}
    assert parse_mix("honest=1,flaky=0") == {"honest": 1.0}


@pytest.mark.parametrize(("text", "message"), [
    ("honest=0.5,lazy=0.5", "Unknown behaviour 'lazy'"),
    ("honest=lots", "no number after '='"),
    ("honest=-1", "not negative"),
    ("honest=nan", "not negative"),
    ("honest=1,honest=2", "twice"),
    ("honest=0", "positive weight"),
    ("", "positive weight"),
])
def test_bad_mixes_say_what_is_wrong(text, message):
    with pytest.raises(SwarmError, match=message):
        parse_mix(text)


def test_behaviour_counts_add_up():
    assert behaviour_counts({"honest": 0.7, "cheater": 0.2, "flaky": 0.1}, 20) == {
        "honest": 14, "cheater": 4, "flaky": 2}
    counts = behaviour_counts({"honest": 0.34, "cheater": 0.33, "flaky": 0.33}, 10)
    assert sum(counts.values()) == 10 and counts["honest"] == 4
    assert behaviour_counts({"slow": 1.0}, 1) == {"slow": 1}


def test_only_loopback_servers_are_targeted():
    for url in ("http://127.0.0.1:8000", "http://localhost:8000", "ws://[::1]:8000",
                "127.0.0.2:9000"):
        require_loopback(url)
    for url in ("http://example.org", "http://10.0.0.1:8000", "https://192.168.1.2"):
        with pytest.raises(SwarmError, match="not a loopback address"):
            require_loopback(url)


def test_endpoints_from_any_spelling_of_the_server():
    assert endpoints("http://127.0.0.1:8000/") == ("http://127.0.0.1:8000",
                                                   "ws://127.0.0.1:8000/ws/volunteer/")
    assert endpoints("https://localhost") == ("https://localhost", "wss://localhost/ws/volunteer/")
    with pytest.raises(SwarmError, match="not a server address"):
        endpoints("ftp://127.0.0.1")


def test_config_is_checked():
    with pytest.raises(SwarmError, match="at least 1"):
        SwarmConfig(url="http://127.0.0.1:1", volunteers=0).check()
    with pytest.raises(SwarmError, match="--duration"):
        SwarmConfig(url="http://127.0.0.1:1", duration_s=0).check()


def test_latency_percentiles_by_nearest_rank():
    latency = Latency.of([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert (latency.n, latency.p50_ms, latency.p90_ms, latency.p99_ms, latency.max_ms) == (
        100, 50.0, 90.0, 99.0, 100.0)
    assert Latency.of([]).p50_ms is None
    assert Latency.of([0.005]).p99_ms == 5.0


def test_summary_table_is_readable():
    total = Outcomes(volunteers=2, tasks_received=5, results_sent=5, accepted=4, refused=1,
                     errors_reported=1)
    summary = SwarmSummary(
        url="http://127.0.0.1:8000", volunteers=2, mix={"honest": 0.5, "flaky": 0.5}, seed=1,
        stopped_because="no work left", wall_s=3.0, active_s=2.0, throughput_per_s=2.0,
        total=total, per_behaviour={"flaky": total, "honest": Outcomes()},
        refused_by_reason={"not_assigned": 1}, error_frames={}, dispatch_latency=Latency.of(
            [0.01]), ack_latency=Latency.of([]), retransmits=0, duplicates_sent=0,
        code_fetches=1, code_errors=0, connection_failures=0, unacked_at_stop=0, held_at_stop=3,
        rate_limited=0,
        problems=["flaky-1: gave up"])
    table = summary_table(summary)
    assert "Swarm of 2 volunteers (honest 50%, flaky 50%)" in table
    assert "stopped after 3.0 s: no work left (seed 1)" in table
    assert "2.0 accepted results/s" in table
    assert "refused          not_assigned 1" in table
    assert "ack latency      no samples" in table
    assert "problem          flaky-1: gave up" in table
    assert "3 tasks unfinished at stop" in table
    assert summary.as_dict()["total"]["accepted"] == 4
