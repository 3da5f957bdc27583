"""Push fresh `stats` to connected devices when an epoch pays their volunteers tokens."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.dispatch import receiver

from sparecycles.ledger.signals import epoch_closed
from sparecycles.scheduler.notify import device_group
from sparecycles.volunteers.models import Device


@receiver(epoch_closed, dispatch_uid="gateway-stats-on-epoch-close")
def push_stats_after_payout(sender, *, index: int, volunteer_ids: list[int], **kwargs) -> None:
    device_ids = list(Device.objects.filter(volunteer_id__in=volunteer_ids, revoked=False)
                      .values_list("pk", flat=True))
    if not device_ids:
        return
    layer = get_channel_layer()

    async def send_all() -> None:
        for device_id in device_ids:
            await layer.group_send(device_group(device_id), {"type": "stats.changed"})

    async_to_sync(send_all)()
