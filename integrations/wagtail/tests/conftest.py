"""The plugin's tests: a real Wagtail site (sqlite in a temp dir) served on a loopback port by
pytest-django's live_server, and the real autotag stack posting signed callbacks to it.

Django is configured here, not globally, so the repository's other tests run beside these in
one pytest invocation without Django settings of their own."""

import os
import secrets
import tempfile

_TMP = tempfile.mkdtemp(prefix="autotag-wagtail-tests-")
os.environ["DJANGO_SETTINGS_MODULE"] = "wagtail_autotag.demo.settings"
os.environ["AUTOTAG_WAGTAIL_DATA_DIR"] = _TMP
# a file, not :memory:: the outbox's sending thread and the live server need their own connections
os.environ["AUTOTAG_WAGTAIL_TEST_DB"] = os.path.join(_TMP, "test.sqlite3")
os.environ["AUTOTAG_ARTICLE_ID_PREFIX"] = f"t{secrets.token_hex(3)}-page-"

import django  # noqa: E402

django.setup()

import pytest  # noqa: E402
from django.conf import settings  # noqa: E402

from autotag_stack import AutotagStack  # noqa: E402


@pytest.fixture(scope="session")
def autotag_service(live_server, tmp_path_factory):
    """The autotag service, its callbacks aimed at the live Wagtail site; the plugin's settings
    point at it for the whole session."""
    stack = AutotagStack(tmp_path_factory.mktemp("autotag"), live_server.url + "/autotag/callback/").start()
    settings.AUTOTAG.update(stack.plugin_settings(), RETRY_DELAYS=[0.2, 0.5, 1.0])
    yield stack
    stack.stop()


@pytest.fixture
def site_root(transactional_db):
    """The tree a fresh Wagtail site has (a transactional test's flush removes it): root, home, Site."""
    from wagtail.models import Locale, Page, Site

    Locale.objects.get_or_create(language_code="en")
    root = Page.get_first_root_node() or Page.add_root(instance=Page(title="Root", slug="root"))
    home = root.get_children().first()
    if home is None:
        home = root.add_child(instance=Page(title="Newsroom", slug="newsroom"))
    Site.objects.update_or_create(is_default_site=True, defaults={"hostname": "127.0.0.1", "port": 80, "root_page": home})
    yield home
    wait_for_outbox_threads()


def wait_for_outbox_threads(timeout: float = 20.0) -> None:
    """What the sender thread was handed is tried before the test's database is flushed."""
    from wagtail_autotag.outbox import sender

    sender.wait_idle(timeout)
