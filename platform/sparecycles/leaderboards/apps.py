from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "sparecycles.leaderboards"
    verbose_name = "Leaderboards and statistics"
