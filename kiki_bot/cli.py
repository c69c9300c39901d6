"""`kiki-bot`: the command-line contract of DESIGN.md section 4 (exit 0 ok, 1 check failed, 2 bad input).

Commands import what they need inside their bodies so that `kiki-bot handle` for an ignored event
starts without loading the card, Hub or training stacks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kiki_bot.errors import CheckFailed, KikiError

app = typer.Typer(help="Keep LoRA adapters' EU AI Act training-content summaries and removal requests true to their data.", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
card_app = typer.Typer(help="Render and check the PST cards.", no_args_is_help=True)
data_app = typer.Typer(help="Training data housekeeping.", no_args_is_help=True)
ledger_app = typer.Typer(help="The hash-chained removal ledger.", no_args_is_help=True)
app.add_typer(card_app, name="card")
app.add_typer(data_app, name="data")
app.add_typer(ledger_app, name="ledger")
schedule_app = typer.Typer(help="The removal deadline scheduler.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
removal_app = typer.Typer(help="Removal requests: match, file privately, purge.", no_args_is_help=True)
app.add_typer(removal_app, name="removal")

ProjectDir = Annotated[Path, typer.Option("-C", "--project", help="The model repository.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print each planned side effect as a JSON line; do none.")]
HERE = Path(".")


def say(message: str) -> None:
    """Human output goes to stderr so stdout stays clean for --json."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(message, markup=False)


def emit(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def _project(root: Path):
    from kiki_bot.project import Project

    return Project(root)


def _adapters(project, name: str | None):
    return [project.adapter(name)] if name else list(project.adapters.values())


# ---------------------------------------------------------------- init
@app.command()
def init(
    directory: Annotated[Path | None, typer.Argument(help="The repository to scaffold; default: -C or the current "
                                                     "directory.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist already.")] = False,
    repository: Annotated[str | None, typer.Option(help="owner/name on GitHub; default: GITHUB_REPOSITORY or the "
                                                   "origin remote.")] = None,
    private_contact: Annotated[str | None, typer.Option(help="Where personal-data removal requests go (kiki.toml "
                                                        "and the issue form).")] = None,
    project: ProjectDir = HERE,
) -> None:
    """Scaffold a model repository: kiki.toml, an example adapter with data, caller workflows, the removal form, labels."""
    from kiki_bot import scaffold
    from kiki_bot.settings import Settings

    root = directory or project
    settings = Settings()
    token = settings.github_token.get_secret_value() if settings.github_token else None
    repository = scaffold.resolve_repository(root, repository)
    for path in scaffold.init(root, force=force, token=token, repository=repository, private_contact=private_contact):
        say(f"wrote {path}")
    if token:
        say(f"labels of {repository}: {', '.join(scaffold.LABELS)} (created where missing)")
    say(scaffold.next_steps(root, repository))


# ---------------------------------------------------------------- card
@card_app.command("render")
def card_render(
    adapter: Annotated[str | None, typer.Argument(help="Adapter name; all when omitted.")] = None,
    version: Annotated[str | None, typer.Option(help="Summary version; default: the committed card's.")] = None,
    date: Annotated[str | None, typer.Option(help="Release date YYYY-MM-DD; default: the committed card's.")] = None,
    run: Annotated[Path | None, typer.Option(help="JSON of the training run's facts (trained_tokens, eval_score, …).")] = None,
    project: ProjectDir = HERE,
) -> None:
    """Write cards/<adapter>/{README.md,CHANGELOG.md,card.json} from the data."""
    from pydantic import ValidationError

    from kiki_bot import cards
    from kiki_bot.card import RunFacts
    from kiki_bot.errors import BadInput
    from kiki_bot.storage import project_lock

    try:
        day = dt.date.fromisoformat(date) if date else None
    except ValueError:
        raise BadInput("--date", f"expected YYYY-MM-DD, got {date!r}") from None
    try:
        facts = RunFacts.model_validate_json(run.read_bytes()) if run else None
    except (OSError, ValidationError) as exc:
        raise BadInput(f"--run {run}", f"expected a JSON object of run facts ({exc})") from None
    proj = _project(project)
    with project_lock(proj.root):
        rendered = [(a, cards.render_adapter(proj, a, version, day, facts)) for a in _adapters(proj, adapter)]
        for a, r in rendered:
            changed = cards.write(proj, a, r)
            say(f"{a.name} v{r.card.header.version}: {', '.join(changed) if changed else 'unchanged'}")


@card_app.command("check")
def card_check(
    adapter: Annotated[str | None, typer.Argument(help="Adapter name; all when omitted.")] = None,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Validate the template rules, Hub metadata, licence policy, manifests and ledger; report drift. Exit 1 on any problem."""
    from kiki_bot import cards

    proj = _project(project)
    reports = [cards.check(proj, a) for a in _adapters(proj, adapter)]
    if as_json:
        emit({r.adapter: {**vars(r), "ok": not r.problems} for r in reports})
    for r in reports:
        say(f"{r.adapter}: {'ok' if not r.problems else f'{len(r.problems)} problem(s)'}")
        for p in r.problems:
            say(f"  {p}")
    if any(r.problems for r in reports):
        raise CheckFailed("card check failed")


# ---------------------------------------------------------------- data
@data_app.command("manifest")
def data_manifest(
    source: Annotated[str | None, typer.Argument(help="Source id; all when omitted.")] = None,
    project: ProjectDir = HERE,
) -> None:
    """Refresh data/<source>/MANIFEST.json from the files on disk (after validating every record)."""
    from kiki_bot import manifests
    from kiki_bot.records import iter_source
    from kiki_bot.storage import project_lock

    proj = _project(project)
    ids = [source] if source else sorted(proj.sources)
    with project_lock(proj.root):
        for sid in ids:
            if sid not in proj.sources:
                from kiki_bot.errors import BadInput

                raise BadInput("source", f"unknown source {sid!r}")
            n = sum(1 for _ in iter_source(proj.data_dir, sid))
            changed = manifests.refresh(proj.data_dir / sid)
            say(f"{sid}: {n} records, manifest {'updated' if changed else 'unchanged'}")


# ---------------------------------------------------------------- ledger
@ledger_app.command("verify")
def ledger_verify(project: ProjectDir = HERE) -> None:
    """Exit 1 and name the first bad entry if the hash chain is broken."""
    from kiki_bot import ledger

    proj = _project(project)
    ledger.verify(proj.ledger_path)
    say(f"{proj.ledger_path}: {len(ledger.read(proj.ledger_path))} entries, chain intact")


# ---------------------------------------------------------------- removal
Body = Annotated[Path, typer.Option("--body", help="The request in the issue form's Markdown.", exists=False)]


def _read_body(path: Path) -> str:
    from kiki_bot.errors import BadInput

    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise BadInput(f"--body {path}", f"cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BadInput(f"--body {path}", "not UTF-8 text") from None


@removal_app.command("match")
def removal_match(body: Body, as_json: AsJson = False, project: ProjectDir = HERE) -> None:
    """Parse a request and list the records it matches; exit 2 when the request is invalid."""
    from kiki_bot.errors import BadInput
    from kiki_bot.removal import match_document

    doc = match_document(_project(project), _read_body(body))
    if as_json:
        emit(doc)
    for err in doc["errors"]:
        say(f"{err['field']}" + (f", line {err['line']}" if err["line"] else "") + f": {err['message']}")
    if doc["errors"]:
        raise BadInput(str(body), f"{len(doc['errors'])} problem(s) in the request")
    say(f"{len(doc['matches'])} records matched; adapters: {doc['adapters'] or 'none'}")


@removal_app.command("file")
def removal_file(body: Body, actor: Annotated[str, typer.Option(help="Who filed it (a login, or 'private').")] = "private",
                 dry_run: DryRun = False, project: ProjectDir = HERE) -> None:
    """Record a request received privately (same checks; nothing about the requester is made public)."""
    from kiki_bot import context
    from kiki_bot.removal import file_private

    doc = file_private(context.make(project, dry_run), _read_body(body), actor)
    emit(doc)


@removal_app.command("purge")
def removal_purge(request_id: Annotated[str, typer.Argument(help="R-<issue> or P-<hex>")],
                  actor: Annotated[str, typer.Option(help="Who approved it (login or 'private').")] = "private",
                  dry_run: DryRun = False, project: ProjectDir = HERE) -> None:
    """Purge an approved request: ledger first, then an atomic rewrite of the data; opens the purge PR."""
    from kiki_bot import context, ledger
    from kiki_bot.removal import purge_request

    ctx = context.make(project, dry_run)
    entries = ledger.read(ctx.project.ledger_path)
    # A private request is approved by the one who runs this, but only a request the ledger knows:
    # an unknown id must fail (in purge_request) with nothing written.
    known = ledger.find(entries, "requested", request_id) is not None
    if known and request_id.startswith("P-") and ledger.find(entries, "approved", request_id) is None:
        ctx.fx.ledger_append(path=ctx.project.ledger_path, event="approved", request={"id": request_id, "issue": None},
                             actor=actor, at=ctx.now, fields={})
    outputs = purge_request(ctx, request_id, actor, ctx.now)
    _write_outputs(outputs)
    say(f"{request_id}: purged; {outputs.get('pr-url') or 'no PR (no repository configured)'}")


# ---------------------------------------------------------------- deadlines
Now = Annotated[str | None, typer.Option("--now", help="ISO time with a zone (default: the current time).")]


def _now(value: str | None) -> dt.datetime | None:
    from kiki_bot.errors import BadInput

    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadInput("--now", f"expected an ISO time such as 2026-05-06T12:00:00Z, got {value!r}") from None
    if moment.tzinfo is None:
        raise BadInput("--now", "the time needs a zone (e.g. Z or +02:00)")
    return moment.astimezone(dt.UTC)


@schedule_app.command("plan")
def schedule_plan(now: Now = None, as_json: AsJson = False, project: ProjectDir = HERE) -> None:
    """Per adapter: pending requests, earliest deadline, latest safe retrain start, and the action."""
    from kiki_bot import context, deadlines

    plans, release_tags, _ = deadlines.plan(context.make(project, dry_run=True, now=_now(now)))
    doc = {p.adapter: {**p.as_json(), "release": release_tags[p.adapter]} for p in plans}
    if as_json:
        emit(doc)
    for p in plans:
        say(f"{p.adapter}: {p.action} — {p.reason}")
    if not plans:
        say("no removal is waiting for a release")


@schedule_app.command("run")
def schedule_run(now: Now = None, dry_run: DryRun = False, project: ProjectDir = HERE) -> None:
    """Act on the plan: start retrains once, warn at-risk issues, apply the fallback when a deadline passed."""
    from kiki_bot import context, deadlines

    outputs = deadlines.run(context.make(project, dry_run, now=_now(now)))
    _write_outputs(outputs)
    say(outputs.get("actions") or "nothing to do")


# ---------------------------------------------------------------- release flow


def _write_outputs(outputs: dict[str, str]) -> None:
    """Step outputs for the Action, with a delimiter that cannot occur in a value."""
    import secrets

    from kiki_bot.settings import Settings

    path = Settings().github_output
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for key, value in outputs.items():
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
            fh.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")


@app.command()
def release(
    tag: Annotated[str, typer.Argument(help="<adapter>/v<semver>, e.g. devstral-cpp-lora/v0.4.4")],
    dry_run: DryRun = False,
    project: ProjectDir = HERE,
) -> None:
    """Train the tagged version, regenerate its card, stage it on the Hub and open the review PR."""
    from kiki_bot import context
    from kiki_bot.release import release as run

    outputs = run(context.make(project, dry_run), tag)
    _write_outputs(outputs)
    say(f"release {tag}: review PR {outputs.get('pr-url') or '(dry run)'}")


@app.command()
def publish(
    tag: Annotated[str, typer.Argument(help="<adapter>/v<semver> whose review PR was merged")],
    dry_run: DryRun = False,
    project: ProjectDir = HERE,
) -> None:
    """Merge the staged Hub PR, tag the Hub revision, make the GitHub release, close satisfied removals."""
    from kiki_bot import context
    from kiki_bot.publish import publish as run

    outputs = run(context.make(project, dry_run), tag)
    _write_outputs(outputs)
    say(f"published {tag}: {outputs.get('hub-url') or '(dry run)'}")


@app.command()
def handle(
    event_name: Annotated[str | None, typer.Option(help="Default: GITHUB_EVENT_NAME.")] = None,
    event_path: Annotated[Path | None, typer.Option(help="Default: GITHUB_EVENT_PATH.")] = None,
    dry_run: DryRun = False,
    project: ProjectDir = HERE,
) -> None:
    """Dispatch a GitHub event to the moment it belongs to; other events do nothing."""
    from kiki_bot import events

    name = event_name or os.environ.get("GITHUB_EVENT_NAME") or ""
    payload = events.load(event_path or (Path(p) if (p := os.environ.get("GITHUB_EVENT_PATH")) else None))
    handler = events.route(name, payload, os.environ.get("KIKI_BOT_LOGIN", "kiki-bot[bot]"))
    if handler is None:
        say(f"{name or 'event'}: nothing for kiki-bot to do")
        return
    events.check_fields(handler, payload, str(event_path or os.environ.get("GITHUB_EVENT_PATH")))
    from kiki_bot import context

    repo = (payload.get("repository") or {})
    ctx = context.make(project, dry_run, repository=repo.get("full_name"),
                       default_branch=repo.get("default_branch") or "main")
    outputs = handler(ctx, payload)
    _write_outputs(outputs)


@app.command()
def demo(
    workdir: Annotated[Path | None, typer.Option(help="Where to play the story; default: a new temp dir.")] = None,
) -> None:
    """The whole story on the bundled example, offline, against local GitHub and Hub emulators."""
    import tempfile

    from kiki_bot import demo as story

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kiki-bot"
    story.run(workdir or Path(tempfile.mkdtemp(prefix="kiki-demo-")), cache)


def _remote(exc: Exception) -> str | None:
    """Which service an HTTP error came from (their clients raise their own types), if any."""
    package = type(exc).__module__.split(".")[0]
    return {"github": "GitHub", "huggingface_hub": "the Hugging Face Hub"}.get(package)


def main(argv: list[str] | None = None) -> None:
    """Entry point: map the bot's errors to exit codes with a one-line message naming what was wrong."""
    try:
        app(args=argv, standalone_mode=False)
    except KikiError as exc:
        say(f"error: {exc}" if exc.exit_code == 2 else f"failed: {exc}")
        for problem in getattr(exc, "problems", [])[:20]:
            say(f"  {problem}")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors and aborts; GitHub/Hub refusals
        import click

        if (service := _remote(exc)) is not None:
            say(f"error: {service} refused the request: {exc}")
            sys.exit(2)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
