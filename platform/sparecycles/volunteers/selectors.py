"""Reads for identity: who is looking, a device by its token, a team by its slug."""

from .models import Device, Team, Volunteer

# --- who is looking -----------------------------------------------------------------------
# An anonymous browser that proved it holds a device token (claim.js posts it once) is
# remembered in its session, so the boards can highlight its row before any sign-up.
SESSION_VOLUNTEER_KEY = "sparecycles.volunteer_id"


def volunteer_of_user(*, user) -> Volunteer | None:
    if user is None or not user.is_authenticated:
        return None
    return Volunteer.objects.filter(user=user).select_related("team").first()


def viewer_volunteer_id(*, user, session) -> int | None:
    """The volunteer a request speaks for: the account's, else this browser's device's."""
    if user is not None and user.is_authenticated:
        return Volunteer.objects.filter(user=user).values_list("pk", flat=True).first()
    value = session.get(SESSION_VOLUNTEER_KEY) if session is not None else None
    return value if isinstance(value, int) else None


def device_by_token(*, token: str) -> Device | None:
    if not token:
        return None
    return (Device.objects.select_related("volunteer")
            .filter(token_hash=Device.hash_token(token), revoked=False).first())


def team_by_slug(*, slug: str) -> Team | None:
    return Team.objects.select_related("founder").filter(slug=slug).first()
