"""`autotag-wagtail-demo [--articles FILE.jsonl] [--once]`: the autotag service (`autotag up`:
embedded Redis, a worker, the ingress) and a Wagtail site (sqlite under the data directory) on
loopback; a page per article, published through Wagtail's own publish path; one JSON line per
page once its tags are applied. Without --once it keeps running so a person can use the admin.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

DEFAULT_DATA_DIR = Path.home() / ".autotag" / "wagtail-demo"


def default_articles() -> Path | None:
    """examples/articles.jsonl of the autotag checkout this package was installed from."""
    try:
        import worker
    except ImportError:
        return None
    path = Path(worker.__file__).resolve().parent.parent / "examples" / "articles.jsonl"
    return path if path.exists() else None


def read_articles(path: Path) -> tuple[list[dict], list[str]]:
    """Good articles, and one error line per bad one (named by line number and field)."""
    articles, errors = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: malformed JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            errors.append(f"line {number}: not a JSON object")
            continue
        for field in ("id", "title", "body"):
            value = record.get(field)
            if field == "id" and isinstance(value, int) and not isinstance(value, bool):
                continue
            if not isinstance(value, str) or not value.strip():
                errors.append(f"line {number}: '{field}' is missing or not a non-empty string")
                break
        else:
            articles.append(record)
    return articles, errors


def demo_config(data_dir: Path, site_port: int) -> dict:
    """The run's secrets, kept under the data directory so that a second run reuses the site."""
    path = data_dir / "demo.json"
    if path.exists():
        config = json.loads(path.read_text())
    else:
        config = {"token": secrets.token_urlsafe(24), "callback_secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
                  "admin_password": secrets.token_urlsafe(12), "secret_key": secrets.token_urlsafe(40),
                  "article_prefix": f"demo{secrets.token_hex(3)}-page-"}
        path.write_text(json.dumps(config))
        path.chmod(0o600)
    config["callback_url"] = f"http://127.0.0.1:{site_port}/autotag/callback/"
    return config


def write_service_config(service_dir: Path, config: dict) -> Path:
    service_dir.mkdir(parents=True, exist_ok=True)
    path = service_dir / "autotag.toml"
    path.write_text("\n".join([
        "# written by autotag-wagtail-demo: the demo Wagtail site is the only client",
        f'data_dir = "{service_dir}"',
        "",
        "[[clients]]",
        'id = "wagtail-demo"',
        f'token = "{config["token"]}"',
        f'callback_url = "{config["callback_url"]}"',
        f'callback_secret = "{config["callback_secret"]}"',
        "allow_private_callback = true",
        "",
    ]))
    path.chmod(0o600)
    return path


def start_service(service_dir: Path, config_path: Path, port: int) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AUTOTAG_", "DJANGO_"))}
    env.update({"AUTOTAG_CONFIG": str(config_path), "AUTOTAG_DATA_DIR": str(service_dir)})
    log = open(service_dir / "service.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "worker.cli", "up", "--port", str(port)], env=env, stdout=log, stderr=log,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"autotag-wagtail-demo: the autotag service stopped at start; see {service_dir / 'service.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            pass
        time.sleep(0.2)
    stop_service(process)
    raise SystemExit(f"autotag-wagtail-demo: the autotag service was not ready within 120 s; see {service_dir / 'service.log'}")


def stop_service(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # `autotag up` stops its worker and embedded Redis on Ctrl-C
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()


def setup_django(data_dir: Path, site_port: int, service_port: int, config: dict, topics: list[str]) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "wagtail_autotag.demo.settings",
        "AUTOTAG_WAGTAIL_DATA_DIR": str(data_dir),
        "AUTOTAG_WAGTAIL_SECRET_KEY": config["secret_key"],
        "AUTOTAG_WAGTAIL_BASE_URL": f"http://127.0.0.1:{site_port}",
        "AUTOTAG_SERVICE_URL": f"http://127.0.0.1:{service_port}",
        "AUTOTAG_TOKEN": config["token"],
        "AUTOTAG_CALLBACK_SECRET": config["callback_secret"],
        "AUTOTAG_ARTICLE_ID_PREFIX": config["article_prefix"],
        "AUTOTAG_TOPICS": ",".join(topics),
    })
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def serve_site(port: int):
    """The site over HTTP on loopback (threads, static files served as runserver does)."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", port), QuietHandler)
    server.set_app(StaticFilesHandler(WSGIHandler()))
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-site").start()
    return server


def ensure_admin(password: str) -> str:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    if not user_model.objects.filter(username="admin").exists():
        user_model.objects.create_superuser("admin", "admin@example.com", password)
    return "admin"


def publish_articles(articles: list[dict]) -> list[tuple[dict, object]]:
    from django.db import transaction
    from django.utils.text import slugify
    from wagtail.models import Site
    from wagtail.rich_text import RichText

    from .models import ArticlePage

    parent = Site.objects.get(is_default_site=True).root_page
    run = secrets.token_hex(2)
    published = []
    for record in articles:
        with transaction.atomic():  # as the admin does: the outbox row commits with the publish
            page = parent.add_child(instance=ArticlePage(title=record["title"][:255], slug=f"{slugify(str(record['id']))[:40]}-{run}",
                                                         body=[("paragraph", RichText(record["body"]))]))
            page.save_revision().publish()
        page.refresh_from_db()
        published.append((record, page))
    return published


def page_line(record: dict, page) -> dict:
    from wagtail_autotag.models import PageTag

    rows = PageTag.objects.filter(page_id=page.pk).order_by("-score", "tag")

    def tags(status, kind):
        return [{("tag" if kind == "topic" else "code"): row.tag, **({"name": row.name} if kind == "region" else {}),
                 "score": row.score, "evidence": row.evidence, "by": row.by} for row in rows if row.status == status and row.kind == kind]

    return {"page_id": page.pk, "article_id": record["id"], "topics": tags("applied", "topic"), "regions": tags("applied", "region"),
            "suggested": {"topics": tags("suggested", "topic"), "regions": tags("suggested", "region")}}


def wait_for_tags(published, timeout: float) -> list:
    """Print each page's line once its live revision's tags are applied; returns the pages that timed out."""
    from wagtail_autotag.models import PageTagState

    waiting = list(published)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        record, page = waiting[0]
        state = PageTagState.objects.filter(page_id=page.pk).first()
        if state and state.applied_revision == page.live_revision_id:
            print(json.dumps(page_line(record, page), ensure_ascii=False), flush=True)
            waiting.pop(0)
        else:
            time.sleep(0.1)
    return waiting


def outbox_loop(stop: threading.Event) -> None:
    """What the site's cron would do: send due outbox messages (retries) every few seconds."""
    from django.db import close_old_connections

    from wagtail_autotag.outbox import deliver_due

    while not stop.wait(5):
        try:
            deliver_due()
        finally:
            close_old_connections()


def model_topics() -> list[str]:
    try:
        from worker.engine.artifacts import default_bundle_path

        manifest = json.loads((Path(default_bundle_path()) / "manifest.json").read_text())
        return list(manifest.get("labels") or manifest.get("topics") or [])
    except Exception:  # the add-a-tag box then only suggests topics already seen
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autotag-wagtail-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=Path, default=None, help="JSONL, one article a line: id, title, body (default: examples/articles.jsonl)")
    parser.add_argument("--once", action="store_true", help="stop once every page's tags are applied")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("AUTOTAG_WAGTAIL_DEMO_DIR", DEFAULT_DATA_DIR)))
    parser.add_argument("--port", type=int, default=8000, help="the Wagtail site's port (default 8000)")
    parser.add_argument("--service-port", type=int, default=8081, help="the autotag ingress' port (default 8081)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every page's tags (default 300)")
    args = parser.parse_args(argv)

    articles_path = args.articles or default_articles()
    if articles_path is None or not articles_path.exists():
        parser.error(f"no articles file: {articles_path or 'examples/articles.jsonl not found'}; pass --articles FILE.jsonl")
    articles, errors = read_articles(articles_path)
    for error in errors:
        print(f"autotag-wagtail-demo: {articles_path}: {error} (skipped)", file=sys.stderr)
    if not articles:
        print(f"autotag-wagtail-demo: no article to publish in {articles_path}", file=sys.stderr)
        return 1

    args.data_dir.mkdir(parents=True, exist_ok=True)
    config = demo_config(args.data_dir, args.port)
    service_dir = args.data_dir / "autotag"
    service = start_service(service_dir, write_service_config(service_dir, config), args.service_port)
    stop = threading.Event()
    server = None
    try:
        setup_django(args.data_dir, args.port, args.service_port, config, model_topics())
        server = serve_site(args.port)
        user = ensure_admin(config["admin_password"])
        print(f"autotag-wagtail-demo: Wagtail admin at http://127.0.0.1:{args.port}/admin/  login {user} / {config['admin_password']}",
              file=sys.stderr, flush=True)
        threading.Thread(target=outbox_loop, args=(stop,), daemon=True, name="demo-outbox").start()
        published = publish_articles(articles)
        late = wait_for_tags(published, args.timeout)
        for record, page in late:
            print(f"autotag-wagtail-demo: no tags for article {record['id']} (page {page.pk}) within {args.timeout:g}s", file=sys.stderr)
        if args.once:
            return 1 if late or errors else 0
        print("autotag-wagtail-demo: running; open the admin above, Ctrl-C stops everything", file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
    finally:
        stop.set()
        if server is not None:
            server.shutdown()
        from wagtail_autotag.outbox import sender

        sender.wait_idle(10)
        stop_service(service)


if __name__ == "__main__":
    sys.exit(main())
