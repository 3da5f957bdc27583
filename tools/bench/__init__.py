"""Platform benchmarks: the swarm against a live server, next to its ceilings.

`manage.py bench_platform` builds a throwaway world per run mode (a SQLite file
for the embedded default; a fresh PostgreSQL database and a Redis prefix for
scale-out), loads a trivial quorum-2 app so the volunteers' own computing is
not the bottleneck, starts the real server, holds 100 to 10,000 WebSocket
volunteers against it (a bounded number computing, the rest idle), and
measures throughput, latency and the server's CPU and memory. Beside that it
measures two ceilings on the same kind of database: a bare-echo consumer (the
transport alone) and a loop calling the scheduler's services in-process (the
database work alone). docs/performance.md is its output.

The orchestrating process never opens the bench database itself: everything
that touches it runs in a child (`python -m tools.bench.worker`), so one
run can measure both modes, whatever DATABASE_URL says.
"""
