"""The live-leaderboard socket: tells open boards that credit changed, at most once a second.

Thin on purpose: it carries no data, only "changed"; the page then refetches the JSON
of the board it shows (so every viewer sees their own page, order and highlight).
events.credit_granted sends one `leaderboard.changed` per grant; a busy grid makes hundreds a
second, so each socket forwards the first at once and folds the rest into one trailing
message per interval (events.ChangedFeedConsumer, shared with the project and batch pages).
"""

from sparecycles.events import LEADERBOARD_GROUP, ChangedFeedConsumer


class LeaderboardConsumer(ChangedFeedConsumer):
    async def group_for(self) -> str:
        return LEADERBOARD_GROUP  # one board group, open to everyone

    async def leaderboard_changed(self, event: dict) -> None:
        await self.progress_changed(event)
