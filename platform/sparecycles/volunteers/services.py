"""Writes for volunteers and devices."""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .models import Device, Volunteer


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
            Device.objects.select_for_update()
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
