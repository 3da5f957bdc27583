"""An owner's batch page's live socket (/ws/batches/<pk>/): "changed" when the batch's work
units or replicas did, at most once a second; the page then refetches the batch's status
from the admin, which checks ownership again. Only the batch's owners may listen."""

from channels.db import database_sync_to_async

from sparecycles.events import ChangedFeedConsumer, batch_group
from sparecycles.projects.selectors import batch_get


class BatchProgressConsumer(ChangedFeedConsumer):
    async def group_for(self) -> str | None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            return None
        pk = self.scope["url_route"]["kwargs"]["pk"]
        batch = await database_sync_to_async(batch_get)(user=user, pk=pk)
        return batch_group(batch.pk) if batch is not None else None
