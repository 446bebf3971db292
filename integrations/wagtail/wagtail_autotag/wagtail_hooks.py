"""Wagtail hooks: the admin URLs, the "Tags to review" menu item, and the audit log's actions."""

from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from . import admin_urls
from .models import PageTag


@hooks.register("register_admin_urls")
def register_admin_urls():
    return [path("autotag/", include(admin_urls, namespace="wagtail_autotag"))]


class ReviewMenuItem(MenuItem):
    def get_context(self, request):
        context = super().get_context(request)
        waiting = PageTag.objects.filter(status=PageTag.SUGGESTED).values("page_id").distinct().count()
        if waiting:
            context["label"] = f"{self.label} ({waiting})"
        return context


@hooks.register("register_reports_menu_item")
def register_review_menu_item():
    return ReviewMenuItem("Tags to review", reverse("wagtail_autotag:review"), icon_name="tag", order=50)


@hooks.register("register_log_actions")
def register_log_actions(actions):
    actions.register_action("wagtail_autotag.accept", "Accept tag", "Tag accepted (autotag)")
    actions.register_action("wagtail_autotag.reject", "Remove tag", "Tag removed (autotag)")
    actions.register_action("wagtail_autotag.add", "Add tag", "Tag added (autotag)")
