"""Rate limits: a generous one per owner, a tight one per address on password logins."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


def _rate(key: str, default: str) -> str:
    return getattr(settings, "SPARECYCLES", {}).get(key, default)


class OwnerRateThrottle(UserRateThrottle):
    scope = "owner"

    def get_rate(self) -> str:
        return _rate("API_RATE", "1200/min")


class LoginRateThrottle(SimpleRateThrottle):
    """Password guesses per client address."""

    scope = "login"

    def get_rate(self) -> str:
        return _rate("API_LOGIN_RATE", "30/min")

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
