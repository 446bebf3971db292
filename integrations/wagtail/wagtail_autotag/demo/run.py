"""`autotag-wagtail-demo`: the autotag service and a Wagtail site on loopback, one published page
per article, one JSON line per page once its tags are applied, and another whenever a later
version of the page's story changes them: the last line for a page is its final state.

    autotag-wagtail-demo [--articles FILE.jsonl] [--once] [--data-dir DIR] [--port 8000]

The service is `autotag up` (embedded Redis, a worker, the ingress) in a subprocess; the site is
this package's demo project (sqlite under the data directory) served by Django's threaded WSGI
server in this process, with the outbox swept every second as `manage.py autotag_outbox --loop`
would. Each article becomes an ArticlePage published through Wagtail's own path
(`save_revision().publish()`), so the plugin's signal handler, outbox, the service and the signed
callback do the rest. JSON lines go to standard output; the admin login and progress to
standard error. Without --once it keeps serving until Ctrl-C so a person can open the admin.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

EXIT_OK, EXIT_BAD_INPUT, EXIT_FAILED = 0, 1, 2
TITLE_MAX = 255  # Wagtail's Page.title


class DemoError(Exception):
    """Something the demo cannot go on without; printed as one `autotag-wagtail-demo: ...` line."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except DemoError as exc:
        print(f"autotag-wagtail-demo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autotag-wagtail-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=Path, default=None,
                        help="JSONL, one article a line: id, title, body (default: the repository's examples/articles.jsonl)")
    parser.add_argument("--once", action="store_true", help="stop once every page's tags are applied (default: keep serving)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="site database, service state and logs (default: $AUTOTAG_WAGTAIL_DATA_DIR or ~/.autotag/wagtail-demo)")
    parser.add_argument("--port", type=int, default=8000, help="the Wagtail site's loopback port (default 8000; 0 picks a free one)")
    parser.add_argument("--service-port", type=int, default=0, help="the autotag ingress' loopback port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for all pages' tags (default 300)")
    return parser


# ---------------------------------------------------------------- articles


def read_articles(path: Path) -> tuple[list[dict], list[str]]:
    """The good articles and one error line per bad one (line number, id when known, field)."""
    articles, errors, seen = [], [], set()
    try:
        raw_lines = path.read_bytes().split(b"\n")
    except OSError as exc:
        raise DemoError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for number, raw in enumerate(raw_lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            errors.append(_error(path, number, None, "line", "not UTF-8"))
            continue
        except json.JSONDecodeError as exc:
            errors.append(_error(path, number, None, "line", f"malformed JSON ({exc.msg})"))
            continue
        if not isinstance(record, dict):
            errors.append(_error(path, number, None, "line", "not a JSON object"))
            continue
        article_id = record.get("id")
        if isinstance(article_id, bool) or not isinstance(article_id, (str, int)) or str(article_id).strip() == "":
            errors.append(_error(path, number, None, "id", "missing, empty or not a string"))
            continue
        problem = None
        for field in ("title", "body"):
            if not isinstance(record.get(field), str) or (field == "body" and not record[field].strip()):
                problem = (field, "missing, empty or not a string")
                break
        if problem is None and len(record["title"]) > TITLE_MAX:
            problem = ("title", f"longer than a Wagtail page title may be ({len(record['title'])} > {TITLE_MAX} characters)")
        if problem is None and str(article_id) in seen:
            problem = ("id", "the same id as an earlier line")
        if problem:
            errors.append(_error(path, number, article_id, *problem))
            continue
        seen.add(str(article_id))
        articles.append({"id": article_id, "title": record["title"], "body": record["body"], "line": number})
    return articles, errors


def _error(path: Path, line: int, article_id, field: str, message: str) -> str:
    return json.dumps({"error": message, "file": str(path), "line": line, "id": article_id, "field": field}, ensure_ascii=False)


def body_html(body: str) -> str:
    """An article body as a rich-text field holds it: HTML as it is, plain text one <p> per line
    (what pasting it into Wagtail's editor gives)."""
    from worker.engine.text import looks_like_html

    if looks_like_html(body):
        return body
    return "".join(f"<p>{html.escape(line.strip(), quote=False)}</p>" for line in body.splitlines() if line.strip())


# ---------------------------------------------------------------- the service


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _free_port() -> int:
    from worker.service.up import free_port

    return free_port()


class Service:
    """`autotag up` in a subprocess, configured for this site: its own config, embedded Redis and
    data under `<data dir>/service`, callbacks to the site, inbound events signed."""

    def __init__(self, data_dir: Path, port: int, callback_url: str):
        self.dir = data_dir / "service"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.token = secrets.token_urlsafe(24)
        self.signing_secret = _new_secret()
        self.callback_secret = _new_secret()
        self.callback_url = callback_url
        self.process: subprocess.Popen | None = None
        self.log_path = self.dir / "service.log"

    def start(self, timeout: float = 120.0) -> "Service":
        import httpx

        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "autotag.toml"
        config.write_text("\n".join([
            "# Written by autotag-wagtail-demo at every start: the demo site is the only client.",
            f"data_dir = {json.dumps(str(self.dir))}",
            "",
            "[[clients]]",
            'id = "wagtail-demo"',
            f"token = {json.dumps(self.token)}",
            f"signing_secret = {json.dumps(self.signing_secret)}",
            f"callback_url = {json.dumps(self.callback_url)}",
            f"callback_secret = {json.dumps(self.callback_secret)}",
            "allow_private_callback = true",
            "",
        ]), encoding="utf-8")
        config.chmod(0o600)
        env = {key: value for key, value in os.environ.items() if not key.startswith("AUTOTAG_") and key != "DJANGO_SETTINGS_MODULE"}
        env.update({"AUTOTAG_CONFIG": str(config), "AUTOTAG_DATA_DIR": str(self.dir)})
        if os.environ.get("AUTOTAG_MODEL"):
            env["AUTOTAG_MODEL"] = os.environ["AUTOTAG_MODEL"]
        log = open(self.log_path, "ab")
        # a session of its own: Ctrl-C reaches this process only, which then stops the service in order
        self.process = subprocess.Popen([sys.executable, "-m", "worker.cli", "up", "--port", str(self.port)], env=env,
                                        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(f"the autotag service exited at start; see {self.log_path}:\n{_tail(self.log_path)}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise DemoError(f"the autotag service was not ready within {timeout:g}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # `autotag up` stops its worker and Redis in order
        try:
            self.process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-size:]
    except OSError:
        return ""


# ---------------------------------------------------------------- the site


def configure_django(data_dir: Path, site_port: int, service: Service) -> None:
    """The demo project's settings read these before Django starts."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "wagtail_autotag.demo.settings"
    os.environ["AUTOTAG_WAGTAIL_DATA_DIR"] = str(data_dir)
    os.environ["AUTOTAG_WAGTAIL_BASE_URL"] = f"http://127.0.0.1:{site_port}"
    os.environ["AUTOTAG_SERVICE_URL"] = service.url
    os.environ["AUTOTAG_TOKEN"] = service.token
    os.environ["AUTOTAG_SIGNING_SECRET"] = service.signing_secret
    os.environ["AUTOTAG_CALLBACK_SECRET"] = service.callback_secret
    os.environ.setdefault("AUTOTAG_TOPICS", ",".join(_service_topics()))
    import django

    django.setup()
    from django.conf import settings

    settings.AUTOTAG["CLIENT_ID"] = "wagtail-demo"
    settings.AUTOTAG["RETRY_DELAYS"] = [1.0, 2.0, 5.0, 10.0]


def _service_topics() -> list[str]:
    """The topics the shipped model knows, so the panel's "add a tag" offers and checks them."""
    try:
        import worker

        manifest = Path(worker.__file__).resolve().parent.parent / "models" / "bundle" / "manifest.json"
        return list(json.loads(manifest.read_text(encoding="utf-8"))["labels"])
    except (OSError, ValueError, KeyError):
        return []


def prepare_site(site_port: int):
    """Migrate, point the default Site at the loopback port, and (re)make the admin user with a
    fresh password; answers the parent page for the articles, the user and the password."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from wagtail.models import Page, Site

    call_command("migrate", interactive=False, verbosity=0)
    site = Site.objects.filter(is_default_site=True).first()
    if site is None:
        root = Page.get_first_root_node()
        home = root.get_children().first() or root.add_child(instance=Page(title="Newsroom", slug="newsroom"))
        site = Site.objects.create(hostname="127.0.0.1", port=site_port, root_page=home, is_default_site=True, site_name="autotag demo")
    else:
        site.hostname, site.port = "127.0.0.1", site_port
        site.save()
    password = secrets.token_urlsafe(9)
    user = get_user_model().objects.filter(username="admin").first()
    if user is None:
        user = get_user_model().objects.create_superuser("admin", "admin@example.com", password)
    else:
        user.set_password(password)
        user.is_superuser = user.is_staff = user.is_active = True
        user.save()
    return site.root_page.specific, user, password


class SiteServer:
    """The Wagtail site on Django's threaded WSGI server, static files included, in this process."""

    def __init__(self, port: int):
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
        from django.core.wsgi import get_wsgi_application

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, format, *args):  # the service's callbacks would fill the terminal
                pass

        try:
            self.server = ThreadedWSGIServer(("127.0.0.1", port), QuietHandler, allow_reuse_address=True)
        except OSError as exc:
            raise DemoError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pass --port") from exc
        self.server.set_app(StaticFilesHandler(get_wsgi_application()))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="wagtail-site", daemon=True)

    def start(self) -> "SiteServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OutboxSweeper:
    """What `manage.py autotag_outbox --loop` does in production, as a thread: anything the
    after-commit send could not deliver is retried when due."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="autotag-outbox-sweeper", daemon=True)

    def start(self) -> "OutboxSweeper":
        self.thread.start()
        return self

    def _run(self) -> None:
        from django.db import close_old_connections, connection

        from wagtail_autotag import outbox

        while not self.stopping.wait(self.interval):
            try:
                close_old_connections()
                outbox.deliver_due()
            except Exception as exc:  # a locked database or the like: the next pass tries again
                print(f"autotag-wagtail-demo: outbox pass failed ({type(exc).__name__}: {exc}); retrying", file=sys.stderr)
            finally:
                connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


# ---------------------------------------------------------------- pages


def publish_article(parent, article: dict, user):
    """The article's page (made, or found by its slug from an earlier run and updated), published
    through Wagtail's own path; answers the page and the published revision's id."""
    from django.utils.text import slugify
    from wagtail.rich_text import RichText

    from wagtail_autotag.demo.models import ArticlePage

    slug = (slugify(str(article["id"])) or "article")[:200]
    page = ArticlePage.objects.child_of(parent).filter(slug=slug).first()
    body = [("paragraph", RichText(body_html(article["body"])))]
    if page is None:
        page = parent.add_child(instance=ArticlePage(title=article["title"], slug=slug, body=body, owner=user, live=False))
    else:
        page.title, page.body = article["title"], body
    revision = page.save_revision(user=user, log_action=True)
    revision.publish(user=user)
    return page, revision.pk


SETTLE_SECONDS = 3.0  # no callback applied for this long: the story updates, if any, have come


def page_line(page, article: dict) -> dict:
    """The JSON line for a page: its applied tags and suggestions as `autotag tag` shapes them."""
    from wagtail_autotag.models import REGION, PageTag

    rows = sorted(PageTag.objects.filter(page_id=page.pk), key=lambda r: (-(r.score if r.score is not None else 2.0), r.tag))

    def shape(row):
        if row.kind == REGION:
            return {"code": row.tag, "name": row.name, "score": row.score, "evidence": row.evidence, "by": row.by}
        return {"tag": row.tag, "score": row.score, "evidence": row.evidence, "by": row.by}

    def pick(status, kind):
        return [shape(row) for row in rows if row.status == status and row.kind == kind]

    return {"page_id": page.pk, "article_id": article["id"],
            "topics": pick(PageTag.APPLIED, "topic"), "regions": pick(PageTag.APPLIED, REGION),
            "suggested": {"topics": pick(PageTag.SUGGESTED, "topic"), "regions": pick(PageTag.SUGGESTED, REGION)}}


def wait_and_print(published: list, timeout: float, settle: float = SETTLE_SECONDS) -> list:
    """Print each page's line as soon as its revision's tags are applied, and again whenever a
    later callback changes them (a later version of its story gives it the story's tags: reason
    "story"), so the last line printed for a page is its final state; returns once every page
    has its tags and no callback has been applied for `settle` seconds, with the pages that
    never got theirs."""
    from django.db import close_old_connections

    from wagtail_autotag.models import PageTagState, ReceivedCallback

    waiting = list(published)
    by_page = {page.pk: (page, article) for page, _, article in published}
    printed: set = set()
    last_seen = ReceivedCallback.objects.order_by("-id").values_list("id", flat=True).first() or 0
    quiet_since = time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        close_old_connections()
        later = list(ReceivedCallback.objects.filter(id__gt=last_seen, outcome="applied").values_list("id", "page_id"))
        if later:
            last_seen, quiet_since = max(i for i, _ in later), time.monotonic()
            for page_id in dict.fromkeys(page_id for _, page_id in later):
                if page_id in printed:
                    page, article = by_page[page_id]
                    print(json.dumps(page_line(page, article), ensure_ascii=False), flush=True)
        applied = dict(PageTagState.objects.filter(page_id__in=[p.pk for p, _, _ in waiting]).values_list("page_id", "applied_revision"))
        still = []
        for page, revision_id, article in waiting:
            if applied.get(page.pk) is not None and applied[page.pk] >= revision_id:
                print(json.dumps(page_line(page, article), ensure_ascii=False), flush=True)
                printed.add(page.pk)
            else:
                still.append((page, revision_id, article))
        waiting = still
        if not waiting and time.monotonic() - quiet_since >= settle:
            break
        time.sleep(0.2)
    return waiting


# ---------------------------------------------------------------- the run


def default_articles() -> Path:
    """The repository's examples/articles.jsonl (beside the `worker` package of an editable install)."""
    try:
        import worker
    except ImportError as exc:
        raise DemoError("the autotag service is not installed: pip install -e <the autotag repository>") from exc
    path = Path(worker.__file__).resolve().parent.parent / "examples" / "articles.jsonl"
    if not path.exists():
        raise DemoError(f"no default articles at {path}; pass --articles FILE.jsonl")
    return path


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM (systemd, `kill`) both stop the demo in order: the service, then the site.
    SIGINT is restored too: a shell starting the demo in the background would leave it ignored."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def run(args) -> int:
    _stop_on_signals()
    try:
        import worker  # noqa: F401  (the service this demo starts)
    except ImportError as exc:
        raise DemoError("the autotag service is not installed: pip install -e <the autotag repository>") from exc
    articles_path = args.articles or default_articles()
    articles, errors = read_articles(articles_path)
    for line in errors:
        print(line, file=sys.stderr)
    data_dir = (args.data_dir or Path(os.environ.get("AUTOTAG_WAGTAIL_DATA_DIR") or Path.home() / ".autotag" / "wagtail-demo")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (data_dir / "site.sqlite3").exists():
        # a new site numbers its pages and revisions from 1 again: the service must forget the old ones
        shutil.rmtree(data_dir / "service", ignore_errors=True)
    site_port = args.port or _free_port()
    service_port = args.service_port or _free_port()
    service = Service(data_dir, service_port, f"http://127.0.0.1:{site_port}/autotag/callback/")
    configure_django(data_dir, site_port, service)
    parent, user, password = prepare_site(site_port)
    site = SiteServer(site_port).start()
    sweeper = None
    try:
        print(f"autotag-wagtail-demo: starting the autotag service on {service.url} (log: {service.log_path})", file=sys.stderr)
        service.start()
        sweeper = OutboxSweeper().start()
        print(f"autotag-wagtail-demo: Wagtail admin at http://127.0.0.1:{site.port}/admin/  login: admin  password: {password}",
              file=sys.stderr)
        published = []
        for article in articles:
            page, revision_id = publish_article(parent, article, user)
            published.append((page, revision_id, article))
        print(f"autotag-wagtail-demo: published {len(published)} page(s) from {articles_path}; waiting for their tags", file=sys.stderr)
        missing = wait_and_print(published, args.timeout)
        for page, revision_id, article in missing:
            print(_error(articles_path, article["line"], article["id"], "tags",
                         f"no tags for page {page.pk} revision {revision_id} within {args.timeout:g}s (see {service.log_path})"),
                  file=sys.stderr)
        if not args.once:
            print(f"autotag-wagtail-demo: serving http://127.0.0.1:{site.port}/admin/ (login admin / {password}); Ctrl-C stops",
                  file=sys.stderr)
            while True:
                time.sleep(3600)
        return EXIT_FAILED if missing else (EXIT_BAD_INPUT if errors else EXIT_OK)
    finally:
        if sweeper:
            sweeper.stop()
        service.stop()
        site.stop()
        print("autotag-wagtail-demo: stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
