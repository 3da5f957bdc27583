from django.urls import path, re_path

from . import apis, views

app_name = "ledger"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("epochs/", views.epoch_list, name="epochs"),
    path("epochs/<int:index>/", views.epoch_detail, name="epoch"),
    path("accounts/<str:code>/", views.account_detail, name="account"),
    path("volunteers/<int:volunteer_id>/", views.volunteer_account, name="volunteer"),
    path("entries/<int:seq>/", views.entry_detail, name="entry"),
    path("verify/", views.verify_page, name="verify"),
    path("api/", apis.index, name="api"),
    path("api/supply", apis.supply, name="api-supply"),
    path("api/policy", apis.policy, name="api-policy"),
    path("api/epochs", apis.epochs, name="api-epochs"),
    path("api/epochs/<int:index>", apis.epoch, name="api-epoch"),
    path("api/epochs/<int:index>/proofs/<str:code>", apis.proof, name="api-proof"),
    path("api/accounts/<str:code>", apis.account, name="api-account"),
    path("api/entries/<int:seq>", apis.entry, name="api-entry"),
    path("api/verify", apis.verify, name="api-verify"),
    path("api/journal.jsonl", apis.journal, name="api-journal"),
    re_path(r"^api/(?P<rest>.*)$", apis.not_found),
]
