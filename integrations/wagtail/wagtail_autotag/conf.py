"""The only reader of the plugin's Django settings: `settings.AUTOTAG` -> a frozen AutotagSettings.

Read on every use (not cached at import), so a site or a test that changes the settings is seen
at once; every missing or malformed key is an ImproperlyConfigured naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_RETRY_DELAYS = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)  # the last one repeats until a 202
KNOWN_KEYS = {
    "SERVICE_URL", "TOKEN", "CALLBACK_SECRET", "SIGNING_SECRET", "CLIENT_ID", "PAGE_MODELS", "BODY_FIELDS",
    "ARTICLE_ID_PREFIX", "TIMEOUT", "RETRY_DELAYS", "SEND_ON_COMMIT", "TOPICS", "TAGGIT_MIRROR",
}


@dataclass(frozen=True)
class AutotagSettings:
    service_url: str
    token: str
    callback_secrets: tuple[str, ...]
    signing_secret: str | None
    client_id: str | None
    page_models: tuple[str, ...]  # "app_label.ModelName", as in Model._meta.label
    body_fields: dict[str, tuple[str, ...]]  # model label -> fields, "*" for every model
    article_id_prefix: str
    timeout: float
    retry_delays: tuple[float, ...]
    send_on_commit: bool
    topics: tuple[str, ...]
    taggit_mirror: dict[str, str]  # model label -> name of its taggit field

    def tags_model(self, model) -> bool:
        return model._meta.label in self.page_models

    def fields_for(self, model) -> tuple[str, ...]:
        return self.body_fields.get(model._meta.label) or self.body_fields["*"]

    def article_id(self, page_id: int) -> str:
        return f"{self.article_id_prefix}{page_id}"

    def page_id(self, article_id) -> int | None:
        """The page id an article id names, or None when it is not one of ours."""
        text = str(article_id)
        if not text.startswith(self.article_id_prefix):
            return None
        rest = text[len(self.article_id_prefix):]
        return int(rest) if rest.isdigit() else None


def get_settings() -> AutotagSettings:
    raw = getattr(django_settings, "AUTOTAG", None)
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("settings.AUTOTAG must be a dict (see wagtail-autotag's README)")
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise ImproperlyConfigured(f"settings.AUTOTAG has unknown key(s): {', '.join(sorted(unknown))}")
    secrets = raw.get("CALLBACK_SECRET")
    secrets = (secrets,) if isinstance(secrets, str) else tuple(secrets or ())
    if not secrets or not all(isinstance(s, str) and s.startswith("whsec_") for s in secrets):
        raise ImproperlyConfigured("AUTOTAG['CALLBACK_SECRET'] must be a 'whsec_...' string or a list of them (rotation)")
    body_fields = raw.get("BODY_FIELDS", ["body"])
    if isinstance(body_fields, (list, tuple)):
        body_fields = {"*": body_fields}
    if not isinstance(body_fields, dict) or not all(isinstance(v, (list, tuple)) and v for v in body_fields.values()):
        raise ImproperlyConfigured("AUTOTAG['BODY_FIELDS'] must be a list of field names or a dict of model label -> list")
    body_fields = {label: tuple(fields) for label, fields in body_fields.items()}
    body_fields.setdefault("*", ("body",))
    delays = tuple(float(d) for d in raw.get("RETRY_DELAYS", DEFAULT_RETRY_DELAYS))
    if not delays or any(d <= 0 for d in delays):
        raise ImproperlyConfigured("AUTOTAG['RETRY_DELAYS'] must be a non-empty list of positive seconds")
    mirror = raw.get("TAGGIT_MIRROR") or {}
    if not isinstance(mirror, dict):
        raise ImproperlyConfigured("AUTOTAG['TAGGIT_MIRROR'] must be a dict of model label -> taggit field name")
    return AutotagSettings(
        service_url=_required(raw, "SERVICE_URL").rstrip("/"),
        token=_required(raw, "TOKEN"),
        callback_secrets=secrets,
        signing_secret=raw.get("SIGNING_SECRET") or None,
        client_id=raw.get("CLIENT_ID") or None,
        page_models=tuple(raw.get("PAGE_MODELS") or ()),
        body_fields=body_fields,
        article_id_prefix=str(raw.get("ARTICLE_ID_PREFIX", "page-")),
        timeout=float(raw.get("TIMEOUT", 5.0)),
        retry_delays=delays,
        send_on_commit=bool(raw.get("SEND_ON_COMMIT", True)),
        topics=tuple(raw.get("TOPICS") or ()),
        taggit_mirror=dict(mirror),
    )


def _required(raw: dict, key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(f"AUTOTAG['{key}'] is missing or not a non-empty string")
    return value
