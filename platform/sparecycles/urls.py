from django.contrib import admin
from django.urls import include, path

from sparecycles.accounts.forms import AdminLoginForm
from sparecycles.web import project_pages as project_views
from sparecycles.web import views as web_views

admin.site.site_header = "Spare Cycles administration"
admin.site.site_title = "Spare Cycles"
admin.site.login_form = AdminLoginForm  # says so when log-ins are throttled

urlpatterns = [
    path("", web_views.volunteer_page, name="volunteer"),
    path("healthz", web_views.healthz, name="healthz"),
    path("", include("sparecycles.web.urls")),
    path("apps/<slug:name>/<int:number>/code", project_views.app_code, name="app-code"),
    path("apps/<slug:name>/<int:number>/wheels/<str:filename>", project_views.app_wheel,
         name="app-wheel"),
    path("projects/", include("sparecycles.web.project_urls")),
    path("api/v1/", include("sparecycles.api.urls")),
    path("admin/", admin.site.urls),
    path("ledger/", include("sparecycles.ledger.urls")),
    path("", include("sparecycles.accounts.urls")),
    path("", include("sparecycles.leaderboards.urls")),
]

# Styled error pages; JSON paths keep the JSON error shape (web/error_pages.py).
handler404 = "sparecycles.web.error_pages.page_not_found"
handler500 = "sparecycles.web.error_pages.server_error"
