"""Django settings for the demo site and the plugin's tests. Values that differ per run come from
the environment (the demo runner and the tests' conftest set them before Django starts)."""

import os
from pathlib import Path

DATA_DIR = Path(os.environ.get("AUTOTAG_WAGTAIL_DATA_DIR", Path.home() / ".autotag" / "wagtail-demo"))

SECRET_KEY = os.environ.get("AUTOTAG_WAGTAIL_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("AUTOTAG_WAGTAIL_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "wagtail_autotag",
    "wagtail_autotag.demo",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]
ROOT_URLCONF = "wagtail_autotag.demo.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.debug",
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": str(DATA_DIR / "site.sqlite3"),
    # the outbox sends from a thread after commit while requests write: wait for the lock, and
    # take it at BEGIN so two writers never deadlock upgrading a read lock
    "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
    "TEST": {"NAME": os.environ.get("AUTOTAG_WAGTAIL_TEST_DB") or None},
}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = str(DATA_DIR / "static")
MEDIA_ROOT = str(DATA_DIR / "media")
MEDIA_URL = "/media/"
WAGTAIL_SITE_NAME = "autotag demo newsroom"
WAGTAILADMIN_BASE_URL = os.environ.get("AUTOTAG_WAGTAIL_BASE_URL", "http://127.0.0.1:8000")
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "loggers": {"wagtail_autotag": {"handlers": ["console"], "level": os.environ.get("AUTOTAG_WAGTAIL_LOGLEVEL", "WARNING")}}}

AUTOTAG = {
    "SERVICE_URL": os.environ.get("AUTOTAG_SERVICE_URL", "http://127.0.0.1:8080"),
    "TOKEN": os.environ.get("AUTOTAG_TOKEN", "demo-token"),
    "CALLBACK_SECRET": os.environ.get("AUTOTAG_CALLBACK_SECRET", "whsec_ZGVtby1zZWNyZXQtbm90LWZvci1wcm9kdWN0aW9u"),
    "SIGNING_SECRET": os.environ.get("AUTOTAG_SIGNING_SECRET") or None,
    "PAGE_MODELS": ["autotag_demo.ArticlePage"],
    "BODY_FIELDS": ["body"],
    "ARTICLE_ID_PREFIX": os.environ.get("AUTOTAG_ARTICLE_ID_PREFIX", "demo-page-"),
    "TOPICS": [t for t in os.environ.get("AUTOTAG_TOPICS", "").split(",") if t],
}
