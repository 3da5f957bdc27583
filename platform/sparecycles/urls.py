from django.contrib import admin
from django.urls import path

from sparecycles.projects import views as project_views
from sparecycles.web import views as web_views

admin.site.site_header = "Spare Cycles administration"
admin.site.site_title = "Spare Cycles"

urlpatterns = [
    path("", web_views.volunteer_page, name="volunteer"),
    path("healthz", web_views.healthz, name="healthz"),
    path("apps/<slug:name>/<int:number>/code", project_views.app_code, name="app-code"),
    path("admin/", admin.site.urls),
]
