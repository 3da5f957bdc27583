"""The simulated-volunteer swarm: real WebSocket clients of a running server.

Each simulated volunteer is its own device speaking PROTOCOL.md v1 and running
an app's main.py natively, honestly or not (see behaviours.py). The runner
drives N of them at once; `manage.py swarm` prints what happened. It is the
engine of the integration tests and the load generator for benchmarks.

Nothing here touches the database: the swarm is a pure client of a server.
"""
