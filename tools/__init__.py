"""Developer tools that run from the repository checkout, never as part of the site.

`bench` (the platform benchmark, `manage.py bench_platform`) and `swarm` (simulated
volunteers, `manage.py swarm`) are Django apps only so that their management commands
are found. settings.py installs them only when SPARECYCLES_TOOLS is on (default: DEBUG,
or under pytest); the wheel (pyproject: packages `sparecycles*` under platform/) does
not contain them, and a production site does not install them.
"""
