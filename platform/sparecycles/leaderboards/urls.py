"""Leaderboards (HTML, and JSON with ?format=json or under api/) and the statistics files.

Included at the site root: its paths start with leaderboards/ and stats/.
"""

from django.urls import path

from . import views

app_name = "leaderboards"

urlpatterns = [
    path("leaderboards/", views.volunteers, name="index"),
    path("leaderboards/volunteers/", views.volunteers, name="volunteers"),
    path("leaderboards/teams/", views.teams, name="teams"),
    path("leaderboards/projects/", views.projects, name="projects"),
    path("leaderboards/projects/<slug:slug>/", views.project, name="project"),
    path("leaderboards/api/volunteers", views.volunteers, {"as_json": True},
         name="api-volunteers"),
    path("leaderboards/api/teams", views.teams, {"as_json": True}, name="api-teams"),
    path("leaderboards/api/projects/<slug:slug>", views.project, {"as_json": True},
         name="api-project"),
    path("stats/", views.stats_index, name="stats"),
    path("stats/<str:name>", views.stats_file, name="stats-file"),
]
