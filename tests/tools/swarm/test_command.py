"""`manage.py swarm`: a pure client of a running server, with clear errors."""

import json

import pytest
from django.core.management import CommandError, call_command

from sparecycles.projects.catalogue import bundled_batch_create
from sparecycles.projects.services import QuorumParams
from tests.live_server import free_port
from tools.swarm.management.commands.swarm import Command


def swarm(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(Command(), *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_prints_a_table_or_json(live_server_factory):
    server = live_server_factory(env={"SPARECYCLES_RETRY_AFTER_S": "1"})
    bundled_batch_create("mandelbrot", count=8, quorum=QuorumParams(
        min_quorum=1, target_nresults=1, max_total_results=6))
    table = swarm("--url", server.url, "--volunteers", "3", "--mix", "honest=2,flaky=1",
                  "--duration", "40", "--idle-stop", "1", "--seed", "1", "--flaky-p", "0",
                  "--processes", "1")  # app code in a worker process
    assert "Swarm of 3 volunteers (honest 67%, flaky 33%)" in table
    assert "no work left" in table
    assert "total" in table and "throughput" in table
    # A long bound: on a loaded machine the first "no tasks" can take seconds; the run
    # still ends one quiet second after it, and the reason says so.
    summary = json.loads(swarm("--url", server.url, "--volunteers", "1", "--duration", "60",
                               "--idle-stop", "1", "--json"))
    assert summary["stopped_because"] == "no work left"
    assert summary["total"]["accepted"] == 0  # the first run did all the work


def test_no_server_is_a_clear_error():
    with pytest.raises(CommandError, match="No Spare Cycles server at http://127.0.0.1:"):
        swarm("--url", f"http://127.0.0.1:{free_port()}", "--duration", "5")


@pytest.mark.parametrize(("args", "message"), [
    (["--mix", "honest=0.7,cheatr=0.3"], "Unknown behaviour 'cheatr'"),
    (["--mix", "honest:1"], "Unknown behaviour 'honest:1'"),
    (["--url", "http://example.org"], "not a loopback address"),
    (["--volunteers", "0"], "at least 1"),
    (["--flaky-p", "3"], "between 0 and 1"),
])
def test_bad_arguments_are_clear_errors(args, message):
    with pytest.raises(CommandError, match=message):
        swarm(*args)
