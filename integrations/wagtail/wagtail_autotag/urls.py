"""The URL a site includes for the service's callbacks:
`path("autotag/", include("wagtail_autotag.urls"))` -> POST /autotag/callback/."""

from django.urls import path

from . import views

app_name = "wagtail_autotag_public"
urlpatterns = [path("callback/", views.callback, name="callback")]
