"""Writes of the account pages: sign-up, profile, device claims and volunteer_merge.

An edge over every layer: a claim folds an anonymous volunteer into an account, and each
layer (identity, work, validation, credit, ledger) moves its own rows in its own service.
"""

import datetime as dt
import hashlib
import secrets
import time

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from sparecycles.credit.services import volunteer_credit_merge
from sparecycles.ledger.models import Account
from sparecycles.ledger.selectors import sealed_grant_ids, volunteer_balance_micro
from sparecycles.ledger.services import tokens_transfer
from sparecycles.scheduler.services import replicas_move
from sparecycles.text import clean_line
from sparecycles.validation.reputation import reputation_refresh
from sparecycles.volunteers.login_throttle import address_ident
from sparecycles.volunteers.models import Device, DeviceClaimCode, Volunteer
from sparecycles.volunteers.services import (
    DeviceSession,
    device_connect,
    volunteer_anonymise,
    volunteer_email_unverified,
    volunteer_export_consent,
    volunteer_fold,
    volunteer_for_user,
)


# --- accounts --------------------------------------------------------------------------
@transaction.atomic
def account_create(*, username: str, password: str, email: str = "") -> Volunteer:
    """Sign up: a user account and its volunteer (named after the account to begin with).

    The caller has validated the username, password and email (SignupForm). The email is
    optional and unverified until its link is opened.
    """
    users = get_user_model().objects
    user = users.create_user(username=username, password=password,
                             email=users.normalize_email(email.strip()))
    return volunteer_for_user(user=user)


@transaction.atomic
def account_email_change(*, user, email: str) -> bool:
    """Set (or clear, with "") the account's email. A new address is unverified: the old
    address's verification does not carry over. True when the address changed."""
    email = get_user_model().objects.normalize_email(email.strip())
    if email.lower() == (user.email or "").lower():
        return False
    user.email = email
    user.save(update_fields=["email"])
    volunteer_email_unverified(volunteer=volunteer_for_user(user=user))
    return True


def api_tokens_revoke(*, user) -> int:
    """End the account's API tokens (the CLI's log-in): after a password reset, whoever knew
    the old password must not keep the API. Returns how many there were."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted


class AccountNotDeletable(Exception):
    pass


@transaction.atomic
def account_delete(*, user) -> Volunteer:
    """Delete a volunteer's account and keep the books balanced.

    The volunteer row stays, anonymised (volunteers.services.volunteer_anonymise): the
    token ledger's account for it, its journal lines and sealed epochs keep naming it, and
    its credit stays in every total (VolunteerCredit, TeamCredit, ProjectCredit are not
    touched), so `verify_ledger` still passes and team and project totals do not move. The
    login goes: the Django user is deleted (its API token and sessions with it), and
    deleted_at lists the volunteer in the export's user_deleted. The caller checked the
    password. Project owners and staff are refused: their projects need another owner first.
    """
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    if user.is_staff or user.is_superuser:
        raise AccountNotDeletable("Staff and project owners’ accounts are closed by an "
                                  "administrator, so their projects keep an owner.")
    volunteer = volunteer_anonymise(volunteer=volunteer_for_user(user=user))
    Volunteer.objects.filter(pk=volunteer.pk).update(user=None)
    volunteer.user = None
    user.delete()
    return volunteer


# --- mail throttle ----------------------------------------------------------------------
MAIL_WINDOW_S = 3600
MAIL_PER_ADDRESS = 10   # requests for mail from one client address per window
MAIL_PER_RECIPIENT = 3  # mails to one recipient per window


def mail_allowed(*, client_address: str | None, recipient: str) -> bool:
    """Count a request to mail `recipient`; False when this address or recipient already
    had its share this window (the caller then sends nothing, and says the same as ever)."""
    bucket = int(timezone.now().timestamp() // MAIL_WINDOW_S)
    allowed = True
    for kind, ident, limit in (("address", address_ident(client_address) or "", MAIL_PER_ADDRESS),
                               ("recipient", recipient.strip().lower(), MAIL_PER_RECIPIENT)):
        if not ident:
            continue
        key = f"mail-throttle:{kind}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}:{bucket}"
        cache.add(key, 0, timeout=MAIL_WINDOW_S * 2)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=MAIL_WINDOW_S * 2)
            count = 1
        allowed = allowed and count <= limit
    return allowed


# --- profile --------------------------------------------------------------------------
@transaction.atomic
def volunteer_update(*, volunteer: Volunteer, name: str, show_anonymous: bool,
                     in_stats_exports: bool | None = None) -> Volunteer:
    name = clean_line(name)
    if not 1 <= len(name) <= 100:
        raise ValidationError("Your display name must be 1 to 100 characters long.")
    volunteer.name, volunteer.show_anonymous = name, show_anonymous
    volunteer.save(update_fields=["name", "show_anonymous"])
    if in_stats_exports is not None and in_stats_exports != volunteer.in_stats_exports:
        volunteer_export_consent(volunteer=volunteer, in_stats_exports=in_stats_exports)
    return volunteer


# --- claiming devices -------------------------------------------------------------------
CLAIM_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CLAIM_CODE_TTL = dt.timedelta(minutes=15)


# A browser that asks for a claim code before its first Start gets its device then; this
# many new devices per client address and hour, so a script cannot mint volunteers at will.
ENROLS_PER_ADDRESS_PER_HOUR = 20


class TooManyDevices(Exception):
    """This address enrolled ENROLS_PER_ADDRESS_PER_HOUR devices in the current hour."""


def device_enrol(*, user, address: str) -> DeviceSession:
    """A new device for a browser that has none yet (as its first hello would make it):
    tied to `user`'s volunteer when logged in, else to a new anonymous volunteer."""
    hour = int(time.time() // 3600)
    ident = address_ident(address) or ""  # an IPv6 /64 is one address
    key = f"device-enrol:{hashlib.sha256(ident.encode()).hexdigest()[:32]}:{hour}"
    cache.add(key, 0, timeout=3700)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr: count this one
        cache.set(key, 1, timeout=3700)
        count = 1
    if count > ENROLS_PER_ADDRESS_PER_HOUR:
        raise TooManyDevices
    return device_connect(token=None, user=user, client_name="web")


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
    attributed to it (the journal must still verify), later credit moves. Each layer
    moves its own rows through its own service, under the volunteers' row locks taken
    here first.
    """
    source = Volunteer.objects.select_for_update(no_key=True).get(pk=source.pk)
    target = Volunteer.objects.select_for_update(no_key=True).get(pk=target.pk)
    # Replicas move too, except where both had one of the same work unit (kept as history).
    replicas_move(source_id=source.pk, target_id=target.pk)
    volunteer_credit_merge(source_id=source.pk, target_id=target.pk,
                           sealed_grant_ids=sealed_grant_ids())
    # Tokens follow the person: the anonymous account's balance moves in the ledger.
    balance = volunteer_balance_micro(source.pk)
    if balance > 0:
        tokens_transfer(source=Account.volunteer_code(source.pk),
                        destination=Account.volunteer_code(target.pk), amount_micro=balance,
                        memo="device claimed by its owner's account")
    volunteer_fold(source=source, target=target)
    # The devices' validation history now counts for the target.
    reputation_refresh(volunteer_id=target.pk)
