from django.urls import path

from . import project_pages as views

app_name = "projects"

urlpatterns = [
    path("", views.project_list_page, name="list"),
    path("<slug:slug>/", views.project_page, name="detail"),
    path("<slug:slug>/progress/", views.project_progress, name="progress"),
    path("<slug:slug>/contributors/", views.project_contributors, name="contributors"),
    path("<slug:slug>/tiles/<slug:app>.json", views.project_tiles_json, name="tiles"),
]
