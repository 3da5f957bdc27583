"""Accounts, the dashboard, device claims, profiles and teams (included at the site root)."""

from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("me/", views.dashboard, name="dashboard"),
    path("me/account/", views.account, name="account"),
    path("me/devices/claim/", views.claim_this_browser, name="claim-browser"),
    path("me/devices/claim-code/", views.claim_by_code, name="claim-code"),
    path("devices/claim-code/", views.device_claim_code, name="device-code"),
    path("devices/identify/", views.device_identify, name="device-identify"),
    path("devices/earnings/", views.device_earnings, name="device-earnings"),
    path("me/compute-settings/", views.compute_settings, name="compute-settings"),
    path("volunteers/<int:pk>/", views.profile, name="profile"),
    path("teams/", views.team_list, name="teams"),
    path("teams/new/", views.team_create, name="team-create"),
    path("teams/<slug:slug>/", views.team_detail, name="team"),
    path("teams/<slug:slug>/join/", views.team_join, name="team-join"),
    path("teams/<slug:slug>/leave/", views.team_leave, name="team-leave"),
    path("teams/<slug:slug>/edit/", views.team_edit, name="team-edit"),
]
