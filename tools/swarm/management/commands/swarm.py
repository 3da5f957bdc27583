"""python manage.py swarm --url http://127.0.0.1:8000 --volunteers 20 \
       --mix honest=0.7,cheater=0.2,flaky=0.1 --duration 60 [--seed 1] [--json]

Starts simulated volunteers against a running server and prints throughput and
outcome counts. A pure client: it needs no database.
"""

from django.core.management.base import BaseCommand, CommandError

from tools.swarm.behaviours import BEHAVIOURS, BehaviourOptions
from tools.swarm.client import SwarmError
from tools.swarm.runner import SwarmConfig, parse_mix, summary_table, swarm_run


class Command(BaseCommand):
    help = ("Start N simulated volunteers (real WebSocket clients running each app's main.py "
            "natively) against a running server; print throughput and outcome counts.")
    requires_system_checks: list = []  # a pure client: no models, no database
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000",
                            help="The server (loopback only). Default: %(default)s.")
        parser.add_argument("--volunteers", type=int, default=10,
                            help="Simulated volunteers, one device each. Default: %(default)s.")
        parser.add_argument("--mix", default="honest=1",
                            help=f"Behaviour weights, e.g. honest=0.7,cheater=0.2,flaky=0.1; "
                                 f"behaviours: {', '.join(BEHAVIOURS)}. Default: %(default)s.")
        parser.add_argument("--duration", type=float, default=60.0,
                            help="Stop after this many seconds at most. Default: %(default)s.")
        parser.add_argument("--idle-stop", type=float, default=3.0, metavar="SECONDS",
                            help="Stop early once no work was left for this long; 0 runs the "
                                 "whole duration. Default: %(default)s.")
        parser.add_argument("--seed", type=int, help="Seed for a repeatable behaviour mix.")
        parser.add_argument("--flaky-p", type=float, default=BehaviourOptions.flaky_error_p,
                            help="Chance a flaky volunteer reports an error. Default: %(default)s.")
        parser.add_argument("--slow-overrun", type=float,
                            default=BehaviourOptions.slow_overrun_s, metavar="SECONDS",
                            help="Slow volunteers answer this long after the deadline. "
                                 "Default: %(default)s.")
        parser.add_argument("--vanish-return-p", type=float,
                            default=BehaviourOptions.vanish_return_p,
                            help="Chance a vanishing volunteer comes back. Default: %(default)s.")
        parser.add_argument("--think", type=float, default=BehaviourOptions.think_s,
                            metavar="SECONDS",
                            help="Honest volunteers take about this long per task (paces the "
                                 "load). Default: %(default)s.")
        parser.add_argument("--duplicate-p", type=float, default=0.0,
                            help="Chance each acked result is sent again (must come back "
                                 "duplicate). Default: %(default)s.")
        parser.add_argument("--processes", type=int, default=0,
                            help="Run app code in N worker processes (true parallelism) instead "
                                 "of one thread. Default: %(default)s.")
        parser.add_argument("--v1-frames", action="store_true",
                            help="Speak plain protocol v1 (a request per fetch, a result frame "
                                 "per result) even when the server offers the batch extension.")
        parser.add_argument("--json", action="store_true",
                            help="Print the summary as JSON instead of a table.")

    def handle(self, *args, url, volunteers, mix, duration, idle_stop, seed, flaky_p,
               slow_overrun, vanish_return_p, think, duplicate_p, processes, json, v1_frames,
               **options):
        try:
            config = SwarmConfig(
                url=url, volunteers=volunteers, mix=parse_mix(mix), duration_s=duration,
                idle_stop_s=idle_stop or None, seed=seed, duplicate_p=duplicate_p,
                processes=processes, **({"v1_frames": True} if v1_frames else {}),
                options=BehaviourOptions(flaky_error_p=flaky_p, slow_overrun_s=slow_overrun,
                                         vanish_return_p=vanish_return_p, think_s=think),
            )
            summary = swarm_run(config)
        except SwarmError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            raise CommandError("Interrupted; no summary.") from None
        self.stdout.write(summary.as_json() if json else summary_table(summary))
        if summary.total.accepted == 0 and summary.total.results_sent == 0:
            self.stderr.write("No task was handed out: is there open work? Load some with "
                              "`manage.py load_workunits primes --count 40`.")
