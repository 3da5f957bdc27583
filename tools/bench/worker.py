"""python -m tools.bench.worker ACTION [options]: one database job, answered as JSON.

The benchmark and the chaos tests run every step that touches their throwaway
database through this, in a child process whose environment (DATABASE_URL,
SPARECYCLES_VAR_DIR, ...) points at it. The last line of stdout is the JSON answer.

    work     --open-units N            top the bench app's open work up to N units
    counts   --windows JSON            validated/completed/received in each [since, until]
    ceiling  --devices N --seconds S   the service loop (see ceiling.py)
    profile  --devices N --seconds S   the same loop under cProfile, queries captured
    audit    [--acked FILE] [--batch ID ...] [--close-epochs]
"""

import argparse
import datetime as dt
import json
import os
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.worker")
    actions = parser.add_subparsers(dest="action", required=True)
    work = actions.add_parser("work")
    work.add_argument("--open-units", type=int, required=True)
    work.add_argument("--quorum", type=int, default=2)
    counts = actions.add_parser("counts")
    counts.add_argument("--windows", required=True,
                        help='a JSON list of [since, until] ISO 8601 pairs')
    for name in ("ceiling", "profile"):
        loop = actions.add_parser(name)
        loop.add_argument("--devices", type=int, default=100)
        loop.add_argument("--seconds", type=float, default=10.0)
    audit = actions.add_parser("audit")
    audit.add_argument("--acked", help="a file of acknowledged task ids, one a line")
    audit.add_argument("--batch", type=int, action="append", default=[])
    audit.add_argument("--close-epochs", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparecycles.settings")
    import django

    django.setup()
    from . import ceiling
    from . import work as bench_work

    if args.action == "work":
        quorum = bench_work.QUORUM_2
        if args.quorum != 2:
            from sparecycles.projects.services import QuorumParams

            quorum = QuorumParams(min_quorum=args.quorum, target_nresults=args.quorum,
                                  max_error_results=3, max_total_results=6,
                                  max_success_results=4, delay_bound=3600)
        answer = bench_work.work_ensure(open_units=args.open_units, quorum=quorum)
    elif args.action == "counts":
        answer = [bench_work.window_counts(since=dt.datetime.fromisoformat(since),
                                           until=dt.datetime.fromisoformat(until))
                  for since, until in json.loads(args.windows)]
    elif args.action == "ceiling":
        answer = ceiling.ceiling_run(devices=args.devices, seconds=args.seconds)
    elif args.action == "profile":
        answer = ceiling.profile_run(devices=args.devices, seconds=args.seconds)
    else:
        acked: list[str] = []
        if args.acked:
            with open(args.acked) as lines:
                acked = [line.strip() for line in lines if line.strip()]
        answer = bench_work.audit(acked_task_ids=acked, batch_ids=args.batch,
                                  close_epochs=args.close_epochs)
    sys.stdout.write("\n" + json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
