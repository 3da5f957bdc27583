"""The public project page's live socket (/ws/projects/<slug>/): "changed" when the
project's work units did, at most once a second; the page then refetches its progress."""

from channels.db import database_sync_to_async

from sparecycles.events import ChangedFeedConsumer, project_group
from sparecycles.projects.selectors import project_public_get


class ProjectProgressConsumer(ChangedFeedConsumer):
    async def group_for(self) -> str | None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        project = await database_sync_to_async(project_public_get)(slug=slug)
        return project_group(project.pk) if project is not None else None
