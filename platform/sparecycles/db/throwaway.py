"""A throwaway database for the benchmark commands: Django's test-database machinery under
a name no test run uses, so the configured database is never touched."""

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection


@contextmanager
def throwaway_database(log: Callable[[str], object], *, keep: bool = False) -> Iterator[str]:
    """Create a fresh, migrated database, point the connection at it, and yield its name;
    afterwards destroy it (unless `keep`) and point the connection back."""
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = (
        str(Path(settings.VAR_DIR) / f"bench-{os.getpid()}.sqlite3")
        if connection.vendor == "sqlite" else f"bench_{os.getpid()}_{old_name}"[:63])
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    log(f"Throwaway {connection.vendor} database: {name}")
    try:
        yield name
    finally:
        if keep:
            log(f"\nKept {name}.")
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)
