from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webmap.navigation import home

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("iot/", include("iot.urls")),
    path("routing/", include("routing.urls")),
    path("", include("gridmap.urls")),
    path("", include("gridmap.supervision_urls")),
    path("", include("gridmap.inspection_urls")),
    path("", include("webmap.urls")),
]
