"""Password guessing is throttled per username and per client address, on the shared cache.

Every password check goes through django.contrib.auth.authenticate() — the site's login,
the admin's login, the API's token endpoint, anything added later — so the rule lives in
the authentication backend (LoginThrottleBackend, a ModelBackend): while a username or an
address is locked, it refuses before any password is compared, so even the right password
is refused until the lock ends. Failures are counted from Django's user_login_failed
signal, in fixed windows of LOGIN_THROTTLE_WINDOW_S: LOGIN_FAILURES_PER_USERNAME failures
for one username, or LOGIN_FAILURES_PER_ADDRESS from one address (an IPv6 /64 counts as one
address), lock it for a whole window from the failure that reached the limit. Refused
attempts do not count.

The address is REMOTE_ADDR, which the edge resolved from trusted proxies only
(web/forwarded.py). The counters sit in Django's default cache: Redis when REDIS_URL is set,
so every process shares them; local memory in the one-process embedded mode.

Why not django-axes: it would bring a second idea of the client address (django-ipware's
header guessing) beside the one the edge resolved, and database tables for what is a
short-lived counter; this is about a hundred lines on the cache every process already shares.

The cost of a per-username lock is that anyone can lock a known username out for a window;
the per-address lock alone would let a botnet try every password of one account.
"""

import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

PREFIX = "login-throttle"


@dataclass(frozen=True)
class LoginRefusal:
    retry_after_s: int
    message: str


def _limits() -> tuple[int, int, int]:
    limits = settings.SPARECYCLES
    return (limits["LOGIN_THROTTLE_WINDOW_S"], limits["LOGIN_FAILURES_PER_USERNAME"],
            limits["LOGIN_FAILURES_PER_ADDRESS"])


def address_ident(address: str | None) -> str | None:
    """One client for per-address limits: an IPv4 address, or an IPv6 /64 (what one
    subscriber holds). The login throttle, the account mail and device enrolment use it."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:  # one subscriber holds a /64: one address for guessing purposes
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _username_ident(username: str | None) -> str | None:
    return username.strip().casefold() if username and username.strip() else None


def _key(kind: str, ident: str, suffix: str) -> str:
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]  # any text, a safe cache key
    return f"{PREFIX}:{kind}:{digest}:{suffix}"


def _idents(address: str | None, username: str | None) -> list[tuple[str, str, int]]:
    window, per_username, per_address = _limits()
    found = []
    if (user_ident := _username_ident(username)) and per_username:
        found.append(("username", user_ident, per_username))
    if (place := address_ident(address)) and per_address:
        found.append(("address", place, per_address))
    return found


def login_refusal(*, address: str | None, username: str | None,
                  now: float | None = None) -> LoginRefusal | None:
    """Why a password check must not happen now, or None."""
    idents = _idents(address, username)
    if not idents:
        return None
    now = time.time() if now is None else now
    locks = cache.get_many([_key(kind, ident, "lock") for kind, ident, _ in idents])
    for kind, ident, _ in idents:
        until = locks.get(_key(kind, ident, "lock"))
        if until is not None and until > now:
            wait_s = max(1, math.ceil(until - now))
            minutes = max(1, math.ceil(wait_s / 60))
            who = "for this username" if kind == "username" else "from your network address"
            return LoginRefusal(
                retry_after_s=wait_s,
                message=(f"Too many failed log-ins {who}. Log-ins are paused for "
                         f"{minutes} minute{'s' if minutes != 1 else ''}; try again then "
                         "(the right password is refused until the pause ends)."))
    return None


def login_failure_record(*, address: str | None, username: str | None,
                         now: float | None = None) -> None:
    """Count one failed password check; lock what reached its limit for a whole window."""
    window = _limits()[0]
    now = time.time() if now is None else now
    bucket = int(now // window)
    for kind, ident, limit in _idents(address, username):
        key = _key(kind, ident, f"n{bucket}")
        cache.add(key, 0, timeout=window * 2)
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window * 2)
            failures = 1
        if failures >= limit:
            cache.set(_key(kind, ident, "lock"), now + window, timeout=window + 1)


def client_address(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


class LoginThrottleBackend(ModelBackend):
    """Django's ModelBackend with the throttle in front (settings.AUTHENTICATION_BACKENDS).

    While throttled it raises PermissionDenied before any password is compared: then
    authenticate() tries no other backend and returns None. The refusal is left on the
    request, so views can answer 429 with its message. A subclass rather than a separate
    first backend, so that force_login and sessions name a backend that loads users.
    """

    def authenticate(self, request, username=None, password=None, **credentials):
        if username is None:
            username = credentials.get(get_user_model().USERNAME_FIELD)
        refusal = login_refusal(address=client_address(request), username=username)
        if refusal is not None:
            if request is not None:
                request.login_refusal = refusal
            raise PermissionDenied(refusal.message)
        return super().authenticate(request, username=username, password=password,
                                    **credentials)


def on_login_failed(sender, credentials: dict, request: HttpRequest | None = None,
                    **kwargs) -> None:
    if request is not None and getattr(request, "login_refusal", None) is not None:
        return  # refused before any password was compared: not a guess
    username = credentials.get(get_user_model().USERNAME_FIELD, credentials.get("username"))
    login_failure_record(address=client_address(request),
                         username=username if isinstance(username, str) else None)


class ThrottledLoginFormMixin:
    """For AuthenticationForm subclasses: the throttle's message instead of "wrong password"."""

    def get_invalid_login_error(self):
        from django.core.exceptions import ValidationError

        refusal = getattr(self.request, "login_refusal", None) if self.request else None
        if refusal is not None:
            return ValidationError(refusal.message, code="throttled")
        return super().get_invalid_login_error()


class LoginThrottleStatusMiddleware:
    """A login page shown again because of the throttle answers 429 with Retry-After."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        refusal = getattr(request, "login_refusal", None)
        if refusal is not None and response.status_code == 200:
            response.status_code = 429
            response.reason_phrase = "Too Many Requests"
            response["Retry-After"] = str(refusal.retry_after_s)
        return response
