"""`autotag` commands: thin wrappers over the functions the service itself calls.

    autotag tag INPUT            JSONL articles (or - for stdin) -> one JSON line of tags each
    autotag evaluate --data F    precision / recall / F1 against labeled articles
    autotag train                corpus (+ archive exports' editor decisions) -> model bundle
    autotag bench                in-process throughput, load time and peak memory
    autotag up                   the whole service on one machine (embedded Redis unless configured)
    autotag status               is it up: Redis, workers, queues, deliveries, recent traffic, re-tag runs
    autotag serve | worker       the HTTP ingress or a Celery worker alone (production)
    autotag deliveries           pending and dead callback deliveries
    autotag redeliver ID|--all-dead   put dead deliveries back on the schedule
    autotag retag EXPORT         re-tag an archive export (dry-run diff, callbacks, resume)
    autotag feedback report      what editors decided, per tag and model version
    autotag check                the configuration, before starting: secrets, callback hosts, model bundle
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import BinaryIO

from .engine.artifacts import default_bundle_path, read_manifest
from .errors import AutotagError, InputError
from .jsonl import read_records

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2
_TAG_BATCH = 64
STORY_BLOCK = 2000  # articles held at once by `autotag tag` while their stories are found (about 3 KB each)
MODEL_HELP = "model bundle directory (default: $AUTOTAG_MODEL, else the shipped models/bundle)"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING, format="%(message)s")
    try:
        return args.run(args)
    except AutotagError as exc:
        print(f"autotag: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default when it means something (not None, False or an empty list)."""

    def _get_help_string(self, action):
        if action.default in (None, False, []) or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's help shows the defaults: subparsers are made of the parser's own class."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (0 articles or 0 runs measure nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="autotag", description="Topic and country tags for news articles.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    tag = commands.add_parser("tag", help="tag JSONL articles: one JSON result line per input line")
    tag.add_argument("input", help="JSONL file with id, title, body per line, or - for stdin")
    tag.add_argument("--model", type=Path, default=None, help=MODEL_HELP)
    tag.add_argument("--max-body-bytes", type=int, default=2 * 1024 * 1024, help="reject bodies larger than this many bytes (2 MiB)")
    tag.add_argument("--stories", choices=("shared", "suggest", "off"), default="shared",
                     help="versions of one story: one tag set (shared), the others' tags as suggestions, or off")
    tag.add_argument("--story-block", type=_positive_int, default=STORY_BLOCK, metavar="N",
                     help="stories are looked for within blocks of N consecutive articles: memory stays bounded")
    tag.set_defaults(run=_run_tag)

    evaluate = commands.add_parser("evaluate", help="score the model against labeled articles")
    evaluate.add_argument("--data", type=Path, required=True, help="JSONL with id, title, body, topics, regions, regions_optional")
    evaluate.add_argument("--model", type=Path, default=None, help=MODEL_HELP)
    evaluate.add_argument("--json", action="store_true", help="print the full report as JSON")
    evaluate.add_argument("--worst", type=int, default=10, help="how many of the worst errors to list")
    evaluate.add_argument("--stories", choices=("shared", "suggest", "off"), default="shared", help="how versions of one story are tagged")
    evaluate.add_argument("--html", type=Path, default=None, metavar="FILE",
                          help="also write a self-contained HTML report with figures (precision/recall against the threshold, per tag, per country, worst errors)")
    evaluate.set_defaults(run=_run_evaluate)

    train = commands.add_parser("train", help="train a model bundle from a corpus")
    train.add_argument("--corpus", type=Path, default=_repo_path("models", "corpus"), help="corpus .jsonl file or directory")
    train.add_argument("--out", type=Path, default=None, help="bundle directory to write (default: models/bundle)")
    train.add_argument("--folds", type=int, default=5, help="cross-validation folds for thresholds")
    train.add_argument("--archive", type=Path, action="append", default=[], metavar="EXPORT",
                       help="an archive export in the re-tag format whose editor decisions join the corpus (repeatable); "
                            "prints cross-validated figures without and with it")
    train.add_argument("-v", "--verbose", action="store_true", help="log each training step")
    train.set_defaults(run=_run_train)

    bench = commands.add_parser("bench", help="measure in-process speed, load time and memory")
    bench.add_argument("--model", type=Path, default=None, help=MODEL_HELP)
    bench.add_argument("--articles", type=_positive_int, default=2000, help="articles per measurement")
    bench.add_argument("--corpus", type=Path, default=_repo_path("models", "corpus"), help="where the benchmark's articles come from")
    bench.add_argument("--repeats", type=_positive_int, default=5, help="timed runs; the best and the median are reported")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.set_defaults(run=_run_bench)

    up = commands.add_parser("up", help="run Redis (embedded unless configured), a worker and the ingress; Ctrl-C stops all")
    up.add_argument("--config", type=Path, default=None, help="TOML config (default: $AUTOTAG_CONFIG or ~/.autotag/autotag.toml, written on first run)")
    up.add_argument("--host", default="127.0.0.1", help="address the ingress listens on")
    up.add_argument("--port", type=int, default=8080, help="port the ingress listens on (the demo's callbacks follow it)")
    up.add_argument("--demo", action="store_true", help="publish examples/articles.jsonl through the ingress once ready and print the callbacks")
    up.add_argument("--once", action="store_true", help="with --demo: stop after the demo's callbacks arrived")
    up.add_argument("-v", "--verbose", action="store_true", help="show the worker's own output (else in worker.log in the data directory)")
    up.set_defaults(run=_run_up)

    status = commands.add_parser("status", help="the running service at a glance; exit status 1 when something is down")
    status.add_argument("--json", action="store_true", help="one JSON object, for scripts and monitoring")
    status.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for the workers' answers")
    status.set_defaults(run=_run_status)

    serve = commands.add_parser("serve", help="run the HTTP ingress alone (needs redis_url)")
    serve.add_argument("--host", default=None, help="address to listen on (default: the config's host, else 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default: the config's port, else 8080)")
    serve.set_defaults(run=_run_serve)

    worker = commands.add_parser("worker", help="run a Celery worker alone (needs redis_url)")
    worker.add_argument("--concurrency", type=int, default=None, help="worker processes (default: one per core)")
    worker.add_argument("--loglevel", default="WARNING", help="Celery's log level (DEBUG, INFO, WARNING, ERROR)")
    worker.add_argument("--task-events", action="store_true", help="send task events from the start (Flower shows them)")
    worker.set_defaults(run=_run_worker)

    check = commands.add_parser("check", help="check the configuration before starting: secrets, callback hosts, model bundle")
    check.set_defaults(run=_run_check)

    deliveries = commands.add_parser("deliveries", help="list pending and dead callback deliveries")
    deliveries.add_argument("--dead", action="store_true", help="only dead deliveries")
    deliveries.add_argument("--limit", type=_positive_int, default=50, help="list at most this many of each (pending, dead)")
    deliveries.add_argument("--json", action="store_true", help="one JSON object per delivery (timestamps in ISO 8601 UTC)")
    deliveries.set_defaults(run=_run_deliveries)

    redeliver = commands.add_parser("redeliver", help="put dead deliveries back on the schedule, due now")
    redeliver.add_argument("ids", nargs="*", help="delivery ids (webhook-id values)")
    redeliver.add_argument("--all-dead", action="store_true", help="every dead delivery (none dead: prints so and exits 0)")
    redeliver.set_defaults(run=_run_redeliver)

    retag = commands.add_parser("retag", help="re-tag an archive export: dry-run diff, results file, or callbacks")
    retag.add_argument("input", nargs="?", type=Path, help="JSONL export: article fields plus optional current_tags")
    retag.add_argument("--local", action="store_true", help="run in this process, no broker")
    retag.add_argument("--dry-run", action="store_true", help="deliver nothing; report what would change per article and per tag")
    retag.add_argument("--no-callback", action="store_true", help="deliver nothing (with --out: just write the results)")
    retag.add_argument("--out", type=Path, default=None, help="write one result line per article here")
    retag.add_argument("--report", type=Path, default=None, help="where the JSON report goes (default: in the run's directory)")
    retag.add_argument("--client", default=None, help="which configured client's callback receives the tags")
    retag.add_argument("--rate", type=float, default=20.0, help="at most this many callbacks per second")
    retag.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run")
    retag.add_argument("--status", metavar="RUN_ID", help="show a run's progress")
    retag.add_argument("--json", action="store_true", help="with --status: as JSON")
    retag.add_argument("--model", type=Path, default=None, help=MODEL_HELP)
    retag.add_argument("--max-body-bytes", type=int, default=2 * 1024 * 1024, help="skip, as a bad line, an article whose body is larger (bytes)")
    retag.add_argument("--stories", choices=("shared", "suggest", "off"), default=None,
                       help="versions of one story within a chunk: one tag set (default: the client's story_tags, else shared)")
    retag.set_defaults(run=_run_retag)

    feedback = commands.add_parser("feedback", help="what editors decided about the model's tags")
    feedback_commands = feedback.add_subparsers(required=True, metavar="SUBCOMMAND")
    report = feedback_commands.add_parser("report", help="per tag and model version: kept, rejected, accepted, added; best threshold")
    report.add_argument("--client", default=None, help="one configured client (default: all)")
    report.add_argument("--since", default=None, help="only decisions stored since this date (YYYY-MM-DD or an ISO timestamp, UTC)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--model", type=Path, default=None, help="the bundle whose thresholds count as current (default: as configured)")
    report.set_defaults(run=_run_feedback_report)
    return parser


def _run_tag(args) -> int:
    from .engine.tagging import Tagger, parse_article

    tagger = Tagger.load(args.model)
    stream = sys.stdin.buffer if args.input == "-" else _open_input(args.input)
    failed = 0
    batch = []
    out = sys.stdout
    # without stories every 64 articles go out as they are tagged; with them, a block is tagged
    # and harmonised together, so versions of one story within a block get one tag set
    size = _TAG_BATCH if args.stories == "off" else max(1, args.story_block)

    def flush():
        articles = [article for _, article in batch]
        for start in range(0, len(articles), size):
            for result in tagger.tag_many(articles[start : start + size], stories=args.stories):
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
        batch.clear()

    for line_no, record, problem in read_records(stream, max_bytes=args.max_body_bytes + 64 * 1024):
        try:
            if problem:
                raise problem
            batch.append((line_no, parse_article(record, max_body_bytes=args.max_body_bytes, line_no=line_no)))
        except InputError as exc:
            failed += 1
            _report_line_error(exc, line_no)
            continue
        if len(batch) >= size:
            flush()
    flush()
    out.flush()
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _report_line_error(exc: InputError, line_no: int) -> None:
    error = {"line": exc.line_no or line_no, "error": str(exc)}
    if exc.article_id is not None:
        error["id"] = exc.article_id
    if exc.field:
        error["field"] = exc.field
    print(json.dumps(error, ensure_ascii=False), file=sys.stderr)


def _run_evaluate(args) -> int:
    from .engine.evaluation import format_report, score, story_report
    from .engine.gold import read_gold
    from .engine.tagging import Tagger, country_names

    if args.html and not args.html.parent.is_dir():
        raise InputError(f"cannot write the HTML report to {args.html}: no directory {args.html.parent}; name a file in an existing directory")
    tagger = Tagger.load(args.model)
    aliases = json.loads(((args.model or default_bundle_path()) / "aliases.json").read_text(encoding="utf-8"))
    known_regions = set(country_names()) & {row[1] for row in aliases}  # ISO codes the gazetteer can find
    with _open_input(args.data) as stream:
        gold, articles = read_gold(stream, str(args.data), tagger.labels, known_regions)
    results = tagger.tag_many(articles, stories=args.stories)
    report = score(gold, results, tagger.labels, worst=args.worst)
    report["model_version"] = tagger.model_version
    report["stories"] = story_report(gold, tagger, articles)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report))
    if args.html:
        _write_evaluation_html(args, report, gold, articles, results, tagger)
    return EXIT_OK


def _write_evaluation_html(args, report, gold, articles, results, tagger) -> None:
    from .engine.evaluation_report import render
    from .engine.tagging import country_names

    page = render(report, gold, [a.title for a in articles], results, tagger.scores(articles), tagger.manifest["thresholds"],
                  country_names(), source=args.data.name)
    try:
        args.html.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the HTML report to {args.html}: {exc.strerror}; name a writable file with --html") from exc
    print(f"autotag: HTML report written to {args.html}", file=sys.stderr)


def _run_train(args) -> int:
    from .engine.training import TrainingOptions, train

    out = args.out or default_bundle_path()
    if args.archive:
        return _train_with_archive(args, out)
    train(args.corpus, out, TrainingOptions(folds=args.folds))
    manifest = read_manifest(out)
    metrics = manifest["metrics"]["cross_validated"]
    print(f"wrote {out} (model {manifest['model_version']}, {manifest['corpus']['articles']} articles)")
    for label, m in metrics["topics"].items():
        t = manifest["thresholds"]["topics"][label]
        print(f"  {label:<16} cv P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f}  accept {t['accept']:.2f} review {t['review']:.2f}")
    m, t = metrics["regions"], manifest["thresholds"]["regions"]
    print(f"  {'regions':<16} cv P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f}  accept {t['accept']:.2f} review {t['review']:.2f}")
    return EXIT_OK


def _train_with_archive(args, out: Path) -> int:
    from .engine.comparison import format_comparison
    from .engine.corpus import load_corpus
    from .engine.reviewed import load_reviewed
    from .engine.training import TrainingOptions, train

    corpus = load_corpus(args.corpus)
    archive = load_reviewed(args.archive, corpus.labels)
    for error in archive.bad_lines:
        print(json.dumps(error, ensure_ascii=False), file=sys.stderr)
    for warning in archive.warnings():
        print(f"autotag: warning: {warning}", file=sys.stderr)
    print(archive.summary())
    print(f"training twice, to compare: {args.folds}-fold cross-validation of the corpus alone and of corpus + archive "
          "over the same folds; the bundle is the one trained on corpus + archive", flush=True)
    manifest = train(corpus, out, TrainingOptions(folds=args.folds), archive)
    print(f"wrote {out} (model {read_manifest(out)['model_version']}, {manifest['corpus']['articles']} corpus articles "
          f"+ {manifest['archive']['articles']} archive articles)")
    print(format_comparison(manifest["metrics"]["comparison"], args.folds))
    return EXIT_SOME_FAILED if archive.bad_lines else EXIT_OK


def _run_bench(args) -> int:
    from .engine.bench import format_bench, run_bench

    figures = run_bench(args.model, args.corpus, args.articles, args.repeats)
    print(json.dumps(figures, indent=2) if args.json else format_bench(figures))
    return EXIT_OK


def _run_up(args) -> int:
    from .service.up import run_up

    demo = _repo_path("examples", "articles.jsonl") if args.demo else None
    return run_up(args.config, args.host, args.port, demo, args.once, verbose=args.verbose)


def _run_status(args) -> int:
    from .service.discovery import ServiceNotFound
    from .retag.runs import recent_runs
    from .service.status import collect, format_status

    try:
        service = _service()
    except ServiceNotFound as exc:
        if not args.json:
            raise
        print(json.dumps({"ok": False, "problems": [str(exc)]}, indent=2))
        return EXIT_SOME_FAILED
    report = collect(service, timeout=args.timeout, retag_runs=recent_runs)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_status(report))
    return EXIT_OK if report["ok"] else EXIT_SOME_FAILED


def _run_serve(args) -> int:
    import uvicorn

    from .service.app import create_app
    from .service.ingress import create_ingress
    from .service.ledger import Ledger
    from .service.settings import load_settings

    settings = _service_settings(load_settings())
    import os

    from .service.preflight import warn_about_callbacks

    warn_about_callbacks(settings, sys.stderr)
    app = create_app(settings, queue_prefix=os.environ.get("AUTOTAG_QUEUE_PREFIX", ""))
    api = create_ingress(settings, app, Ledger(_redis_client(settings), settings.key_prefix, settings.idempotency_ttl))
    host, port = args.host or settings.host, args.port or settings.port
    server = uvicorn.Server(uvicorn.Config(api, host=host, port=port, log_level="warning"))
    _say_when_listening(server, f"autotag: ingress listening on http://{host}:{port}  (GET /healthz, /readyz, /metrics)")
    server.run()
    return EXIT_OK if server.started else EXIT_ERROR


def _say_when_listening(server, line: str) -> None:
    """Print `line` once the server has bound its socket (not before: a port in use fails first)."""
    import threading
    import time

    def wait():
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            print(line, flush=True)

    threading.Thread(target=wait, daemon=True).start()


def _run_worker(args) -> int:
    from .service.app import create_app
    from .engine.artifacts import verify_bundle
    from .service.settings import load_settings

    settings = _service_settings(load_settings())
    verify_bundle(settings.model_dir or default_bundle_path())  # refuse a bad bundle before starting anything
    import os

    from .service.preflight import warn_about_callbacks

    warn_about_callbacks(settings, sys.stderr)

    app = create_app(settings, queue_prefix=os.environ.get("AUTOTAG_QUEUE_PREFIX", ""))
    prefix = app.autotag_queue_prefix
    # one worker serves live events and re-tag chunks in turn; run a worker with only
    # --queues ...autotag.retag to keep bulk work off the live workers entirely
    argv = ["worker", f"--loglevel={args.loglevel}", f"--queues={prefix}autotag.tag,{prefix}autotag.deliver,{prefix}autotag.retag",
            "--without-gossip", "--without-mingle"]
    if args.concurrency:
        argv.append(f"--concurrency={args.concurrency}")
    if args.task_events:
        argv.append("--task-events")
    app.worker_main(argv)
    return EXIT_OK


def _run_check(args) -> int:
    from .engine.artifacts import verify_bundle
    from .service.preflight import callback_problems
    from .service.settings import load_settings

    settings = load_settings()  # a malformed key or a secret's unset variable: one line, exit 2
    problems = callback_problems(settings)
    try:
        verify_bundle(settings.model_dir or default_bundle_path())
    except AutotagError as exc:
        problems.append(str(exc))
    for problem in problems:
        print(f"autotag: {problem}", file=sys.stderr)
    if problems:
        return EXIT_ERROR
    print(f"autotag: configuration OK: {len(settings.clients)} client(s), each callback host resolves within what it allows, "
          "model bundle verified")
    return EXIT_OK


def _run_feedback_report(args) -> int:
    from datetime import datetime, timezone

    from .service.decision_store import DecisionStore
    from .service.feedback_report import build_report, format_report

    settings = _service().settings
    clients = [c.id for c in settings.clients]
    if args.client:
        if args.client not in clients:
            raise InputError(f"no client {args.client!r} in the configuration (clients: {', '.join(clients) or 'none'})")
        clients = [args.client]
    since = None
    if args.since:
        try:
            moment = datetime.fromisoformat(args.since)
        except ValueError as exc:
            raise InputError(f"--since {args.since!r} is not a date (YYYY-MM-DD) or an ISO timestamp") from exc
        since = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    manifest = read_manifest(args.model or settings.model_dir or default_bundle_path())
    thresholds = manifest["thresholds"]

    def current_threshold(kind: str, tag: str) -> float | None:
        return thresholds["regions"]["accept"] if kind == "region" else thresholds["topics"].get(tag, {}).get("accept")

    store = DecisionStore(_redis_client(settings), settings.key_prefix, settings.feedback_retention)
    entries = (entry for client_id in clients for entry in store.log(client_id, since))
    report = build_report(entries, current_threshold, manifest["model_version"], since)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report))
    return EXIT_OK


def _run_deliveries(args) -> int:
    from .service.delivery_listing import delivery_row, format_row

    ledger = _ledger()
    rows = [] if args.dead else [delivery_row("pending", r) for r in ledger.listing("due", args.limit)]
    rows += [delivery_row("dead", r) for r in ledger.listing("dead", args.limit)]
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print("no dead deliveries" if args.dead else "no pending or dead deliveries")
    for row in rows:
        print(format_row(row))
    return EXIT_OK


def _run_redeliver(args) -> int:
    import time

    ledger = _ledger()
    ids = list(args.ids) + ([r["id"] for r in ledger.listing("dead", 100000)] if args.all_dead else [])
    if not ids:
        if args.all_dead:
            print("nothing to redeliver: no dead deliveries")
            return EXIT_OK
        raise InputError("name delivery ids or pass --all-dead")
    refused, scheduled = 0, []
    for message_id in ids:
        if ledger.redeliver(message_id, time.time()):
            scheduled.append(message_id)
        else:
            refused += 1
            print(f"{message_id}: not dead, unknown, or superseded by a newer revision", file=sys.stderr)
    if scheduled:
        _confirm_replicated(ledger, f"{len(scheduled)} redelivery(ies)", "run the same command again")
    for message_id in scheduled:
        print(f"{message_id}: scheduled")
    return EXIT_SOME_FAILED if refused else EXIT_OK


def _confirm_replicated(ledger, what: str, fix: str) -> None:
    """A change an operator is told about waits for a replica, as the ingress' 202s do."""
    import redis

    from .errors import InputError
    from .service.replica_ack import ReplicaAcks

    settings = _service().settings
    try:
        ReplicaAcks(settings.replica_acks, settings.replica_ack_timeout).confirm(ledger.redis, ledger.key("replica_probe"))
    except redis.RedisError as exc:
        raise InputError(f"{what} reached the primary Redis but no replica confirmed it ({exc}); a failover now could undo it: {fix}") from exc


def _run_retag(args) -> int:
    from .retag.export import LocalRun, format_summary, run_local

    service = _service(require_redis=False)
    root = service.settings.data_dir
    queued_ledger = _queued_ledger_or_none()
    run_id = args.status or args.resume
    if run_id:
        queued = queued_ledger is not None and _queued_run_exists(queued_ledger, run_id)
        if not queued and queued_ledger is None and not (root / "retag" / run_id).is_dir():
            from .service.discovery import ServiceNotFound, nothing_running

            raise ServiceNotFound(f"no local retag run {run_id!r} under {root / 'retag'}, and to look for a queued one: "
                                  + nothing_running(root, service.config, service.doubt))
        if args.status:
            if queued:
                from .retag.runs import format_status, status

                found = status(queued_ledger, run_id)
                print(json.dumps(found, indent=2) if args.json else format_status(found))
            else:
                run = LocalRun.load(root, run_id)
                state = json.loads((run.directory / "state.json").read_text())
                found = {"run": run.run_id, "input": state["input"], "last_line_done": state["processed_line"],
                         "finished": (run.directory / "report.json").exists(), "options": state["options"]}
                print(json.dumps(found, indent=2) if args.json else _format_local_status(run.directory, found))
            return EXIT_OK
        if queued:
            return _retag_queued(args, queued_ledger, root, run_id)
        run = LocalRun.load(root, run_id)
        options = run.options
    else:
        if args.input is None:
            raise InputError("name the export to re-tag (or --resume RUN_ID / --status RUN_ID)")
        if not args.input.is_file():
            raise InputError(f"cannot read {args.input}")
        options = {"dry_run": args.dry_run, "no_callback": args.no_callback or args.dry_run, "client": args.client, "rate": args.rate,
                   "out": str(args.out.resolve()) if args.out else None, "model": str(args.model) if args.model else None,
                   "max_body_bytes": args.max_body_bytes}
        if not args.local and queued_ledger is None:
            from .service.discovery import ServiceNotFound, nothing_running

            raise ServiceNotFound("a queued re-tag needs the service's Redis and workers, and "
                                  + nothing_running(root, service.config, service.doubt) + "; or re-tag in this process with --local")
        if not options["no_callback"] or args.client:  # a dry run names a client for its remembered decisions
            options["client"] = _retag_client(service.settings, args.client).id
        options["stories"] = args.stories or _client_story_mode(service.settings, options["client"])
        if not args.local:
            from .retag.queued import start_run

            return _retag_queued(args, queued_ledger, root, start_run(queued_ledger, args.input.resolve(), options))
        run = LocalRun.create(root, args.input, options)
    client = None if options["no_callback"] else _retag_client(service.settings, options["client"])
    from .engine.tagging import Tagger

    tagger = Tagger.load(Path(options["model"]) if options["model"] else None)
    out = open(options["out"], "a", encoding="utf-8") if options["out"] else None
    print(f"autotag: retag run {run.run_id} (resume with: autotag retag --resume {run.run_id})", file=sys.stderr)
    editors = _local_editor_memory(service.settings, options)
    through_service = _local_delivery_runtime(service.settings, tagger) if client is not None else None
    try:
        summary = run_local(run, tagger, client=client, rate=options["rate"], out=out, errors_out=sys.stderr,
                            max_body_bytes=options["max_body_bytes"], progress=sys.stderr.isatty(), editors=editors,
                            stories=options.get("stories", "shared"), service=through_service)
    except KeyboardInterrupt:
        print(f"autotag: interrupted; continue with: autotag retag --resume {run.run_id}", file=sys.stderr)
        return 130
    except AutotagError as exc:
        print(f"autotag: {exc}; after fixing it, continue with: autotag retag --resume {run.run_id}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if out:
            out.close()
    report = {"run": run.run_id, "dry_run": options["dry_run"], **summary.as_dict(), "per_article": str(run.directory / "changes.jsonl")}
    return _finish_retag(args, run.directory, report, format_summary(summary, delivered=not options["no_callback"]))


def _retag_queued(args, ledger, root: Path, run_id: str) -> int:
    from .service.app import create_app
    from .retag.export import Summary, format_summary
    from .retag.queued import load_run, run_queued

    options = json.loads(load_run(ledger, run_id)["options"])
    service = _service()
    app = create_app(service.settings, queue_prefix=service.queue_prefix)
    directory = root / "retag" / run_id
    directory.mkdir(parents=True, exist_ok=True)
    print(f"autotag: retag run {run_id} queued (progress: autotag retag --status {run_id}; "
          f"resume: autotag retag --resume {run_id})", file=sys.stderr)
    with open(directory / "changes.jsonl", "a", encoding="utf-8") as changes, \
            (open(options["out"], "a", encoding="utf-8") if options.get("out") else _NoFile()) as results:
        # Ctrl-C or `kill -INT` stops the producer even when it was started with SIGINT ignored (a
        # background job of a script), as a local run's handler does
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            totals = run_queued(app, ledger, run_id, max_body_bytes=options["max_body_bytes"], changes_out=changes,
                                results_out=results if options.get("out") else None, errors_out=sys.stderr, progress=sys.stderr.isatty())
        except KeyboardInterrupt:
            print(f"autotag: interrupted; chunks already queued go on; continue with: autotag retag --resume {run_id}", file=sys.stderr)
            return 130
        finally:
            signal.signal(signal.SIGINT, previous)
    summary = Summary(articles=totals["articles"], bad_lines=totals["bad_lines"], changed=totals["changed"], editor_kept=totals["editor_decisions_kept"],
                      superseded=totals["superseded"])
    for tag, counts in totals["per_tag"].items():
        summary.gains[tag], summary.losses[tag] = counts["gain"], counts["lose"]
    report = {"run": run_id, "dry_run": options["dry_run"], **summary.as_dict(), "per_article": str(directory / "changes.jsonl")}
    return _finish_retag(args, directory, report, format_summary(summary, delivered=not options["no_callback"]))


def _finish_retag(args, directory: Path, report: dict, table: str) -> int:
    report_path = args.report or directory / "report.json"
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table)
    if report["dry_run"]:
        from .retag.report import write as write_html

        html_path = report_path.with_suffix(".html")
        if html_path == report_path:  # --report named an .html file: never write over the JSON
            html_path = report_path.with_name(report_path.name + ".html")
        write_html(report, Path(report["per_article"]), html_path)
        print(f"with charts: {html_path}")
    print(f"report: {report_path}")
    return EXIT_SOME_FAILED if report["bad_lines"] else EXIT_OK


def _local_editor_memory(settings, options: dict):
    """A local run applies the decisions the service remembers when a Redis is configured
    (refusing to go on without them if it does not answer); otherwise only the export's marks."""
    if not settings.redis_url:
        return None
    from .retag.export import EditorMemory
    from .service.decision_store import DecisionStore

    client_id = options["client"] or (settings.clients[0].id if len(settings.clients) == 1 else None)
    if client_id is None:
        return None
    connection = _answering_redis(settings, "the editors' remembered decisions cannot be applied; start it, or unset redis_url "
                                            "to apply only the export's marks")
    store = DecisionStore(connection, settings.key_prefix, settings.feedback_retention)
    return EditorMemory(store, client_id, remember=not options["no_callback"])


def _answering_redis(settings, consequence: str):
    """A connection to the configured Redis, which must answer: else one line saying what a
    local run cannot do without it."""
    import redis

    connection = _redis_client(settings, socket_connect_timeout=5)
    try:
        connection.ping()
    except redis.RedisError as exc:
        raise InputError(f"Redis at redis_url does not answer ({type(exc).__name__}): {consequence}") from exc
    return connection


def _local_delivery_runtime(settings, tagger):
    """A local run with callbacks delivers through the service's ledger when a Redis is
    configured, so the live revision rules apply (an export line older than what the service
    has seen is never sent); it refuses to go on if that Redis does not answer."""
    if not settings.redis_url:
        return None
    from .service.ledger import Ledger
    from .service.pipeline import Runtime

    connection = _answering_redis(settings, "the articles' live revisions cannot be checked before their callbacks; start it, "
                                            "or unset redis_url to deliver without them")
    return Runtime(settings=settings, ledger=Ledger(connection, settings.key_prefix, settings.idempotency_ttl), load_tagger=lambda: tagger)


def _client_story_mode(settings, client_id) -> str:
    """A re-tag tags stories as the receiving client asks (`story_tags`), else shares them."""
    client = settings.client(client_id) if client_id else (settings.clients[0] if len(settings.clients) == 1 else None)
    return client.story_tags if client else "shared"


def _retag_client(settings, client_id):
    configured = ", ".join(c.id for c in settings.clients) or "none"
    if client_id and settings.client(client_id) is None:
        raise InputError(f"unknown client {client_id!r} (configured: {configured}); pass --client with one of them")
    client = settings.client(client_id) if client_id else (settings.clients[0] if len(settings.clients) == 1 else None)
    if client is None:
        from .service.settings import default_config_path

        raise InputError(f"name the client whose callback receives the tags (--client ID); clients in {default_config_path()}: {configured}")
    return client


def _format_local_status(directory: Path, found: dict) -> str:
    """A local run's status in words: finished with its counts (from report.json), or where it stopped."""
    if found["finished"]:
        report = json.loads((directory / "report.json").read_text())
        return (f"retag run {found['run']} (local) finished: {report['articles']:,} articles re-tagged, {report['changed']:,} changed, "
                f"{report.get('bad_lines', 0):,} bad lines skipped\n  {found['input']}")
    return (f"retag run {found['run']} (local) stopped after line {found['last_line_done']:,} of {found['input']}; "
            f"continue with: autotag retag --resume {found['run']}")


def _service(require_redis: bool = True):
    """The config, data directory and Redis that `autotag up` uses (see service/discovery.py)."""
    from .service.discovery import locate

    return locate(require_redis=require_redis)


def _queued_ledger_or_none():
    from .service.ledger import Ledger

    settings = _service(require_redis=False).settings
    return Ledger(_redis_client(settings), settings.key_prefix, settings.idempotency_ttl) if settings.redis_url else None


def _queued_run_exists(ledger, run_id: str) -> bool:
    from .retag.runs import load_run

    try:
        return load_run(ledger, run_id) is not None
    except Exception:  # Redis away: fall back to a local run of that id
        return False


class _NoFile:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _service_settings(settings):
    from .errors import ConfigError

    if not settings.redis_url:
        raise ConfigError("no redis_url configured (or AUTOTAG_REDIS_URL); `autotag up` starts an embedded Redis instead")
    return settings


def _redis_client(settings, **options):
    """Every command's Redis connection: the configured redis_url, through Sentinel when it says so."""
    from .service.redis_connect import connect_configured

    return connect_configured(settings, **options)


def _ledger():
    from .service.ledger import Ledger

    settings = _service().settings
    return Ledger(_redis_client(settings), settings.key_prefix, settings.idempotency_ttl)


def _open_input(path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc


def _repo_path(*parts: str) -> Path:
    return Path(__file__).resolve().parent.parent.joinpath(*parts)


if __name__ == "__main__":
    sys.exit(main())
