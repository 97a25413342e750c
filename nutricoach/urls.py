from django.contrib import admin
from django.urls import path

from nutricoach import views
from nutricoach.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", views.home, name="home"),
]

handler404 = "nutricoach.views.not_found"
handler500 = "nutricoach.views.server_error"
