"""Accounts, the dashboard, device claims, profiles and teams (included at the site root)."""

from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/password/reset/", views.PasswordResetView.as_view(),
         name="password-reset"),
    path("accounts/password/reset/sent/", views.PasswordResetSentView.as_view(),
         name="password-reset-sent"),
    path("accounts/password/reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(),
         name="password-reset-confirm"),
    path("accounts/password/reset/complete/", views.PasswordResetCompleteView.as_view(),
         name="password-reset-complete"),
    path("accounts/deleted/", views.account_deleted, name="deleted"),
    path("me/", views.dashboard, name="dashboard"),
    path("me/account/", views.account, name="account"),
    path("me/account/email/", views.email_change, name="email-change"),
    path("me/account/email/resend/", views.email_verify_resend, name="email-resend"),
    path("me/account/email/verify/<str:token>/", views.email_verify, name="email-verify"),
    path("me/account/delete/", views.account_delete, name="delete"),
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
