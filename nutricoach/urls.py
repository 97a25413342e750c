from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from nutricoach import views
from nutricoach.api import api
from nutricoach.jobs import dashboard, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("jobs/<uuid:job_id>/", dashboard.job_status_page, name="job_status"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("", views.home, name="home"),
]

handler404 = "nutricoach.views.not_found"
handler500 = "nutricoach.views.server_error"
