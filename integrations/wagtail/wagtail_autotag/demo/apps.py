from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "wagtail_autotag.demo"
    label = "autotag_demo"
    verbose_name = "autotag demo site"
    default_auto_field = "django.db.models.BigAutoField"
