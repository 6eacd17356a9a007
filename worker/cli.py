"""The ``optout`` command line: the I/O shell around the classifier, projector, store and dev stack.

Every command takes every setting as a flag or an ``OPTOUT_*`` variable (see :mod:`worker.config`).
A wrong setting ends the command with one line on stderr and exit code 2, never a traceback; an
unreachable service at a one-shot command (check, history, migrate, snapshot, topics) exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry

from worker import __version__
from worker.config import Settings, add_arguments, unknown_variables
from worker.errors import ConfigError, OptoutError
from worker.logs import KAFKA, POSTGRES, ServiceState
from worker.ops.httpserver import HttpServer, WSGIApp, start_http

if TYPE_CHECKING:
    from worker.ops.health import Health

log = logging.getLogger("optout")


#: The settings groups (:data:`worker.config.HELP_GROUPS`) each command's ``--help`` shows; the
#: others are accepted but not listed. ``dev`` shows them all.
_KAFKA, _TOPICS, _PG, _HTTP = (
    "Kafka",
    "topics and consumer groups",
    "Postgres",
    "HTTP: /metrics, /livez, /readyz, /snapshots",
)
_SNAP, _RULES, _BATCH, _LOGS = "snapshots", "classification", "batching", "logs and local state"
_API = "HTTP API (optout api)"
_FETCH = "the classifier's input fetches"
_WEBHOOKS = "webhooks"
_DELIVERY = "delivery"
_SHOWN: dict[str, tuple[str, ...] | None] = {
    "classifier": (_KAFKA, _TOPICS, _RULES, _HTTP, _DELIVERY, _BATCH, _FETCH, _LOGS),
    "projector": (_KAFKA, _TOPICS, _PG, _HTTP, _SNAP, _BATCH, _LOGS),
    "classify": (_RULES, _LOGS),
    "check": (_PG, _LOGS),
    "history": (_PG, _LOGS),
    "produce": (_KAFKA, _TOPICS, _LOGS),
    "tail": (_KAFKA, _TOPICS, _LOGS),
    "dev": None,
    "snapshot": (_PG, _SNAP, _TOPICS, _LOGS),
    "topics": (_KAFKA, _TOPICS, _LOGS),
    "migrate": (_PG, _LOGS),
    "block": (_KAFKA, _TOPICS, _LOGS),
    "unblock": (_KAFKA, _TOPICS, _LOGS),
    "import": (_KAFKA, _TOPICS, _LOGS),
    "api": (_KAFKA, _TOPICS, _PG, _API, _RULES, _LOGS),
    "token": (_PG, _LOGS),
    "link": ("opt-out links", _LOGS),
    # --topic-changes is accepted but not listed: the topics group would take it past 130 lines.
    "dispatcher": (_KAFKA, _PG, _HTTP, _WEBHOOKS, _BATCH, _LOGS),
    "webhook": (_PG, _LOGS),
}

_EPILOG = (
    "Every setting is a flag or an OPTOUT_* environment variable (the flag wins); settings of other "
    "commands are accepted too. All of them: `optout dev --help` or the README's Configuration table."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optout",
        description="Opt-out (STOP/START/HELP) engine for messaging platforms.",
        epilog="`optout COMMAND --help` for a command's options and settings.",
    )
    parser.add_argument("--version", action="version", version=f"optout-worker {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subs: dict[str, argparse.ArgumentParser] = {}

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=help,
            epilog=_EPILOG,
            formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=32),
        )
        subs[name] = sub
        return sub

    for name, help in (
        ("classifier", "run the classifier: inbound topic -> change, reply and dead-letter topics"),
        ("projector", "run the projector: change topic -> Postgres, exactly once"),
    ):
        sub = command(name, help)
        sub.add_argument("--burst", action="store_true", help="exit once the input is drained and idle")
    classify = command("classify", "classify inbound-message JSON lines from stdin, without Kafka")
    classify.add_argument(
        "--eval",
        dest="eval_file",
        metavar="FILE",
        help="instead: classify a labeled JSONL corpus (text, intent, language, category) and print "
        "precision and recall per intent, language and category and the targets; exit 1 if one is missed",
    )
    check = command("check", "is ADDRESS blocked for a message from this account/subaccount/sender?")
    check.add_argument("address", metavar="ADDRESS")
    # Short metavars: the usage stays within three lines with --category (tests/unit/test_help.py).
    check.add_argument("--account", required=True, metavar="A")
    check.add_argument("--subaccount", metavar="S")
    check.add_argument("--sender", metavar="X")
    check.add_argument(
        "--channel", metavar="C", help="sms, whatsapp, ...; omitted: blocks on any channel count"
    )
    check.add_argument(
        "--category",
        choices=("marketing", "transactional"),
        default="marketing",
        metavar="KIND",
        help="of the message: marketing (default; every block stops it) or transactional (only full "
        "blocks do, not STOP MARKETING)",
    )
    check.add_argument(
        "--exit-status",
        action="store_true",
        help="for scripts: exit 0 when not blocked, 1 when blocked, 2 on any error (bad settings, "
        "Postgres unreachable)",
    )
    history = command("history", "ADDRESS's opt-out/opt-in history, oldest first, as JSON lines")
    history.add_argument("address", metavar="ADDRESS")
    history.add_argument("--account")
    command("produce", "send inbound-message JSON lines from stdin to the inbound topic (key: from)")
    tail = command(
        "tail", "print what the workers write to a topic, decoded (dead letters with their reason)"
    )
    tail.add_argument(
        "what", choices=["replies", "changes", "dead-letters"], metavar="replies|changes|dead-letters"
    )
    tail.add_argument(
        "--from-beginning", action="store_true", help="from the start of the topic (default: new only)"
    )
    tail.add_argument("--limit", type=int, metavar="N", help="exit after N records")
    tail.add_argument("--json", action="store_true", help="one decoded JSON event per line instead of text")
    dev = command(
        "dev", "the whole stack on one machine: embedded broker and Postgres, classifier, projector"
    )
    dev.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="the embedded broker: tansu (memory-only, the default) or kafka (Apache Kafka 4 from Maven "
        "Central jars, data under the data dir; needs java, and mvn for the first fetch)",
    )
    command("snapshot", "write a blocklist snapshot now (as the projector does every interval)")
    command("topics", "create the topics if missing and verify their configuration (idempotent)")
    command("migrate", "apply pending Postgres migrations (idempotent)")
    _manual_commands(command)
    _api_commands(command)
    _link_command(command)
    _webhook_commands(command)
    for name, sub in subs.items():
        # The usage line shows the command's own arguments; the settings are one [SETTINGS].
        own = sub.format_usage().removeprefix("usage: ").replace(" [-h]", "").strip()
        sub.usage = f"{own} [SETTINGS]"
        add_arguments(sub, _SHOWN.get(name))
    return parser


def _manual_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """``optout block``, ``optout unblock`` and ``optout import`` (:mod:`worker.ops.manual`)."""
    for action in ("block", "unblock"):
        sub = command(
            action,
            f"{action} ADDRESS for an account, subaccount or sender, as an operator (reason manual): "
            "a change event to the change topic, like a subscriber's STOP or START",
        )
        indent = "\n" + " " * len(f"usage: optout {action} ")
        sub.usage = (  # by hand: argparse's wrapping of these options takes four lines
            f"%(prog)s ADDRESS --account A [--subaccount S | --sender X]{indent}[--channel C] "
            f"[--category all|marketing] --note TEXT{indent}[--at TIME] [--dry-run]"
        )
        sub.add_argument("address", metavar="ADDRESS")
        sub.add_argument("--account", required=True, metavar="A")
        narrower = sub.add_mutually_exclusive_group()
        narrower.add_argument("--subaccount", metavar="S", help="only this subaccount's messages")
        narrower.add_argument(
            "--sender", metavar="X", help="only messages from this number, short code or sender id"
        )
        sub.add_argument("--channel", metavar="C", help="sms, whatsapp, ...; default * (every channel)")
        sub.add_argument(
            "--category",
            choices=("all", "marketing"),
            metavar="all|marketing",
            help="what the block stops: all (default) or marketing only"
            if action == "block"
            else "the category of the block to lift: all (default) or marketing (each its own block)",
        )
        sub.add_argument(
            "--note", required=True, metavar="TEXT", help="why, for the history (who asked, the ticket)"
        )
        sub.add_argument(
            "--at",
            metavar="TIME",
            help="when it happened (RFC 3339; default now); the event id derives from it, so a "
            "command repeated with the same --at is one change",
        )
        sub.add_argument("--dry-run", action="store_true", help="print the change event, produce nothing")
    imp = command(
        "import",
        "produce the changes listed in FILE (a provider's exported blocklist, a CRM's do-not-contact "
        "list): CSV with a header, or JSON lines",
    )
    imp.description = (
        "Produce the changes listed in FILE (reason import). CSV with a header (.csv; comma, semicolon "
        "or tab) or JSON lines (.jsonl/.ndjson/.json; schemas/blocklist-import.v1.json), chosen by the "
        "extension, else by the first line. Fields: address, account (required), subaccount or "
        "sender, channel (default *), category (all|marketing), action (block|unblock, default "
        "block), note (default --note, else the file name), occurred_at (default --at, else the "
        "file's modification time). A bad line is reported with its line number and skipped; the "
        "others are produced. With Kafka transactions the whole import is one transaction; without "
        "(Tansu) a crash half-way leaves part of it, and running the same import again produces "
        "the same event ids (file sha256, line, block, instant), which the projector drops. Exit 0: "
        "every line produced; 3: bad lines skipped, the rest produced; 1: Kafka failed (run again); "
        "2: unusable file or settings, nothing produced."
    )
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--format", choices=("csv", "jsonl"), help="instead of guessing from the name")
    imp.add_argument("--note", metavar="TEXT", help="the note of lines without one (default: the file name)")
    imp.add_argument("--at", metavar="TIME", help="occurred_at of lines without one (RFC 3339)")
    imp.add_argument("--dry-run", action="store_true", help="validate and report, produce nothing")


def _api_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """``optout api`` and ``optout token`` (:mod:`worker.api`)."""
    api = command("api", "serve the HTTP API (check, list, block, unblock, history) with per-account tokens")
    api.add_argument("--openapi", action="store_true", help="print the OpenAPI document and exit")
    token = command("token", "make, list or revoke the API's bearer tokens (one account each)")
    token.add_argument("action", choices=("create", "list", "revoke"), metavar="create|list|revoke")
    token.add_argument("token_id", nargs="?", metavar="ID", help="revoke: the token's id")
    token.add_argument("--account", metavar="A", help="create: the token's account; list: only its tokens")
    token.add_argument("--name", metavar="N", help="create: what the token is for (a service, a person)")


def _link_command(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """``optout link``: print a signed opt-out link (:mod:`worker.classify.links`)."""
    sub = command(
        "link",
        "print a signed, expiring opt-out link for ADDRESS to put in a message; opening it shows a "
        "confirmation page, confirming blocks (reason link)",
    )
    indent = "\n" + " " * len("usage: optout link ")
    sub.usage = (
        f"%(prog)s ADDRESS --account A [--subaccount S | --sender X]{indent}[--channel C] "
        f"[--category all|marketing]{indent}[--ttl 30d] [--base-url URL]"
    )
    sub.add_argument("address", metavar="ADDRESS")
    sub.add_argument("--account", required=True, metavar="A")
    narrower = sub.add_mutually_exclusive_group()
    narrower.add_argument("--subaccount", metavar="S", help="block only this subaccount's messages")
    narrower.add_argument("--sender", metavar="X", help="block only messages from this sender")
    sub.add_argument("--channel", metavar="C", help="sms, whatsapp, ...; default * (every channel)")
    sub.add_argument(
        "--category", choices=("all", "marketing"), metavar="all|marketing", help="what it blocks (all)"
    )
    sub.add_argument("--ttl", default="30d", metavar="T", help="valid for: 30d (default), 12h, 90m, 3600s")
    sub.add_argument("--base-url", metavar="URL", help="instead of OPTOUT_LINK_BASE_URL")


def _webhook_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """``optout dispatcher`` and ``optout webhook add|list|remove`` (:mod:`worker.webhooks`)."""
    sub = command(
        "dispatcher", "run the webhook dispatcher: change topic -> signed requests to the accounts' endpoints"
    )
    sub.add_argument("--burst", action="store_true", help="exit once the input is drained and idle")
    hook = command(
        "webhook",
        "add, list or remove an account's webhook endpoints (in Postgres; an endpoint gets the changes "
        "emitted after it was added; a removal takes effect within OPTOUT_WEBHOOK_REFRESH seconds)",
    )
    hook.usage = "%(prog)s add|list|remove [ID] [--account A] [--url URL] [--secret S] [--category C]"
    hook.add_argument("action", choices=("add", "list", "remove"), metavar="add|list|remove")
    hook.add_argument("id", nargs="?", type=int, metavar="ID", help="remove: the endpoint's id")
    hook.add_argument("--account", metavar="A", help="add: required; list, remove: only this account's")
    hook.add_argument("--url", metavar="URL", help="add: https:// (http:// only to localhost or 127.0.0.1)")
    hook.add_argument(
        "--secret", metavar="S", help="add: the signing secret (default: a new one, printed once)"
    )
    hook.add_argument(
        "--category",
        action="append",
        default=[],
        choices=("all", "marketing"),
        metavar="C",
        help="add: only changes of blocks of this category (all, marketing; repeatable); default every",
    )
    hook.add_argument("--disabled", action="store_true", help="list: removed endpoints too")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if isinstance(v, str)}
    try:
        settings = Settings.from_mapping(os.environ, flags)
        _configure_logging(settings.log_level, settings.log_format, one_shot=args.command not in _WORKERS)
        for warning in unknown_variables(os.environ):
            log.warning("%s", warning)
        if args.command != "dev":
            settings = with_dev_stack(settings, os.environ, args.kafka_bootstrap)
        handler = _COMMANDS[args.command]
        return handler(settings, args)
    except ConfigError as exc:
        print(f"optout: error: {exc}", file=sys.stderr)
        return 2
    except OptoutError as exc:  # an outage at a one-shot command, or data a server refused
        print(f"optout: error: {exc}", file=sys.stderr)
        return 2 if getattr(args, "exit_status", False) else 1  # with --exit-status, 1 means blocked
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: with --exit-status, never let it look like "blocked" (1)
        if not getattr(args, "exit_status", False):
            raise
        print(f"optout: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


#: Commands that run until stopped and retry outages; the others are one-shot and exit on one.
_WORKERS = frozenset({"classifier", "projector", "dev", "api", "dispatcher"})


def _configure_logging(level: str, fmt: str, one_shot: bool = False) -> None:
    from worker.logs import configure

    configure(level, fmt)
    if one_shot and level != "DEBUG":
        # A one-shot command does not retry: its "service unavailable" state line would only say
        # first what the command's own one-line error (exit 1) says anyway.
        for name in ("optout.kafka", "optout.postgres"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _stop_on_signals() -> asyncio.Event:
    """SIGTERM/SIGINT set the stop event: the loop finishes its batch, commits and exits 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _reload_on_sighup() -> asyncio.Event:
    """SIGHUP sets the event: the classifier reloads its rules file between batches (a worker runs
    in its own session, so a closed terminal's SIGHUP never reaches it; `optout dev` stops it)."""
    reload = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload.set)
    return reload


def database_url(settings: Settings) -> str:
    """``OPTOUT_DATABASE_URL``, else the running ``optout dev``'s (from ``.optout/dev.json``).

    Only ``optout dev`` starts an embedded Postgres: any other command without a database fails
    with one line saying what to set.
    """
    if settings.database_url:
        return settings.database_url
    from worker.dev.state import read_state, state_path

    state = read_state(settings.data_dir)
    if state and state.get("database_url"):
        return str(state["database_url"])
    raise ConfigError(
        "OPTOUT_DATABASE_URL is not set and no `optout dev` is running here "
        f"({state_path(settings.data_dir)} not found): set OPTOUT_DATABASE_URL, or start the dev "
        "stack with `make run`"
    )


def with_dev_stack(settings: Settings, env: Mapping[str, str], flag: str | None) -> Settings:
    """A command other than ``optout dev`` with no Kafka bootstrap set uses the running dev
    stack's broker (which may have had to take another port than the default)."""
    if flag is not None or "OPTOUT_KAFKA_BOOTSTRAP" in env:
        return settings
    from worker.dev.state import read_state

    state = read_state(settings.data_dir)
    if state and state.get("kafka_bootstrap"):
        return settings.replace(kafka_bootstrap=str(state["kafka_bootstrap"]))
    return settings


def cmd_classifier(settings: Settings, args: argparse.Namespace) -> int:
    from worker.classify.rulesfile import load_rules
    from worker.constants import METRICS_PORT_CLASSIFIER
    from worker.stream.classifier import run_classifier

    load_rules(settings.rules or None)  # a bad rules file fails here, before any connection
    _check_kafka_tls(settings)
    return _serve(
        settings,
        METRICS_PORT_CLASSIFIER,
        lambda registry, stop: run_classifier(
            settings, burst=args.burst, registry=registry, stop=stop, reload=_reload_on_sighup()
        ),
        services=(KAFKA,),
        role="classifier",
    )


def cmd_projector(settings: Settings, args: argparse.Namespace) -> int:
    from worker.constants import METRICS_PORT_PROJECTOR
    from worker.snapshot.http import PREFIX, snapshot_app
    from worker.stream.projector import run_projector

    _check_kafka_tls(settings)
    url = database_url(settings)
    token = settings.snapshot_bearer_token()
    if token is None and settings.metrics_host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "/snapshots (every blocked address) is served on %s without a token: set "
            "OPTOUT_SNAPSHOT_TOKEN_FILE, or OPTOUT_METRICS_HOST=127.0.0.1",
            settings.metrics_host,
        )
    return _serve(
        settings,
        METRICS_PORT_PROJECTOR,
        lambda registry, stop: run_projector(settings, url, burst=args.burst, registry=registry, stop=stop),
        routes={PREFIX + "/": snapshot_app(settings.snapshot_dir, token)},
        services=(KAFKA, POSTGRES),
        role="projector",
    )


def _check_kafka_tls(settings: Settings) -> None:
    """A missing or unusable CA, certificate or key file: one line naming it, before anything starts."""
    from worker.stream.kafka import client_kwargs

    client_kwargs(settings)


def _serve(
    settings: Settings,
    default_port: int,
    loop: Callable[[CollectorRegistry, asyncio.Event], Coroutine[Any, Any, object]],
    routes: dict[str, WSGIApp] | None = None,
    services: tuple[ServiceState, ...] = (),
    role: str = "worker",
) -> int:
    """Run a worker loop with its HTTP endpoint (metrics, liveness, readiness, ``routes``);
    SIGTERM/SIGINT stop it between batches. ``services``: those whose outage makes it unready."""
    from worker.ops.health import Health
    from worker.ops.metrics import register_process_metrics

    async def run() -> int:
        stop = _stop_on_signals()
        registry = CollectorRegistry()
        register_process_metrics(registry, role)
        port = default_port if settings.metrics_port is None else settings.metrics_port
        http = _start_http(registry, settings, port, Health(services, stopping=stop.is_set), routes)
        try:
            await loop(registry, stop)
        finally:
            http.stop()
        return 0

    return asyncio.run(run())


def _start_http(
    registry: CollectorRegistry,
    settings: Settings,
    port: int,
    health: Health,
    routes: dict[str, WSGIApp] | None = None,
) -> HttpServer:
    try:
        http = start_http(
            registry, settings.metrics_host, port, health.liveness, health.routes() | (routes or {})
        )
    except OSError as exc:
        raise ConfigError(_listen_error(settings.metrics_host, port, exc)) from None
    log.info("metrics on %s", http.metrics_url)
    return http


def _listen_error(host: str, port: int, exc: OSError) -> str:
    """Blame the setting that is wrong: a host that does not resolve or is not this machine's is
    OPTOUT_METRICS_HOST's fault; a port in use or reserved is OPTOUT_METRICS_PORT's."""
    import errno
    import socket

    reason = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"OPTOUT_METRICS_HOST={host}: cannot listen on {host}:{port}: {reason}"
    return f"OPTOUT_METRICS_PORT={port}: cannot listen on {host}:{port}: {reason}"


def cmd_classify(settings: Settings, args: argparse.Namespace) -> int:
    from worker.classify.offline import classify_lines
    from worker.classify.rulesfile import load_rules

    rulebook = load_rules(settings.rules or None)
    if args.eval_file:
        from worker.classify.evaluation import evaluate, format_report, load_corpus

        try:
            with open(args.eval_file, "rb") as corpus:
                samples = load_corpus(corpus, args.eval_file)
        except OSError as exc:
            raise ConfigError(f"--eval {args.eval_file}: cannot read: {exc.strerror}") from None
        report = evaluate(samples, rulebook.base)
        print(format_report(report))
        return 0 if report.passed else 1
    out = sys.stdout.buffer
    for line in classify_lines(sys.stdin.buffer, rulebook):
        out.write(line + b"\n")
    out.flush()
    return 0


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    from worker.model import MessageCategory
    from worker.store.postgres import Store

    url = database_url(settings)
    category = MessageCategory(args.category)

    address, sender, channel = canonical_query(
        settings, args.address, args.account, args.sender, args.channel
    )

    async def run() -> int:
        async with await Store.connect(url, min_size=1, max_size=1) as store:
            applying = await store.check(address, args.account, args.subaccount, sender, channel, category)
            every = await store.blocks(address, args.account)
        ids = {block["event_id"] for block in applying}
        result = {
            "address": address,
            "target": {
                "account_id": args.account,
                "subaccount_id": args.subaccount,
                "sender": sender,
                "channel": channel,
                "category": category.value,
            },
            "blocked": bool(applying),
            "blocks": applying,
            "other_blocks": [block for block in every if block["event_id"] not in ids],
        }
        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        return 1 if args.exit_status and result["blocked"] else 0

    return asyncio.run(run())


def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    from worker.store.postgres import Store

    url = database_url(settings)

    # Without --account, national numbers are read with the rules file's top-level country.
    address = canonical_query(settings, args.address, args.account or "", None, None)[0]

    async def run() -> int:
        async with await Store.connect(url, min_size=1, max_size=1) as store:
            rows = await store.history(address, args.account)
        out = sys.stdout.buffer
        for row in rows:
            out.write(orjson.dumps(history_line(row)) + b"\n")
        return 0

    return asyncio.run(run())


def canonical_query(
    settings: Settings, address: str, account: str, sender: str | None, channel: str | None
) -> tuple[str, str | None, str | None]:
    """``(address, sender, channel)`` as the classifier keys them (:mod:`worker.events.address`),
    with the account's default country from the rules file (OPTOUT_RULES): an operator may type
    ``whatsapp:+44 7700 900123`` or ``07700 900123``. A prefix names the channel; with no channel
    given, the address is read as a phone number (and checked on every channel)."""
    from worker.api.query import canonical_lookup
    from worker.classify.rulesfile import load_countries

    return canonical_lookup(load_countries(settings.rules), address, account, sender, channel)


def history_line(row: dict[str, Any]) -> dict[str, Any]:
    """One history row as an operator reads it: when, what, where (scope), why, from which MO."""
    return {
        "occurred_at": row["occurred_at"],
        "action": row["action"],
        "scope": {
            "level": row["level"],
            "account_id": row["account_id"],
            "subaccount_id": row["subaccount_id"],
            "sender": row["sender"],
            "channel": row["channel"],
        },
        "channel": row["channel"],
        "category": row["category"],
        "keyword": row["keyword"],
        "rule": row["rule"],
        "language": row["language"],
        "match": row["match"],
        "reason": row["reason"],
        "note": row["note"],
        "source_message_id": row["source_message_id"],
        "source": {
            "topic": row["source_topic"],
            "partition": row["source_partition"],
            "offset": row["source_offset"],
        },
        "event_id": row["event_id"],
    }


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from worker.events.inbound import peek_string
    from worker.stream.kafka import make_producer, probe_features, unavailable

    async def run() -> int:
        features = await probe_features(settings, transactions=False)
        producer = make_producer(settings, idempotent=features.idempotence)
        try:
            await asyncio.wait_for(producer.start(), 30)
        except Exception as exc:
            await producer.stop()
            raise unavailable(settings, exc) from None
        try:
            futures = []
            for line in sys.stdin.buffer:
                raw = line.rstrip(b"\r\n")
                if raw.strip():
                    # Keyed by the subscriber, so one subscriber's messages stay in order.
                    address = peek_string(raw, "from")
                    key = address.encode() if address is not None else None
                    futures.append(await producer.send(settings.topic_inbound, raw, key=key))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        print(f"produced {len(futures)} records to {settings.topic_inbound}", file=sys.stderr)
        return 0

    return asyncio.run(run())


def cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    from worker.ops.tail import tail

    asyncio.run(
        tail(settings, args.what, from_beginning=args.from_beginning, limit=args.limit, json_lines=args.json)
    )
    return 0


def cmd_snapshot(settings: Settings, args: argparse.Namespace) -> int:
    from worker.snapshot.schedule import check_writable, take_snapshot
    from worker.snapshot.writer import terminal_progress
    from worker.store.postgres import Store

    check_writable(settings.snapshot_dir)
    url = database_url(settings)

    async def run() -> int:
        async with await Store.connect(url, min_size=1, max_size=1) as store:
            result = await take_snapshot(settings, store, terminal_progress())
        summary = {
            "path": str(result.path),
            "seconds": round(result.seconds, 3),
            "pruned": list(result.pruned),
        }
        sys.stdout.buffer.write(
            orjson.dumps(summary | {"manifest": result.manifest.document()}, option=orjson.OPT_INDENT_2)
            + b"\n"
        )
        return 0

    return asyncio.run(run())


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from worker.stream.kafka import ensure_topics

    async def run() -> int:
        for line in await ensure_topics(settings):
            print(line)
        return 0

    return asyncio.run(run())


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from worker.store.migrate import migrate

    url = database_url(settings)
    applied = asyncio.run(migrate(url))
    print("\n".join(f"applied  {name}" for name in applied) or "up to date")
    return 0


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from worker.config import SETTINGS
    from worker.dev.run import run_dev

    # Settings given as flags reach the workers too (they read only the environment).
    flags = {s.env: getattr(args, s.field) for s in SETTINGS if getattr(args, s.field, None) is not None}
    return run_dev(
        settings,
        explicit_bootstrap="OPTOUT_KAFKA_BOOTSTRAP" in os.environ or args.kafka_bootstrap is not None,
        broker_kind=args.broker,
        child_env=flags,
    )


def cmd_block(settings: Settings, args: argparse.Namespace) -> int:
    from worker.classify.rulesfile import load_countries
    from worker.model import Action
    from worker.ops.manual import change_from_args, instant_from_args, run_block

    action = Action(args.command)
    change = change_from_args(action, args, load_countries(settings.rules or None))
    return run_block(settings, change, instant_from_args(args.at), args.dry_run)


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from worker.ops.manual import plan_import, run_import

    plan = plan_import(args.file, args.format, args.at, args.note)
    return run_import(settings, plan, args.dry_run)


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"optout api needs the api extra ({exc.name} is missing): pip install 'optout-worker[api]'"
        ) from None
    if args.openapi:
        from worker.api.app import openapi_document

        sys.stdout.buffer.write(orjson.dumps(openapi_document(settings), option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    from worker.api.serve import run_api

    _check_kafka_tls(settings)
    return asyncio.run(run_api(settings, database_url(settings)))


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from worker.api.admin import run_token

    return asyncio.run(run_token(database_url(settings), args.action, args.token_id, args.account, args.name))


def cmd_link(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from worker.classify.links import encode, make_link, parse_ttl
    from worker.classify.manual import ManualChangeError
    from worker.classify.rulesfile import load_countries
    from worker.config import SETTINGS

    secret = settings.link_signing_secret()
    base = settings.link_base_url
    if args.base_url is not None:
        setting = next(s for s in SETTINGS if s.field == "link_base_url")
        try:
            base = setting.parse(args.base_url.strip())
        except ValueError as exc:
            raise ConfigError(f"--base-url {args.base_url!r}: expected {exc}") from None
    if not base:
        raise ConfigError(
            "OPTOUT_LINK_BASE_URL is not set: give --base-url https://... (where /u/ is served)"
        )
    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        raise ConfigError(f"--ttl {exc}") from None
    fields = {name: getattr(args, name) for name in ("address", "account", "subaccount", "sender", "channel")}
    fields["category"] = args.category
    try:
        link = make_link(fields, int(time.time()) + ttl, load_countries(settings.rules or None))
    except ManualChangeError as exc:
        name, _, problem = str(exc).partition(" ")
        raise ConfigError(f"{'ADDRESS' if name == 'address' else '--' + name} {problem}") from None
    print(f"{base}/u/{encode(link, secret)}")
    return 0


def cmd_dispatcher(settings: Settings, args: argparse.Namespace) -> int:
    from worker.constants import METRICS_PORT_DISPATCHER
    from worker.webhooks.dispatcher import run_dispatcher

    _check_kafka_tls(settings)
    url = database_url(settings)
    return _serve(
        settings,
        METRICS_PORT_DISPATCHER,
        lambda registry, stop: run_dispatcher(settings, url, burst=args.burst, registry=registry, stop=stop),
        services=(KAFKA, POSTGRES),
        role="dispatcher",
    )


def cmd_webhook(settings: Settings, args: argparse.Namespace) -> int:
    from worker.webhooks.admin import run_webhook

    return run_webhook(database_url(settings), args)


_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "classifier": cmd_classifier,
    "projector": cmd_projector,
    "classify": cmd_classify,
    "check": cmd_check,
    "history": cmd_history,
    "dev": cmd_dev,
    "snapshot": cmd_snapshot,
    "topics": cmd_topics,
    "produce": cmd_produce,
    "tail": cmd_tail,
    "migrate": cmd_migrate,
    "block": cmd_block,
    "unblock": cmd_block,
    "import": cmd_import,
    "api": cmd_api,
    "token": cmd_token,
    "link": cmd_link,
    "dispatcher": cmd_dispatcher,
    "webhook": cmd_webhook,
}
