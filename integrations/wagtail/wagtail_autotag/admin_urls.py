"""Admin URLs, registered under /admin/autotag/ by wagtail_hooks."""

from django.urls import path

from . import views

app_name = "wagtail_autotag"
urlpatterns = [
    path("pages/<int:page_id>/action/", views.panel_action, name="panel_action"),
    path("review/", views.ReviewView.as_view(), name="review"),
]
