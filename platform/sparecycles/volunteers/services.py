"""Writes for volunteers, devices and teams."""

import datetime as dt
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from sparecycles.ledger.models import Account
from sparecycles.ledger.selectors import volunteer_balance_micro
from sparecycles.ledger.services import tokens_transfer

from .models import Badge, Device, DeviceClaimCode, Team, Volunteer


@dataclass(frozen=True)
class DeviceSession:
    device: Device
    new_token: str | None  # set only when a token was issued now; the client must store it


def volunteer_for_user(*, user) -> Volunteer:
    volunteer, _ = Volunteer.objects.get_or_create(
        user=user, defaults={"name": user.get_username()[:100]}
    )
    return volunteer


@transaction.atomic
def device_connect(
    *, token: str | None, user=None, client_name: str = "", client_version: str = "",
    capabilities: dict | None = None,
) -> DeviceSession:
    """Find the device a hello frame speaks for, or enrol a new one.

    A known, unrevoked token keeps its device (and so its in-flight tasks). An
    unknown or revoked token, or none, gets a new device and a new token. A
    logged-in browser session ties a new device to that user's volunteer.
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
    device.last_seen = timezone.now()
    device.save()
    return DeviceSession(device=device, new_token=new_token)


# --- accounts --------------------------------------------------------------------------
@transaction.atomic
def account_create(*, username: str, password: str) -> Volunteer:
    """Sign up: a user account and its volunteer (named after the account to begin with).

    The caller has validated the username and password (Django's UserCreationForm).
    """
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password=password)
    return volunteer_for_user(user=user)


# --- profile --------------------------------------------------------------------------
@transaction.atomic
def volunteer_update(*, volunteer: Volunteer, name: str, show_anonymous: bool) -> Volunteer:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise ValidationError("Your display name must be 1 to 100 characters long.")
    volunteer.name, volunteer.show_anonymous = name, show_anonymous
    volunteer.save(update_fields=["name", "show_anonymous"])
    return volunteer


# --- claiming devices -------------------------------------------------------------------
CLAIM_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CLAIM_CODE_TTL = dt.timedelta(minutes=15)


@transaction.atomic
def claim_code_issue(*, device: Device) -> DeviceClaimCode:
    """A short code this device shows so its owner can claim it from a logged-in browser."""
    code = "".join(secrets.choice(CLAIM_CODE_ALPHABET) for _ in range(8))
    return DeviceClaimCode.objects.create(device=device, code=code,
                                          expires_at=timezone.now() + CLAIM_CODE_TTL)


@transaction.atomic
def device_claim(*, user, token: str | None = None, code: str | None = None) -> Device:
    """Attach a device (by its token, or by a code it shows) to `user`'s volunteer.

    The device's anonymous volunteer, if it has no account, is merged into the
    user's: its credit, devices and history come along.
    """
    if token:
        device = Device.objects.select_for_update(no_key=True).filter(
            token_hash=Device.hash_token(token), revoked=False).first()
        if device is None:
            raise ValidationError("This browser's device is unknown; press Start once first.")
    elif code:
        claim = (DeviceClaimCode.objects.select_for_update(no_key=True).select_related("device")
                 .filter(code=code.strip().upper().replace("-", ""), used_at__isnull=True,
                         expires_at__gt=timezone.now()).first())
        if claim is None:
            raise ValidationError("That code is unknown or expired; get a new one on the device.")
        claim.used_at = timezone.now()
        claim.save(update_fields=["used_at"])
        device = claim.device
    else:
        raise ValidationError("Give a device token or a claim code.")
    target = volunteer_for_user(user=user)
    source = device.volunteer
    if source.pk == target.pk:
        return device
    if source.user_id is not None:
        raise ValidationError("That device already belongs to another account.")
    volunteer_merge(source=source, target=target)
    device.refresh_from_db()
    return device


def volunteer_merge(*, source: Volunteer, target: Volunteer) -> None:
    """Fold an anonymous volunteer into `target`: devices, credit, tokens and history.

    The source row stays, marked merged_into, because the token ledger and its
    sealed epochs keep naming it: credit already paid out in a closed epoch stays
    attributed to it (the journal must still verify), later credit moves.
    """
    from sparecycles.credit.averages import KEY_FLOOR, rac_now
    from sparecycles.credit.models import CreditGrant
    from sparecycles.credit.services import project_credit_merge
    from sparecycles.ledger.models import EpochCredit
    from sparecycles.scheduler.models import Replica

    from .reputation import reputation_refresh

    source = Volunteer.objects.select_for_update(no_key=True).get(pk=source.pk)
    target = Volunteer.objects.select_for_update(no_key=True).get(pk=target.pk)
    Device.objects.filter(volunteer=source).update(volunteer=target)
    CreditGrant.objects.filter(volunteer=source).exclude(
        pk__in=EpochCredit.objects.values("grant_id")).update(volunteer=target)
    Badge.objects.filter(volunteer=source).exclude(
        kind__in=target.badges.values("kind")).update(volunteer=target)
    # Replicas move too, except where both had one of the same work unit (kept as history).
    both = Replica.objects.filter(volunteer=target).values("workunit_id")
    Replica.objects.filter(volunteer=source).exclude(workunit_id__in=both).update(
        volunteer=target)
    now = timezone.now().timestamp()
    project_credit_merge(source_id=source.pk, target_id=target.pk, now=now)
    target.credit_micro += source.credit_micro
    target.rac = (rac_now(rac=target.rac, rac_time=target.rac_time, now=now)
                  + rac_now(rac=source.rac, rac_time=source.rac_time, now=now))
    target.rac_time = now
    target.refresh_rac_key()
    target.save(update_fields=["credit_micro", "rac", "rac_time", "rac_key"])
    if source.team_id:
        Team.objects.filter(pk=source.team_id).update(member_count=F("member_count") - 1)
    # Tokens follow the person: the anonymous account's balance moves in the ledger.
    balance = volunteer_balance_micro(source.pk)
    if balance > 0:
        tokens_transfer(source=Account.volunteer_code(source.pk),
                        destination=Account.volunteer_code(target.pk), amount_micro=balance,
                        memo="device claimed by its owner's account")
    source.merged_into = target
    source.team = None
    source.credit_micro, source.rac, source.rac_key = 0, 0.0, KEY_FLOOR
    source.save(update_fields=["merged_into", "team", "credit_micro", "rac", "rac_key"])
    # The devices' validation history now counts for the target.
    reputation_refresh(volunteer_id=target.pk)


# --- teams --------------------------------------------------------------------------------
@transaction.atomic
def team_create(*, founder: Volunteer, name: str, description: str = "") -> Team:
    name = " ".join(name.split())
    if not 2 <= len(name) <= 100:
        raise ValidationError("A team name must be 2 to 100 characters long.")
    slug = slugify(name)[:100]
    if not slug:
        raise ValidationError("A team name needs letters or digits.")
    if Team.objects.filter(Q(name__iexact=name) | Q(slug=slug)).exists():
        raise ValidationError(f"There is already a team called “{name}”.")
    team = Team.objects.create(name=name, slug=slug, description=description.strip()[:5000],
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
    team.description = description.strip()[:5000]
    team.save(update_fields=["description"])
    return team
