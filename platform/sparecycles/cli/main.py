"""`sparecycles`: the project owners' command line, a client of the REST API (/api/v1/).

Standard library only (urllib), so it runs wherever Python 3.11+ does, without Django.

    sparecycles login --url https://grid.example.org --username alice
    sparecycles submit inputs.jsonl --app mandelbrot --name "first tiles" --watch
    sparecycles status 12
    sparecycles watch 12
    sparecycles results 12 --format csv -o results.csv
    sparecycles abort 12 / retire 12 / pause 12 / resume 12

The server URL and token come from --url/--token, else SPARECYCLES_URL /
SPARECYCLES_TOKEN, else the config file written by `login`
($SPARECYCLES_CONFIG, default ~/.config/sparecycles/config.json, mode 0600).

Exit codes: 0 success; 1 an error (the server's message is printed); 2 bad usage;
3 `watch` saw the batch finish with failed or cancelled work units.
"""

import argparse
import getpass
import json
import mimetypes
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

USER_AGENT = "sparecycles-cli/1"
TIMEOUT_S = 300        # a 100,000-line upload is checked and inserted within the request
CHUNK = 256 * 1024
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
QUORUM = ["min_quorum", "target_nresults", "max_error_results", "max_total_results",
          "max_success_results", "delay_bound"]


class CliError(Exception):
    """Something the user should read; printed without a traceback."""

    def __init__(self, message: str, details: list[str] | None = None):
        super().__init__(message)
        self.details = details or []


# --- configuration ---------------------------------------------------------------------------

def config_path() -> Path:
    explicit = os.environ.get("SPARECYCLES_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "sparecycles" / "config.json"


def config_read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"Can't read the config file {path}: {exc}. Fix or delete it, then "
                       "run `sparecycles login` again.") from None
    return data if isinstance(data, dict) else {}


def config_write(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(temporary, path)


@dataclass
class Settings:
    url: str
    token: str
    source: str  # where the token came from, for `config`


def settings_resolve(args) -> Settings:
    stored = config_read(config_path())
    url = args.url or os.environ.get("SPARECYCLES_URL") or stored.get("url") or ""
    if args.token:
        token, source = args.token, "--token"
    elif os.environ.get("SPARECYCLES_TOKEN"):
        token, source = os.environ["SPARECYCLES_TOKEN"], "SPARECYCLES_TOKEN"
    else:
        token, source = stored.get("token", ""), str(config_path())
    return Settings(url=url.rstrip("/"), token=token, source=source if token else "")


# --- HTTP --------------------------------------------------------------------------------------

class Api:
    """A thin JSON client for /api/v1/ with token auth."""

    def __init__(self, url: str, token: str = ""):
        if not url:
            raise CliError("No server URL: pass --url, set SPARECYCLES_URL, or run "
                           "`sparecycles login --url URL`.")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CliError(f"{url!r} is not an http(s) URL, e.g. https://grid.example.org.")
        self.url = url.rstrip("/")
        self.token = token
        handlers = [urllib.request.ProxyHandler({})] if parts.hostname in LOCAL_HOSTS else []
        self.opener = urllib.request.build_opener(*handlers)

    def _request(self, method: str, path: str, *, body: bytes | None = None,
                 content_type: str | None = None, auth: bool = True):
        url = path if path.startswith("http") else f"{self.url}/api/v1/{path.lstrip('/')}"
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("User-Agent", USER_AGENT)
        request.add_header("Accept", "application/json")
        if content_type:
            request.add_header("Content-Type", content_type)
        if auth:
            if not self.token:
                raise CliError("Not logged in: run `sparecycles login`, or set "
                               "SPARECYCLES_TOKEN.")
            request.add_header("Authorization", f"Token {self.token}")
        try:
            return self.opener.open(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except urllib.error.URLError as exc:
            raise CliError(f"Can't reach {self.url}: {exc.reason}.") from None
        except TimeoutError:
            raise CliError(f"{self.url} did not answer within {TIMEOUT_S} s.") from None

    @staticmethod
    def _http_error(exc: urllib.error.HTTPError) -> CliError:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        details: list[str] = []
        if isinstance(body, dict):
            message = body.get("detail")
            details = [str(e) for e in body.get("errors", [])]
            if message is None:  # field errors: {"field": ["message"]}
                for field, problems in body.items():
                    problems = problems if isinstance(problems, list) else [problems]
                    details += [f"{field}: {p}" for p in problems]
                message = "The server refused the request"
        else:
            message = "The server refused the request"
        hint = {401: " Run `sparecycles login` (the token may have been revoked).",
                429: " Too many requests: wait a minute and try again."}.get(exc.code, "")
        if details == [message]:
            details = []
        return CliError(f"HTTP {exc.code}: {message}.{hint}".replace("..", "."), details)

    def json(self, method: str, path: str, payload: dict | None = None, *, auth: bool = True):
        body = json.dumps(payload).encode() if payload is not None else None
        with self._request(method, path, body=body, auth=auth,
                           content_type="application/json" if body is not None else None
                           ) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def multipart(self, path: str, fields: dict[str, Any], files: dict[str, Path]):
        boundary = f"----sparecycles{uuid.uuid4().hex}"
        parts: list[bytes] = []
        for name, value in fields.items():
            if value is None:
                continue
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                         f"\r\n\r\n{value}\r\n".encode())
        for name, file in files.items():
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            quoted = file.name.replace('"', "%22")
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                         f'filename="{quoted}"\r\nContent-Type: {kind}\r\n\r\n'.encode())
            try:
                parts.append(file.read_bytes())
            except OSError as exc:
                raise CliError(f"Can't read {file}: {exc.strerror}.") from None
            parts.append(b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        with self._request("POST", path, body=b"".join(parts),
                           content_type=f"multipart/form-data; boundary={boundary}") as response:
            return json.loads(response.read())

    def download(self, path: str, out: BinaryIO) -> int:
        written = 0
        with self._request("GET", path) as response:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                written += len(chunk)
        return written


# --- progress ---------------------------------------------------------------------------------

def progress_line(batch: dict, width: int = 30) -> str:
    counts = batch["counts"]
    total = counts["total"] or 1
    done = counts["completed"] + counts["failed"] + counts["cancelled"]
    filled = round(width * done / total)
    bar = "#" * filled + "." * (width - filled)
    extra = "".join(f", {counts[k]} {k}" for k in ("failed", "cancelled") if counts[k])
    return (f"[{bar}] {100 * done / total:5.1f}%  {counts['completed']}/{counts['total']} "
            f"completed{extra}  ({state_of(batch)})")


def state_of(batch: dict) -> str:
    """The state owners read (the API's status.state: a finished batch is "completed")."""
    return (batch.get("status") or {}).get("state") or batch["state"]


def finished(batch: dict) -> bool:
    return batch["counts"]["open"] == 0 or batch["state"] in ("aborted", "retired")


def describe(batch: dict) -> str:
    lines = [f"Batch {batch['id']} “{batch['name']}” — {batch['app']} v{batch['version']} "
             f"({batch['runtime']}), {state_of(batch)}", progress_line(batch)]
    status = batch.get("status") or {}
    lines += [f"- {row['text']}" for row in status.get("explanations", [])]
    lines += [f"warning: {row['text']}" for row in status.get("warnings", [])]
    replicas = status.get("replicas")
    if replicas:
        lines.append(f"tasks out now: {replicas['in_progress']}; replica errors: "
                     f"{replicas['errors']}, timed out: {replicas['timed_out']}, "
                     f"invalid: {replicas['invalid']}")
    for row in status.get("failure_reasons", []):
        lines.append(f"  {row['count']} failed: {row['reason']}")
    for row in status.get("replica_errors", []):
        lines.append(f"  {row['count']} errors: {row['error']}")
    return "\n".join(lines)


# --- commands ---------------------------------------------------------------------------------

def cmd_login(args, settings: Settings) -> int:
    url = (args.url or settings.url or "").rstrip("/")
    username = args.username or input("Username: ")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
    api = Api(url)
    answer = api.json("POST", "auth/token/", {"username": username, "password": password},
                      auth=False)
    path = config_path()
    config_write(path, {"url": url, "token": answer["token"]})
    print(f"Logged in to {url} as {answer['username']}; token saved in {path}.")
    return 0


def cmd_logout(args, settings: Settings) -> int:
    Api(settings.url, settings.token).json("DELETE", "auth/token/")
    path = config_path()
    stored = config_read(path)
    if stored.pop("token", None) is not None:
        config_write(path, stored)
    print("Logged out: the token is revoked.")
    return 0


def cmd_config(args, settings: Settings) -> int:
    masked = f"{settings.token[:4]}…{settings.token[-4:]}" if settings.token else "(none)"
    print(f"url:    {settings.url or '(none)'}")
    print(f"token:  {masked}" + (f"  from {settings.source}" if settings.token else ""))
    print(f"config: {config_path()}")
    return 0


def cmd_apps(args, settings: Settings) -> int:
    api = Api(settings.url, settings.token)
    for app in _all_pages(api, "apps/"):
        print(f"{app['name']:20} v{app['latest_version'] or '-':<4} {app['validator']:10} "
              f"{app['project']:20} {app['title']}")
    return 0


def cmd_batches(args, settings: Settings) -> int:
    api = Api(settings.url, settings.token)
    query = urllib.parse.urlencode({k: v for k, v in (("app", args.app), ("state", args.state))
                                    if v})
    for batch in _all_pages(api, f"batches/?{query}"):
        print(f"{batch['id']:>6}  {batch['state']:8} {batch['app']:16} "
              f"{progress_line(batch, width=20)}  {batch['name']}")
    return 0


def _all_pages(api: Api, path: str):
    page = api.json("GET", path)
    while True:
        yield from page["results"]
        if not page.get("next"):
            return
        page = api.json("GET", page["next"])


def cmd_submit(args, settings: Settings) -> int:
    file = Path(args.file)
    if not file.is_file():
        raise CliError(f"{file} is not a file.")
    fields = {"app": args.app, "version": args.version, "name": args.name or file.name,
              "format": args.format}
    fields.update({name: getattr(args, name) for name in QUORUM})
    api = Api(settings.url, settings.token)
    started = time.monotonic()
    batch = api.multipart("batches/", fields, {"file": file})
    print(f"Submitted batch {batch['id']} with {batch['counts']['total']} work units "
          f"({time.monotonic() - started:.1f} s).")
    if args.watch:
        return _watch(api, batch["id"], interval=args.interval, timeout=None)
    return 0


def cmd_status(args, settings: Settings) -> int:
    batch = Api(settings.url, settings.token).json("GET", f"batches/{args.batch}/")
    print(json.dumps(batch, indent=2) if args.json else describe(batch))
    return 0


def _watch(api: Api, batch_id: int, *, interval: float, timeout: float | None) -> int:
    tty = sys.stdout.isatty()
    deadline = time.monotonic() + timeout if timeout else None
    last = ""
    while True:
        batch = api.json("GET", f"batches/{batch_id}/")
        line = progress_line(batch)
        if tty:
            columns = shutil.get_terminal_size((100, 20)).columns
            sys.stdout.write("\r" + line[:columns - 1].ljust(columns - 1))
            sys.stdout.flush()
        elif line != last:
            print(line, flush=True)
        last = line
        if finished(batch):
            if tty:
                sys.stdout.write("\n")
            counts = batch["counts"]
            print(f"Finished: {counts['completed']} completed, {counts['failed']} failed, "
                  f"{counts['cancelled']} cancelled.")
            return 0 if counts["failed"] == counts["cancelled"] == 0 else 3
        if deadline and time.monotonic() > deadline:
            if tty:
                sys.stdout.write("\n")
            raise CliError(f"Batch {batch_id} is still running after {timeout:g} s.")
        time.sleep(interval)


def cmd_watch(args, settings: Settings) -> int:
    return _watch(Api(settings.url, settings.token), args.batch, interval=args.interval,
                  timeout=args.timeout)


def cmd_results(args, settings: Settings) -> int:
    api = Api(settings.url, settings.token)
    path = f"batches/{args.batch}/results.{args.format}"
    if args.output in (None, "-"):
        api.download(path, sys.stdout.buffer)
        sys.stdout.flush()
        return 0
    target = Path(args.output)
    temporary = target.with_name(f".{target.name}.part")
    try:
        with temporary.open("wb") as out:
            size = api.download(path, out)
        os.replace(temporary, target)
    except OSError as exc:
        raise CliError(f"Can't write {target}: {exc.strerror}.") from None
    finally:
        temporary.unlink(missing_ok=True)
    print(f"Wrote {size:,} bytes of {args.format.upper()} results to {target}.",
          file=sys.stderr)
    return 0


def _lifecycle(action: str):
    def command(args, settings: Settings) -> int:
        batch = Api(settings.url, settings.token).json("POST", f"batches/{args.batch}/{action}/")
        print(describe(batch))
        return 0
    return command


# --- argument parsing -------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="sparecycles", description=(
        "Submit work to a Spare Cycles server, watch it and download the results."))
    top.add_argument("--url", help="Server URL (else SPARECYCLES_URL, else the config file).")
    top.add_argument("--token", help="API token (else SPARECYCLES_TOKEN, else the config file).")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def batch_arg(p):
        p.add_argument("batch", type=int, help="Batch id.")

    login = commands.add_parser("login", help="Get a token with your username and password.")
    login.add_argument("--username", "-u")
    login.add_argument("--password-stdin", action="store_true",
                       help="Read the password from standard input instead of prompting.")
    login.set_defaults(run=cmd_login)
    commands.add_parser("logout", help="Revoke your token.").set_defaults(run=cmd_logout)
    commands.add_parser("config", help="Show the URL and token in use.").set_defaults(
        run=cmd_config)
    commands.add_parser("apps", help="List your apps.").set_defaults(run=cmd_apps)
    batches = commands.add_parser("batches", help="List your batches.")
    batches.add_argument("--app")
    batches.add_argument("--state", choices=["open", "paused", "aborted", "retired"])
    batches.set_defaults(run=cmd_batches)

    submit = commands.add_parser("submit", help="Submit a JSONL or CSV file as a batch.")
    submit.add_argument("file", help="JSONL (one JSON object per line) or CSV (header row).")
    submit.add_argument("--app", required=True, help="App name.")
    submit.add_argument("--version", type=int, help="App version (default: the latest).")
    submit.add_argument("--name", help="Batch name (default: the file name).")
    submit.add_argument("--format", choices=["jsonl", "csv"],
                        help="Default: from the file name (.csv is CSV).")
    for name in QUORUM:
        submit.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int,
                            help="Seconds a volunteer has." if name == "delay_bound" else None)
    submit.add_argument("--watch", action="store_true", help="Then watch it to the end.")
    submit.add_argument("--interval", type=float, default=2.0)
    submit.set_defaults(run=cmd_submit)

    status = commands.add_parser("status", help="Progress and failures of a batch.")
    batch_arg(status)
    status.add_argument("--json", action="store_true", help="The API's answer as JSON.")
    status.set_defaults(run=cmd_status)

    watch = commands.add_parser("watch", help="A progress bar until the batch is finished.")
    batch_arg(watch)
    watch.add_argument("--interval", type=float, default=2.0, help="Seconds between polls.")
    watch.add_argument("--timeout", type=float, help="Give up after this many seconds.")
    watch.set_defaults(run=cmd_watch)

    results = commands.add_parser("results", help="Download the validated results.")
    batch_arg(results)
    results.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    results.add_argument("-o", "--output", help="File to write (default: standard output).")
    results.set_defaults(run=cmd_results)

    for action, text in (("pause", "Stop handing out a batch's tasks."),
                         ("resume", "Hand out a paused batch's tasks again."),
                         ("abort", "Cancel a batch's unfinished work units."),
                         ("retire", "Cancel what is left of a batch and close it.")):
        sub = commands.add_parser(action, help=text)
        batch_arg(sub)
        sub.set_defaults(run=_lifecycle(action))
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args, settings_resolve(args))
    except CliError as exc:
        print(f"sparecycles: {exc}", file=sys.stderr)
        for line in exc.details:
            print(f"  {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
