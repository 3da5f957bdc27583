"""Spare Cycles settings: one file, driven by environment variables.

Embedded default: SQLite under var/ and the in-memory channel layer, no
service needed. Scale-out: DATABASE_URL (PostgreSQL) and REDIS_URL
(channels_redis). Secrets come from the environment, or from NAME_FILE.
"""

import json
import os
import re
import sys
from pathlib import Path

import dj_database_url

from sparecycles import secret_key as secret_keys
from sparecycles.trusted_proxies import TrustedProxiesError, trusted_networks_parse

BASE_DIR = Path(__file__).resolve().parent.parent.parent  # the repository root
VAR_DIR = Path(os.environ.get("SPARECYCLES_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def envstr(name: str, default: str = "") -> str:
    """A string from NAME, or from the file named by NAME_FILE."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", False)
# SECRET_KEY / SECRET_KEY_FILE; else this checkout's random django-insecure- development key
# (var/, mode 0600), which commands may use but servers refuse unless told (secret_key.py).
SECRET_KEY = secret_keys.configured_key() or secret_keys.development_key(VAR_DIR)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
# Addresses/CIDR networks of the reverse proxies (nginx) whose X-Forwarded-For and
# X-Forwarded-Proto are believed (web/forwarded.py). Empty: no forwarded header is.
TRUSTED_PROXIES = envlist("TRUSTED_PROXIES", "")
try:
    trusted_networks_parse(TRUSTED_PROXIES)
except TrustedProxiesError as exc:  # one line, not a traceback from deep in daphne
    raise secret_keys.SecretKeyError(str(exc)) from None
SITE_NAME = envstr("SITE_NAME", "Spare Cycles")
# Owners' code runs in a sandboxed frame served from here (web/compute.py). Empty: this site
# serves it (still sandboxed, an opaque origin). In production a registrable domain of its
# own, e.g. https://compute.example-usercontent.org (add its host to ALLOWED_HOSTS), and
# SITE_ORIGIN the origin of the volunteer page that embeds it, e.g. https://example.org.
COMPUTE_ORIGIN = envstr("COMPUTE_ORIGIN", "").rstrip("/")
SITE_ORIGIN = envstr("SITE_ORIGIN", "").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "sparecycles.jobs",
    "sparecycles.projects",
    "sparecycles.owners",
    "sparecycles.volunteers",
    "sparecycles.scheduler",
    "sparecycles.validation",
    "sparecycles.credit",
    "sparecycles.leaderboards",
    "sparecycles.ledger",
    "sparecycles.accounts",
    "sparecycles.gateway",
    "sparecycles.web",
    "sparecycles.sandbox",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "sparecycles.api",
    "sparecycles.housekeeping",
]
# Developer tools (tools/ at the repository root: the benchmark and the swarm) are apps only
# so that `manage.py bench_platform` and `manage.py swarm` are found. A production site does
# not install them (nor does the wheel ship them): they are on only when SPARECYCLES_TOOLS
# says so, by default with DEBUG or under pytest. The debug-toolbar pattern.
TESTING = "pytest" in sys.modules
TOOLS = envbool("SPARECYCLES_TOOLS", DEBUG or TESTING)
if TOOLS:
    INSTALLED_APPS += ["tools.bench", "tools.swarm"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "sparecycles.web.middleware.ContentSecurityPolicyMiddleware",
    "sparecycles.web.middleware.ComputeOriginMiddleware",
    "sparecycles.web.static_delivery.StaticDeliveryMiddleware",   # WhiteNoise
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "sparecycles.volunteers.login_throttle.LoginThrottleStatusMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sparecycles.urls"
ASGI_APPLICATION = "sparecycles.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "sparecycles.web.context_processors.site",
            ],
        },
    },
]

# --- database -------------------------------------------------------------
DATABASE_URL = envstr("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        # Persistent, like PostgreSQL's: each hop to an ORM thread used to open a connection
        # (and run the PRAGMAs below) and close it again.
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "sparecycles.sqlite3",
                    "CONN_MAX_AGE": 60}
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at
        # BEGIN so two writers queue instead of failing with "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    })
    # A file, not :memory:, so a daphne process started by a browser test sees it; one per
    # test run, so concurrent runs on one machine don't share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- channel layer ----------------------------------------------------------
REDIS_URL = envstr("REDIS_URL")
if REDIS_URL:
    from sparecycles.redis_connection import channel_layer_host

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's default 5-s read timeout equals channels_redis's blocking-pop timeout,
            # so a quiet consumer would crash every few seconds: give reads more room.
            # Cancellable connections: a closed socket's consumer must be able to stop.
            "CONFIG": {"hosts": [channel_layer_host(REDIS_URL, socket_timeout=30)],
                       "prefix": envstr("REDIS_PREFIX", "sparecycles")},
        }
    }
else:
    # Channels' in-memory layer, without its O(connections) sweep per message.
    CHANNEL_LAYERS = {"default": {
        "BACKEND": "sparecycles.gateway.layers.SweepingInMemoryChannelLayer"}}

# --- cache: the throttles' counters (login, the API's, the volunteer socket's) --------------
# One Redis for every process in scale-out, so a limit holds across them; local memory in the
# one-process embedded mode. Its own key prefix, apart from the channel layer's keys.
if REDIS_URL:
    CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{envstr('REDIS_PREFIX', 'sparecycles')}:cache",
    }}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                          "LOCATION": "sparecycles"}}

# --- static files -----------------------------------------------------------
STATIC_URL = "/static/"
# Filled by collectstatic in production (and `make run`); the tests use an empty one.
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(exist_ok=True)
PYODIDE_DIR = BASE_DIR / "node_modules" / "pyodide"
# The runtime is served under its version, so browsers may cache it for good.
PYODIDE_VERSION = json.loads((PYODIDE_DIR / "package.json").read_text())["version"] if (
    PYODIDE_DIR / "package.json").exists() else "missing"
PYODIDE_URL = f"{STATIC_URL}pyodide/{PYODIDE_VERSION}/"
STATICFILES_DIRS = [BASE_DIR / "static", (f"pyodide/{PYODIDE_VERSION}", PYODIDE_DIR)]
WHITENOISE_USE_FINDERS = True  # serve straight from STATICFILES_DIRS without collectstatic
WHITENOISE_AUTOREFRESH = DEBUG
_HASHED_NAME = re.compile(r"\.[0-9a-f]{12}\.[A-Za-z0-9]+$")  # what collectstatic names the shell


def WHITENOISE_IMMUTABLE_FILE_TEST(path: str, url: str) -> bool:  # noqa: N802 (setting name)
    # Cached for a year: the versioned runtime, and shell files under content-hashed names.
    return url.startswith(PYODIDE_URL) or bool(_HASHED_NAME.search(url))


WHITENOISE_MIMETYPES = {
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
    ".zip": "application/zip",
    ".json": "application/json",
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # collectstatic: hashed shell names, .gz/.br beside every file that shrinks
    # (web/static_delivery.py); without a fresh collected manifest names stay plain.
    "staticfiles": {"BACKEND": "sparecycles.web.static_delivery.ShellStaticStorage"},
}

# --- auth, i18n ----------------------------------------------------------------
# Django's ModelBackend with the login throttle in front: it refuses every password check
# while a username or address is locked (volunteers/login_throttle.py), whichever login asked.
AUTHENTICATION_BACKENDS = ["sparecycles.volunteers.login_throttle.LoginThrottleBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# --- email: verification links and password resets (accounts/emails.py) ----------------
# The console backend by default (messages are printed); SMTP once EMAIL_HOST is set.
# EMAIL_BACKEND overrides both, e.g. the file backend writing to EMAIL_FILE_PATH.
EMAIL_HOST = envstr("EMAIL_HOST", "")
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "") or (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend")
EMAIL_PORT = envint("EMAIL_PORT", 587)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)  # implicit TLS (port 465)
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", not EMAIL_USE_SSL)  # STARTTLS (port 587)
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
EMAIL_FILE_PATH = envstr("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Spare Cycles <noreply@localhost>")
PASSWORD_RESET_TIMEOUT = envint("PASSWORD_RESET_TIMEOUT", 3 * 3600)
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- security -------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# HTTPS=true (production behind TLS) turns on secure cookies, the HTTPS redirect and HSTS.
HTTPS = envbool("HTTPS", False)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", HTTPS)
# The load balancer terminates TLS and says so in X-Forwarded-Proto (deploy/nginx.conf). The
# edge (web/forwarded.py) removes that header unless a TRUSTED_PROXIES peer sent it.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if HTTPS and SECRET_KEY.startswith(secret_keys.INSECURE_PREFIX):
    raise secret_keys.SecretKeyError(
        "Set SECRET_KEY (or SECRET_KEY_FILE) to a real secret when HTTPS is on "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))').")

# Uploads of work units can be large; the admin streams them from disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- owners' REST API (sparecycles.api; authentication, permissions and throttles are set
# on its views). Any DRF view authenticates by token only unless it says otherwise: a session
# cookie rides along with every request a page of this site makes, a token never does. -------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    # Throttles key on REMOTE_ADDR, which the edge resolved from trusted proxies only; DRF's
    # default (None) would key on whatever X-Forwarded-For a client sends.
    "NUM_PROXIES": 0,
    # The site's one JSON error shape (sparecycles/errors.py) for every DRF view.
    "EXCEPTION_HANDLER": "sparecycles.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Spare Cycles owners' API",
    "DESCRIPTION": "Create apps and versions, submit batches of work units, follow their "
                   "progress, fetch validated results; abort and retire. "
                   "Authenticate with `Authorization: Token <key>` (POST /api/v1/auth/token/).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "BatchStateEnum": "sparecycles.projects.models.Batch.State",
        "WorkUnitStateEnum": "sparecycles.projects.models.WorkUnit.State",
    },
}

# --- the volunteer grid -----------------------------------------------------------
SPARECYCLES = {
    # PROTOCOL.md: frames over this close the socket with 1009.
    "MAX_FRAME_BYTES": envint("SPARECYCLES_MAX_FRAME_BYTES", 1024 * 1024),
    # A result whose output JSON exceeds this is refused with reason too_large.
    "MAX_OUTPUT_BYTES": envint("SPARECYCLES_MAX_OUTPUT_BYTES", 512 * 1024),
    # Bad frames tolerated on one socket before it is closed with 4400.
    "MAX_VIOLATIONS": envint("SPARECYCLES_MAX_VIOLATIONS", 10),
    "MAX_INFLIGHT": envint("SPARECYCLES_MAX_INFLIGHT", 4),
    "HEARTBEAT_S": envint("SPARECYCLES_HEARTBEAT_S", 30),
    # Validate stored results in a thread of the web process (embedded). `manage.py serve`
    # turns it off in its workers and runs `manage.py validator` beside them.
    "VALIDATE_IN_WEB": envbool("SPARECYCLES_VALIDATE_IN_WEB", True),
    # A device gets at most one `stats` push per this many seconds (later grants coalesce).
    "STATS_THROTTLE_S": envint("SPARECYCLES_STATS_THROTTLE_S", 2),
    # Seconds a client waits before asking again when no work is available.
    "RETRY_AFTER_S": envint("SPARECYCLES_RETRY_AFTER_S", 10),
    # Seconds the housekeeping loop sleeps between passes (embedded mode runs it in-process).
    "HOUSEKEEPING_INTERVAL_S": envint("SPARECYCLES_HOUSEKEEPING_INTERVAL_S", 15),
    # Grace after a replica's deadline before it is timed out and reissued.
    "DEADLINE_GRACE_S": envint("SPARECYCLES_DEADLINE_GRACE_S", 60),
    # Run housekeeping (housekeeping/: timeouts, validation sweep, epochs, stats export) in a
    # thread of the web process, started with it (sparecycles.asgi). On by default in the
    # embedded mode; `manage.py serve` runs one `manage.py housekeeping` process instead.
    # Either way each job runs once across processes (a lease row per job).
    "EMBEDDED_HOUSEKEEPING": envbool("SPARECYCLES_EMBEDDED_HOUSEKEEPING", not REDIS_URL),
    # BOINC's daily result quota per (device, app version): cut by one per error or
    # timeout, doubled back (up to this) by each valid result.
    "DAILY_QUOTA": envint("SPARECYCLES_DAILY_QUOTA", 500),
    # Abuse limits per address (0 = off); see gateway/ratelimit.py and deploy/nginx.conf.
    "MAX_CONNECTIONS_PER_IP": envint("SPARECYCLES_MAX_CONNECTIONS_PER_IP", 200),
    # With REDIS_URL the two connection limits hold across processes; an open socket's lease
    # is renewed while it lives, so a killed process's sockets stop counting after this.
    "CONNECTION_LEASE_S": envint("SPARECYCLES_CONNECTION_LEASE_S", 60),
    "CONNECTIONS_PER_IP_PER_MIN": envint("SPARECYCLES_CONNECTIONS_PER_IP_PER_MIN", 600),
    "FRAMES_PER_S": envint("SPARECYCLES_FRAMES_PER_S", 50),
    "FRAME_BURST": envint("SPARECYCLES_FRAME_BURST", 200),
    "RESULTS_PER_S": envint("SPARECYCLES_RESULTS_PER_S", 20),
    # Replicas of one work unit go to distinct networks (IPv4 /24, IPv6 /48), so many
    # devices behind one address can't form a quorum. 0 turns it off (local swarms).
    "DISTINCT_NETWORKS": envbool("SPARECYCLES_DISTINCT_NETWORKS", True),
    # New devices start with this daily quota per app version; each valid result doubles
    # it up to DAILY_QUOTA (a trust ramp: fresh devices can't flood a batch).
    "DAILY_QUOTA_START": envint("SPARECYCLES_DAILY_QUOTA_START", 20),
    # A tie-breaker replica of an inconclusive work unit goes only to devices with a valid
    # result behind them (consecutive_valid > 0) for this long, then to anyone.
    "RELIABLE_RETRY_WAIT_S": envint("SPARECYCLES_RELIABLE_RETRY_WAIT_S", 120),
    # Where the daily BOINC-format statistics files are written (served at /stats/).
    "STATS_DIR": envstr("SPARECYCLES_STATS_DIR", str(VAR_DIR / "stats")),
    # Password guessing (volunteers/login_throttle.py): this many failures in a window for
    # one username, or from one address, lock it for a whole window. 0 turns one off.
    "LOGIN_THROTTLE_WINDOW_S": envint("SPARECYCLES_LOGIN_THROTTLE_WINDOW_S", 900),
    "LOGIN_FAILURES_PER_USERNAME": envint("SPARECYCLES_LOGIN_FAILURES_PER_USERNAME", 10),
    "LOGIN_FAILURES_PER_ADDRESS": envint("SPARECYCLES_LOGIN_FAILURES_PER_ADDRESS", 30),
    # Known-answer tasks a quarantined device must pass in a row to be trusted again.
    "QUARANTINE_RELEASE_PASSES": envint("SPARECYCLES_QUARANTINE_RELEASE_PASSES", 5),
    # Credit: the median device of an app version counts as this many MFLOPS, so a
    # second of its measured work earns 1000 MFLOPS x 200 / 86400 s credit by default
    # (BOINC's unit). See credit/normalisation.py.
    "CREDIT_REFERENCE_MFLOPS": envint("SPARECYCLES_CREDIT_REFERENCE_MFLOPS", 1000),
    # Validation (validation/): Sarmenta's credibility. The share of saboteurs assumed
    # when estimating how likely a result is correct (f); a device becomes "established"
    # after this many results confirmed by spot checks or by established devices.
    "ASSUMED_SABOTEUR_SHARE": envfloat("SPARECYCLES_ASSUMED_SABOTEUR_SHARE", 0.3),
    "ESTABLISHED_AFTER": envint("SPARECYCLES_ESTABLISHED_AFTER", 2),
    # Automatic spot checks: a new device gets this share of known-answer tasks, falling as
    # 1/(1 + confirmed results) down to the floor (per app, App.spot_check_rate raises it).
    "SPOT_CHECK_NEW": envfloat("SPARECYCLES_SPOT_CHECK_NEW", 0.5),
    "SPOT_CHECK_MIN": envfloat("SPARECYCLES_SPOT_CHECK_MIN", 0.02),
    # Known answers the catalogue loader computes natively for a bundled app that has none
    # (main.py runs in CPython), within this many seconds.
    "KNOWN_ANSWERS": envint("SPARECYCLES_KNOWN_ANSWERS", 8),
    "KNOWN_ANSWER_BUDGET_S": envfloat("SPARECYCLES_KNOWN_ANSWER_BUDGET_S", 20),
    # Settled work units in which a device was in the minority (since its last clean
    # check) before it is quarantined like a device that failed a spot check.
    "MINORITY_LIMIT": envint("SPARECYCLES_MINORITY_LIMIT", 2),
    # Pair diversity: two devices that already met in this many work units over the window
    # are not paired again while another work unit is available.
    "PAIR_MAX_MEETINGS": envint("SPARECYCLES_PAIR_MAX_MEETINGS", 2),
    "PAIR_WINDOW_S": envint("SPARECYCLES_PAIR_WINDOW_S", 86400),
}

# --- the custom-validator sandbox (sandbox/, docs/sandbox.md) ------------------------
SANDBOX = {
    # How owner code is isolated: "auto" (bubblewrap, else `unshare` as root or in a user
    # namespace), "bwrap" or "unshare". With none available custom validators fail closed.
    "ISOLATION": envstr("SPARECYCLES_SANDBOX_ISOLATION", "auto"),
    "NODE": envstr("SPARECYCLES_SANDBOX_NODE", "node"),
    # Seconds one equivalent(a, b) call (and loading the code) may take before the
    # sandbox is killed and the work unit's validation pauses with the reason.
    "PAIR_TIMEOUT_S": float(envstr("SPARECYCLES_SANDBOX_PAIR_TIMEOUT_S", "2")),
    # Seconds for the runtime (Pyodide under Node) to start.
    "START_TIMEOUT_S": float(envstr("SPARECYCLES_SANDBOX_START_TIMEOUT_S", "60")),
    # Memory (RLIMIT_DATA) and lifetime CPU seconds (RLIMIT_CPU) of one sandbox process.
    "MEMORY_MB": envint("SPARECYCLES_SANDBOX_MEMORY_MB", 512),
    "CPU_S": envint("SPARECYCLES_SANDBOX_CPU_S", 600),
    # Warm sandbox processes kept per server process (each serves one validator's code).
    "POOL_SIZE": envint("SPARECYCLES_SANDBOX_POOL_SIZE", 4),
    # A validator that failed is not run again for this many seconds (its work units
    # wait, with the reason, and housekeeping retries them).
    "RETRY_S": envint("SPARECYCLES_SANDBOX_RETRY_S", 60),
    # Sandbox processes that may run at once in a server process, idle or busy, across
    # threads; a caller beyond that waits for one (up to START_TIMEOUT_S).
    "MAX_PROCESSES": envint("SPARECYCLES_SANDBOX_MAX_PROCESSES", 8),
    # Seconds of comparisons one work unit may take per validation pass, and one app per
    # pass; what does not fit is judged in the next passes (the verdicts so far are kept),
    # so a slow validator delays only its own app.
    "WORKUNIT_BUDGET_S": float(envstr("SPARECYCLES_SANDBOX_WORKUNIT_BUDGET_S", "2")),
    "APP_BUDGET_S": float(envstr("SPARECYCLES_SANDBOX_APP_BUDGET_S", "4")),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
