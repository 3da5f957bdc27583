"""Mail the account pages send: the verification link, and its signed token.

The link carries a token signed with the site's key (django.core.signing, its own salt):
the volunteer's id and the address it verifies, with the time it was made. It proves that
whoever opens it read that mailbox; it verifies only if the account still has that address
(volunteers.services.volunteer_email_verified), for the account that is logged in, within
VERIFY_MAX_AGE. Password resets use Django's own views and token generator (views.py).
"""

import dataclasses

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

VERIFY_SALT = "sparecycles.accounts.email-verify"
VERIFY_MAX_AGE_S = 3 * 24 * 3600


@dataclasses.dataclass(frozen=True)
class VerifyClaim:
    volunteer_id: int
    email: str


class BadVerifyLink(Exception):
    """The link is forged, cut, expired, or for no address."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def verify_token(*, volunteer_id: int, email: str) -> str:
    return signing.dumps({"v": volunteer_id, "e": email}, salt=VERIFY_SALT, compress=True)


def verify_token_read(token: str, *, max_age_s: int = VERIFY_MAX_AGE_S) -> VerifyClaim:
    try:
        data = signing.loads(token, salt=VERIFY_SALT, max_age=max_age_s)
    except signing.SignatureExpired:
        raise BadVerifyLink("This verification link has expired. Ask for a new one on your "
                            "account page.") from None
    except signing.BadSignature:
        raise BadVerifyLink("This verification link is not valid: copy the whole link from "
                            "the email, or ask for a new one on your account page.") from None
    if (not isinstance(data, dict) or not isinstance(data.get("v"), int)
            or not isinstance(data.get("e"), str) or not data["e"]):
        raise BadVerifyLink("This verification link is not valid.")
    return VerifyClaim(volunteer_id=data["v"], email=data["e"])


def site_origin(request) -> str:
    """Where links in mail point: SITE_ORIGIN, else the origin the request came to (its
    host already checked against ALLOWED_HOSTS)."""
    return settings.SITE_ORIGIN or f"{request.scheme}://{request.get_host()}"


def verification_send(*, request, volunteer_id: int, username: str, email: str) -> None:
    path = reverse("accounts:email-verify", args=[verify_token(volunteer_id=volunteer_id,
                                                               email=email)])
    context = {"site_name": settings.SITE_NAME, "username": username,
               "link": f"{site_origin(request)}{path}", "days": VERIFY_MAX_AGE_S // 86400}
    send_mail(subject=f"Verify your email address for {settings.SITE_NAME}",
              message=render_to_string("registration/email_verify_email.txt", context),
              from_email=None, recipient_list=[email])
