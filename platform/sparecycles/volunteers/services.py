"""Writes for identity: volunteers, devices (device_connect) and team membership."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from sparecycles.events import devices_revoked, leaderboard_changed
from sparecycles.text import clean_line, clean_text

from .compute_settings import compute_settings_check
from .identity import cpid
from .models import Device, DeviceClaimCode, Team, Volunteer


@dataclass(frozen=True)
class DeviceSession:
    device: Device
    new_token: str | None  # set only when a token was issued now; the client must store it


def volunteer_for_user(*, user) -> Volunteer:
    volunteer, _ = Volunteer.objects.get_or_create(
        user=user, defaults={"name": user.get_username()[:100]}
    )
    return volunteer


# The device fields a hello's `host` object reports (gateway.protocol.HostInfo).
HOST_FIELDS = ("os_name", "os_version", "p_vendor", "p_model", "p_fpops", "timezone")


@transaction.atomic
def device_connect(
    *, token: str | None, user=None, client_name: str = "", client_version: str = "",
    capabilities: dict | None = None, host: dict | None = None,
) -> DeviceSession:
    """Find the device a hello frame speaks for, or enrol a new one.

    A known, unrevoked token keeps its device (and so its in-flight tasks). An
    unknown or revoked token, or none, gets a new device and a new token. A
    logged-in browser session ties a new device to that user's volunteer. `host` (the
    hello's optional, already validated host fields) replaces what the device reported
    before; without it those fields stay as they were.
    """
    authenticated = user is not None and user.is_authenticated
    device = None
    if token:
        device = (
            Device.objects.select_for_update(no_key=True)
            .select_related("volunteer")
            .filter(token_hash=Device.hash_token(token), revoked=False)
            .first()
        )
    new_token = None
    if device is None:
        if authenticated:
            volunteer = volunteer_for_user(user=user)
        else:
            volunteer = Volunteer.objects.create(name="Anonymous volunteer")
            volunteer.name = f"Volunteer {volunteer.pk}"
            volunteer.save(update_fields=["name"])
        new_token = Device.new_token()
        device = Device(volunteer=volunteer, token_hash=Device.hash_token(new_token))
    device.client_name = client_name[:50]
    device.client_version = client_version[:50]
    device.capabilities = capabilities or {}
    if host is not None:
        for name in HOST_FIELDS:
            field = Device._meta.get_field(name)
            value = host.get(name, field.get_default())
            if isinstance(value, str):  # cut to the column, whoever the caller
                value = value[:field.max_length]
            setattr(device, name, value)
    device.last_seen = timezone.now()
    device.save()
    return DeviceSession(device=device, new_token=new_token)


@transaction.atomic
def volunteer_fold(*, source: Volunteer, target: Volunteer) -> None:
    """The identity side of folding an anonymous volunteer into an account's: its devices
    move to `target`, it leaves its team, and it is marked merged_into `target`.

    The source row stays because the token ledger keeps naming it. The caller
    (accounts.services.volunteer_merge) holds both rows' locks and moves the rest.
    """
    Device.objects.filter(volunteer_id=source.pk).update(volunteer_id=target.pk)
    if source.team_id:
        Team.objects.filter(pk=source.team_id).update(member_count=F("member_count") - 1)
    source.merged_into = target
    source.team = None
    source.save(update_fields=["merged_into", "team"])


# --- teams --------------------------------------------------------------------------------
@transaction.atomic
def team_create(*, founder: Volunteer, name: str, description: str = "") -> Team:
    name = clean_line(name)
    if not 2 <= len(name) <= 100:
        raise ValidationError("A team name must be 2 to 100 characters long.")
    slug = slugify(name)[:100]
    if not slug:
        raise ValidationError("A team name needs letters or digits.")
    if Team.objects.filter(Q(name__iexact=name) | Q(slug=slug)).exists():
        raise ValidationError(f"There is already a team called “{name}”.")
    team = Team.objects.create(name=name, slug=slug,
                               description=clean_text(description).strip()[:5000],
                               founder=founder)
    team_join(volunteer=founder, team=team)
    return team


@transaction.atomic
def team_join(*, volunteer: Volunteer, team: Team) -> None:
    """Join `team`, leaving any other. Credit counts for a team from the moment of joining."""
    volunteer = Volunteer.objects.select_for_update(no_key=True).get(pk=volunteer.pk)
    if volunteer.team_id == team.pk:
        return
    if volunteer.team_id:
        Team.objects.filter(pk=volunteer.team_id).update(member_count=F("member_count") - 1)
    volunteer.team = team
    volunteer.save(update_fields=["team"])
    Team.objects.filter(pk=team.pk).update(member_count=F("member_count") + 1)


@transaction.atomic
def team_leave(*, volunteer: Volunteer) -> None:
    volunteer = Volunteer.objects.select_for_update(no_key=True).get(pk=volunteer.pk)
    if volunteer.team_id is None:
        return
    Team.objects.filter(pk=volunteer.team_id).update(member_count=F("member_count") - 1)
    volunteer.team = None
    volunteer.save(update_fields=["team"])


@transaction.atomic
def team_update(*, team: Team, editor: Volunteer, description: str) -> Team:
    if team.founder_id != editor.pk:
        raise ValidationError("Only the team's founder can edit its description.")
    team.description = clean_text(description).strip()[:5000]
    team.save(update_fields=["description"])
    return team


# --- email, export consent, deletion --------------------------------------------------------
@transaction.atomic
def volunteer_email_verified(*, volunteer: Volunteer, email: str) -> bool:
    """Mark the account's email verified, if it is still `email` (a link sent to an address
    the volunteer has since changed verifies nothing). True when it is verified now."""
    # Only the volunteer's row is locked (PostgreSQL refuses to lock the nullable side of
    # the outer join select_related("user") would make).
    volunteer = Volunteer.objects.select_for_update(no_key=True, of=("self",)).select_related(
        "user").get(pk=volunteer.pk)
    user = volunteer.user
    if volunteer.deleted_at or user is None or not email or user.email.lower() != email.lower():
        return False
    if volunteer.email_verified_at is None:
        volunteer.email_verified_at = timezone.now()
        volunteer.save(update_fields=["email_verified_at"])
    return True


@transaction.atomic
def volunteer_email_unverified(*, volunteer: Volunteer) -> None:
    """The account's email changed or went: it is not verified any more."""
    Volunteer.objects.filter(pk=volunteer.pk).update(email_verified_at=None)
    volunteer.email_verified_at = None


@transaction.atomic
def volunteer_export_consent(*, volunteer: Volunteer, in_stats_exports: bool) -> None:
    """The privacy choice: appear in the daily stats exports, or not from the next one on."""
    Volunteer.objects.filter(pk=volunteer.pk).update(in_stats_exports=in_stats_exports)
    volunteer.in_stats_exports = in_stats_exports


DELETED_NAME = "Deleted volunteer"


@transaction.atomic
def volunteer_anonymise(*, volunteer: Volunteer) -> Volunteer:
    """The identity side of deleting an account: the row stays (the ledger and the credit
    totals keep naming it) but says nothing about the person any more.

    Its name becomes "Deleted volunteer" and it shows as "Anonymous" on every public page;
    it leaves its team (the team keeps the credit earned with it: TeamCredit is credit's)
    and stops being the founder of the teams it founded; its devices are revoked, so their
    tokens stop working, and their pending claim codes go; the email's verification is
    cleared; deleted_at lists it in the export's user_deleted. Idempotent. The caller
    (accounts.services.account_delete) unlinks and deletes the login afterwards.
    """
    volunteer = Volunteer.objects.select_for_update(no_key=True).get(pk=volunteer.pk)
    if volunteer.team_id:
        Team.objects.filter(pk=volunteer.team_id).update(member_count=F("member_count") - 1)
    Team.objects.filter(founder_id=volunteer.pk).update(founder=None)
    devices = Device.objects.filter(volunteer_id=volunteer.pk)
    DeviceClaimCode.objects.filter(device__in=devices, used_at__isnull=True).delete()
    revoked = list(devices.filter(revoked=False).values_list("pk", flat=True))
    devices.update(revoked=True, name="")
    devices_revoked(revoked)  # their open sockets close once this commits
    if volunteer.deleted_at is None:  # before the email's verification goes with it
        volunteer.deleted_cpid = cpid(volunteer)
    volunteer.name = DELETED_NAME
    volunteer.show_anonymous = True
    volunteer.team = None
    volunteer.email_verified_at = None
    volunteer.deleted_at = volunteer.deleted_at or timezone.now()
    volunteer.save(update_fields=["name", "show_anonymous", "team", "email_verified_at",
                                  "deleted_at", "deleted_cpid"])
    leaderboard_changed([volunteer.pk])  # open board pages refetch: the name leaves them too
    return volunteer


def compute_settings_save(*, volunteer: Volunteer, raw: object) -> dict:
    """Store the volunteer page's settings for this account (compute_settings.py checks
    them; SettingsError names what is wrong). Returns what was stored."""
    clean = compute_settings_check(raw, now_ms=int(timezone.now().timestamp() * 1000))
    Volunteer.objects.filter(pk=volunteer.pk).update(compute_settings=clean)
    volunteer.compute_settings = clean
    return clean
