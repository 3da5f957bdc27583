"""The sandbox that runs project owners' custom validators (docs/sandbox.md).

Owner code never runs in a server process: it runs in Pyodide under Node, in a
separate process with an empty environment, no network, a read-only view of the
runtime and nothing else, and CPU, wall-time and memory limits. The server talks
to it in JSON lines over stdin/stdout.
"""
