"""python manage.py serve [--workers N] [--host H] [--port P]: the scale-out mode on one machine.

Binds the listening socket once and hands it to N daphne processes (the kernel
spreads connections across them), and runs one housekeeping process and one
validator process (the workers store results; the validator validates them). Several
processes need the Redis channel layer (REDIS_URL) so that pushes (cancel,
stats, leaderboards) reach a device on any process; PostgreSQL (DATABASE_URL)
is strongly advised. Behind a load balancer, use deploy/nginx.conf instead
of the shared socket and start daphne per port.

Forwarded headers: daphne runs without --proxy-headers; the app (web/forwarded.py)
believes X-Forwarded-For / X-Forwarded-Proto only from the addresses in TRUSTED_PROXIES.
Facing clients directly, leave it empty. Behind nginx on this machine, set
TRUSTED_PROXIES=127.0.0.1 (nginx's address as daphne sees it); nginx must then set
X-Forwarded-For itself (deploy/nginx.conf), or every client would share nginx's address.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sparecycles.secret_key import serving_refusal

# No --proxy-headers: daphne would believe X-Forwarded-For from anyone (see above).
DAPHNE_FLAGS = ["--websocket-max-message-size", "1048576"]
# uvicorn (optional: `pip install uvicorn[standard]`), the same rules: frames over 1 MiB
# close with 1009, forwarded headers are the app's business (--no-proxy-headers).
UVICORN_FLAGS = ["--ws-max-size", "1048576", "--no-proxy-headers", "--lifespan", "off",
                 "--no-access-log", "--log-level", "warning"]
SERVERS = {"daphne": ["-m", "daphne", *DAPHNE_FLAGS],
           "uvicorn": ["-m", "uvicorn", *UVICORN_FLAGS]}


class Command(BaseCommand):
    help = "Serve with N daphne workers sharing one port, plus a housekeeping process."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--server", choices=sorted(SERVERS), default="daphne",
                            help="The ASGI server each worker runs (default daphne; "
                                 "docs/performance.md compares them).")
        parser.add_argument("--no-housekeeping", action="store_true",
                            help="Don't start the housekeeping process.")
        parser.add_argument("--no-validator", action="store_true",
                            help="Validate in the workers instead of a validator process.")

    def handle(self, *args, workers, host, port, server, no_housekeeping, no_validator,
               **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        if server != "daphne":
            try:
                __import__(server)
            except ImportError:
                raise CommandError(f"--server {server}: install it first "
                                   f"(pip install {server}).") from None
        refusal = serving_refusal(debug=settings.DEBUG)
        if refusal:  # the workers would each refuse; say it once, before binding anything
            raise CommandError(f"Spare Cycles cannot start: {refusal}")
        if workers > 1 and not settings.REDIS_URL:
            raise CommandError("Several workers need REDIS_URL (the Redis channel layer).")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host, port))
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
        listener.listen(4096)
        listener.set_inheritable(True)
        env = {**os.environ, "PYTHONPATH": str(settings.BASE_DIR / "platform"),
               # One housekeeping process below, not one thread per worker.
               "SPARECYCLES_EMBEDDED_HOUSEKEEPING": "true" if no_housekeeping and workers == 1
               else "false",
               # Validation's CPU in a process of its own, off the sockets' processes.
               "SPARECYCLES_VALIDATE_IN_WEB": "true" if no_validator else "false"}
        def start_worker() -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, *SERVERS[server], "--fd", str(listener.fileno()),
                 "sparecycles.asgi:application"],
                env=env, pass_fds=[listener.fileno()], cwd=settings.BASE_DIR)

        def start_housekeeping() -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "manage.py", "housekeeping"], env=env,
                                    cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL)

        def start_validator() -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "manage.py", "validator"], env=env,
                                    cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL)

        # Each child with the function that restarts it: a crashed worker (even kill -9)
        # is replaced, the others keep serving; the shared socket never closes.
        children = [(start_worker(), start_worker) for _ in range(workers)]
        if not no_housekeeping:
            children.append((start_housekeeping(), start_housekeeping))
        if not no_validator:
            children.append((start_validator(), start_validator))
        extras = [name for name, off in (("housekeeping", no_housekeeping),
                                         ("a validator", no_validator)) if not off]
        self.stdout.write(f"Serving http://{host}:{port}/ with {workers} {server} workers"
                          f"{' and ' + ' and '.join(extras) if extras else ''} (Ctrl-C stops).")
        self.stdout.flush()
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping:
                for index, (child, restart) in enumerate(children):
                    if child.poll() is not None and not stopping:
                        self.stderr.write(f"Process {child.pid} exited ({child.returncode}); "
                                          "restarting it.")
                        time.sleep(0.5)  # don't spin if it dies at once
                        children[index] = (restart(), restart)
                time.sleep(0.2)
        finally:
            for child, _ in children:
                if child.poll() is None:
                    child.terminate()
            deadline = time.monotonic() + 10
            for child, _ in children:
                try:
                    child.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
            listener.close()
