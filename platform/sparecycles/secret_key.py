"""The secret key: SECRET_KEY or SECRET_KEY_FILE, else a development key; no server runs
on the development key unless told to.

The development key is random per checkout (never a key everyone knows), kept in
var/development-secret-key with mode 0600, and starts with Django's "django-insecure-" so
that `manage.py check --deploy` flags it. Commands that sign nothing a visitor holds
(migrate, load_workunits, housekeeping, tests) may use it. A server may not, unless the key
is configured: with DEBUG off and neither SECRET_KEY nor SECRET_KEY_FILE set, asgi.py and
`manage.py serve` refuse to start with one line. `make run` passes SECRET_KEY_FILE pointing
at the development key on purpose, so a fresh checkout serves with no setup. HTTPS=true
(production) refuses a django-insecure- key in every process (settings.py).

No Django imports: settings.py uses this before Django is set up.
"""

import os
import secrets
import string
from collections.abc import Mapping
from pathlib import Path

INSECURE_PREFIX = "django-insecure-"  # what Django's own check (security.W009) looks for
DEVELOPMENT_KEY_NAME = "development-secret-key"
_ALPHABET = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"


class SecretKeyError(SystemExit):
    """Ends the process with one line on stderr (SystemExit prints its message, no traceback).
    settings.py uses it for the other settings a server cannot start without, too."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Spare Cycles cannot start: {message}")


def key_configured(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(environ.get("SECRET_KEY") or environ.get("SECRET_KEY_FILE"))


def configured_key(environ: Mapping[str, str] = os.environ) -> str:
    """SECRET_KEY_FILE's content, else SECRET_KEY, else ""."""
    path = environ.get("SECRET_KEY_FILE")
    if path:
        try:
            key = Path(path).read_text().strip()
        except OSError as exc:
            raise SecretKeyError(f"SECRET_KEY_FILE={path} cannot be read ({exc.strerror}).") \
                from None
        if not key:
            raise SecretKeyError(f"SECRET_KEY_FILE={path} is empty.")
        return key
    return environ.get("SECRET_KEY", "")


def development_key_path(var_dir: Path) -> Path:
    return Path(var_dir) / DEVELOPMENT_KEY_NAME


def development_key(var_dir: Path) -> str:
    """This checkout's development key, made on first use (mode 0600, atomically: several
    processes may start at once and must all end up with the same key)."""
    path = development_key_path(var_dir)
    try:
        key = path.read_text().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    key = INSECURE_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(50))
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(key + "\n")
        try:
            os.link(draft, path)  # fails if another process got there first: use theirs
        except FileExistsError:
            pass
    finally:
        draft.unlink(missing_ok=True)
    return path.read_text().strip()


def serving_refusal(*, debug: bool, environ: Mapping[str, str] = os.environ) -> str | None:
    """Why a server must not start (None if it may)."""
    if debug or key_configured(environ):
        return None
    return ("set SECRET_KEY or SECRET_KEY_FILE (DEBUG is off, and a server never runs on "
            "the development key unless told to; `make run` does that for you).")


def refuse_to_serve_without_key(*, debug: bool) -> None:
    refusal = serving_refusal(debug=debug)
    if refusal:
        raise SecretKeyError(refusal)


def development_key_environ(environ: Mapping[str, str], var_dir: Path) -> dict[str, str]:
    """`environ` for a server the caller starts for itself (a benchmark's or a test's own
    daphne): the configured key if any, else SECRET_KEY_FILE naming the development key."""
    if key_configured(environ):
        return dict(environ)
    development_key(var_dir)
    return {**environ, "SECRET_KEY_FILE": str(development_key_path(var_dir))}
