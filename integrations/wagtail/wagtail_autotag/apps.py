"""The Django app: connects Wagtail's publish signals when the app registry is ready."""

from django.apps import AppConfig


class WagtailAutotagConfig(AppConfig):
    name = "wagtail_autotag"
    label = "wagtail_autotag"
    verbose_name = "autotag"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import signals

        signals.connect()
