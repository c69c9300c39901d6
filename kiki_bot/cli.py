"""`kiki-bot`: the command-line contract of DESIGN.md section 4 (exit 0 ok, 1 check failed, 2 bad input).

Commands import what they need inside their bodies so that `kiki-bot handle` for an ignored event
starts without loading the card, Hub or training stacks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from kiki_bot import cliargs, console
from kiki_bot.console import say
from kiki_bot.core.errors import BadInput, CheckFailed, KikiError


def _example(command: str) -> str:
    """The epilog that ends every --help: how the command is typically run."""
    return f"Example: kiki-bot {command}"


app = typer.Typer(help="Keep LoRA adapters' EU AI Act training-content summaries and removal requests true to their "
                  "data. -C DIR and --json may be given before or after the command.",
                  epilog=_example("card check -C models"), add_completion=False, pretty_exceptions_enable=False)
card_app = typer.Typer(help="Render and check the PST cards.", epilog=_example("card check"))
data_app = typer.Typer(help="Training data housekeeping.", epilog=_example("data manifest"))
ledger_app = typer.Typer(help="The hash-chained removal ledger.", epilog=_example("ledger verify"))
schedule_app = typer.Typer(help="The removal deadline scheduler.", epilog=_example("schedule plan --json"))
removal_app = typer.Typer(help="Removal requests: match, file privately, purge.",
                          epilog=_example("removal match --body request.md"))
app.add_typer(card_app, name="card")
app.add_typer(data_app, name="data")
app.add_typer(ledger_app, name="ledger")
app.add_typer(schedule_app, name="schedule")
app.add_typer(removal_app, name="removal")
hub_app = typer.Typer(help="Requests that arrive outside the issue form: Hub discussions, upstream lists.",
                      epilog=_example("hub sync --dry-run"))
app.add_typer(hub_app, name="hub")
export_app = typer.Typer(help="Trained adapters in other libraries' formats.",
                         epilog=_example("export peft adapters/ peft/"))
app.add_typer(export_app, name="export")


def _json_mode(value: bool) -> bool:
    """--json also silences progress bars: the output is for a machine."""
    console.quiet = console.quiet or value
    return value


ProjectDir = Annotated[Path, typer.Option("-C", "--project", help="The model repository.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout.", callback=_json_mode)]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print each planned side effect as a JSON line; do none.")]
HERE = Path(".")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"kiki-bot {version('kiki-bot')}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print kiki-bot's version and exit.", callback=_version,
                                          is_eager=True)] = False,
) -> None:
    """Options of kiki-bot itself (the help text is the app's)."""


def emit(doc: Any) -> None:
    sys.stdout.write(console.dumps(doc, indent=2) + "\n")


def _context(project: Path, dry_run: bool, as_json: bool, **options: Any):
    """The behaviours' context; under --json a dry run's plan goes into the one document, not out as lines.
    A dry run works in a scratch runs directory (removed when the command ends), so it leaves no run state
    that a real release could later take for its own."""
    import tempfile

    from typer._click.globals import get_current_context

    from kiki_bot import context

    ctx = context.make(project, dry_run, **options)
    ctx.fx.stream = not as_json
    if dry_run:
        scratch = get_current_context().with_resource(tempfile.TemporaryDirectory(prefix="kiki-dry-run-"))
        ctx.settings = ctx.settings.model_copy(update={"runs_dir": Path(scratch)})
    return ctx


def _report(as_json: bool, doc: dict, fx=None) -> None:
    """The --json document, with the planned side effects of a dry run."""
    if as_json:
        emit({**doc, "planned": fx.planned} if fx is not None and fx.dry_run else doc)


def _outputs(as_json: bool, outputs: dict[str, str], fx, **doc: Any) -> None:
    """What a moment did: its step outputs for the Action, and the --json document that holds them."""
    cliargs.write_outputs(outputs)
    _report(as_json, {**doc, "outputs": outputs}, fx)


def _moment(step: Callable[..., dict[str, str]], args: tuple, project: Path, dry_run: bool, as_json: bool,
            **doc: Any) -> dict[str, str]:
    """`step(context, *args)`, then its outputs (`_outputs`)."""
    ctx = _context(project, dry_run, as_json)
    outputs = step(ctx, *args)
    _outputs(as_json, outputs, ctx.fx, **doc)
    return outputs


def _project(root: Path):
    from kiki_bot.repo.project import Project

    return Project(root)


def _adapters(project, name: str | None):
    return [project.adapter(name)] if name else list(project.adapters.values())


# ---------------------------------------------------------------- init
_BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


@app.command(epilog=_example("init --private-contact privacy@lab.example"))
def init(
    directory: Annotated[Path | None, typer.Argument(help="The repository to scaffold; default: -C or the current "
                                                     "directory.", show_default=False, metavar="DIRECTORY")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist already.")] = False,
    repository: Annotated[str | None, typer.Option(help="owner/name on GitHub; default: GITHUB_REPOSITORY or the "
                                                   "origin remote.")] = None,
    private_contact: Annotated[str | None, typer.Option(help="Where personal-data removal requests go (kiki.toml "
                                                        "and the issue form).")] = None,
    dry_run: DryRun = False,
    ref: Annotated[str | None, typer.Option(help="The kiki-bot commit (40-hex SHA) the workflows pin; default: the "
                                            "commit of this kiki-bot, from its install.")] = None,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Scaffold a model repository: kiki.toml, an example adapter with data, caller workflows, the removal form, labels."""
    from kiki_bot import init
    from kiki_bot.shells.effects import Effects
    from kiki_bot.shells.settings import Settings

    root = directory or project
    if not root.is_dir():
        hint = "; --force is a flag and takes no value" if root.name.lower() in _BOOLEAN_WORDS else ""
        raise BadInput(str(root), "no such directory: init scaffolds an existing repository (create it and "
                       f"`git init` it first){hint}")
    fx = Effects(Settings(), None, dry_run, stream=not as_json)
    token = fx.settings.github_token.get_secret_value() if fx.settings.github_token else None
    done = init.init(root, force, token, repository, private_contact, ref, fx)
    for path in done.files:
        say(f"{'would write' if dry_run else 'wrote'} {path}")
    if done.labels:
        say(f"labels of {done.repository}: {', '.join(done.labels)} ({'would be ' if dry_run else ''}created where "
            "missing)")
    if not dry_run:
        say(init.next_steps(root, done.repository))
    _report(as_json, {"directory": root, "repository": done.repository, "written": [] if dry_run else done.files,
                      "labels": done.labels}, fx)


# ---------------------------------------------------------------- card
@card_app.command("render", epilog=_example("card render example-lora --version 0.2.0"))
def card_render(
    adapter: Annotated[str | None, typer.Argument(help="Adapter name; all when omitted.", metavar="ADAPTER")] = None,
    version: Annotated[str | None, typer.Option(help="Summary version; default: the committed card's.")] = None,
    date: Annotated[str | None, typer.Option(help="Release date YYYY-MM-DD; default: the committed card's.")] = None,
    run: Annotated[Path | None, typer.Option(help="JSON of a training run's facts, typed in (trained_tokens, "
                                             "eval_score with eval_source, …): the card says they are typed in.")] = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Write cards/<adapter>/{README.md,CHANGELOG.md,card.json} from the data."""
    from pydantic import ValidationError

    from kiki_bot import upkeep
    from kiki_bot.core.cardmodel import RunFacts

    day = cliargs.date_option(date)
    try:
        facts = RunFacts.model_validate_json(run.read_bytes()) if run else None
    except OSError as exc:
        raise BadInput(f"--run {run}", f"cannot read ({exc.strerror})") from None
    except ValidationError as exc:
        raise BadInput.validation(RunFacts, exc.errors(), f"--run {run}") from None
    if facts and facts.origin == "release":
        raise BadInput(f"--run {run}: key `origin`", "facts given with --run are typed in: only a release records "
                       "its own training run")
    facts = facts and facts.model_copy(update={"origin": "typed in"})
    if facts and (facts.eval_score, facts.eval_base) != (None, None) and not facts.eval_source:
        raise BadInput(f"--run {run}: key `eval_source`", "scores given with --run are typed in, not measured by a "
                       "release kiki-bot ran: say where they came from")
    ctx = _context(project, dry_run, as_json)
    _report(as_json, upkeep.render_cards(ctx, _adapters(ctx.project, adapter), version, day, facts), ctx.fx)


@card_app.command("import", epilog=_example("card import README.md devstral-cpp-lora"))
def card_import(
    file: Annotated[Path, typer.Argument(help="The hand-written card.", metavar="FILE", show_default=False)],
    adapter: Annotated[str | None, typer.Argument(help="Adapter name; needed if several.", metavar="ADAPTER")] = None,
    date: Annotated[str | None, typer.Option(help="Date YYYY-MM-DD of the generated draft; default: today.")] = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Take a hand-written card's version history into card.json (marked imported): the draft of the next version
    links every earlier one."""
    from kiki_bot import upkeep

    ctx = _context(project, dry_run, as_json)
    _report(as_json, upkeep.import_card(ctx, file, adapter, cliargs.date_option(date)), ctx.fx)


@card_app.command("check", epilog=_example("card check --json"))
def card_check(
    adapter: Annotated[str | None, typer.Argument(help="Adapter name; all when omitted.", metavar="ADAPTER")] = None,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Validate the template rules, Hub metadata, licence policy, manifests and ledger; report drift. Exit 1 on any problem."""
    from kiki_bot.repo import cards

    proj = _project(project)
    reports = [cards.check(proj, a) for a in _adapters(proj, adapter)]
    _report(as_json, {r.adapter: r.as_json() for r in reports})
    for r in reports:
        say(f"{r.adapter}: {'ok' if not r.problems else f'{len(r.problems)} problem(s)'}")
        for p in r.problems:
            say(f"  {p}")
        for notice in r.pending_retrain:
            say(f"  notice: {notice}")
    if any(r.problems for r in reports):
        raise CheckFailed("card check failed")


# ---------------------------------------------------------------- data
@data_app.command("manifest", epilog=_example("data manifest esp-idf"))
def data_manifest(
    source: Annotated[str | None, typer.Argument(help="Source id; all when omitted.", metavar="SOURCE")] = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Refresh data/<source>/MANIFEST.json from the files on disk (after validating every record)."""
    from kiki_bot import upkeep

    ctx = _context(project, dry_run, as_json)
    _report(as_json, upkeep.refresh_manifests(ctx, source), ctx.fx)


@data_app.command("check-optouts", epilog=_example("data check-optouts esp-idf"))
def data_check_optouts(
    source: Annotated[str | None, typer.Argument(help="Crawled source id; all crawled sources when omitted.",
                                                 metavar="SOURCE")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Ask no host: report from the stored evidence.")] = False,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Check the origin hosts of crawled sources for reservations of rights (robots.txt, TDMRep, ai.txt, noai,
    Content-Usage) and append the answers to compliance/optouts/<source>.jsonl. Exit 1 when a record's host was
    reserved when the record was collected (the build refuses it)."""
    from kiki_bot import upkeep

    ctx = _context(project, dry_run, as_json)
    doc = upkeep.check_optouts(ctx, source, offline)
    _report(as_json, doc, ctx.fx)
    if doc["refused"]:
        raise CheckFailed(f"{len(doc['refused'])} record(s) come from hosts reserved when they were collected")


# ---------------------------------------------------------------- ledger
@ledger_app.command("verify", epilog=_example("ledger verify -C models"))
def ledger_verify(as_json: AsJson = False, project: ProjectDir = HERE) -> None:
    """Exit 1 naming the first bad entry of a broken chain, or a card whose recorded ledger head is gone."""
    from kiki_bot.repo import cards, ledgerfile

    proj = _project(project)
    try:
        count = len(ledgerfile.verify(proj.ledger_path, cards.recorded_heads(proj)))
    except CheckFailed as exc:
        _report(as_json, {"ledger": proj.ledger_path, "ok": False, "problem": str(exc)})
        raise
    _report(as_json, {"ledger": proj.ledger_path, "ok": True, "entries": count})
    say(f"{proj.ledger_path}: {count} entries, chain intact")


# ---------------------------------------------------------------- removal
Body = Annotated[Path, typer.Option("--body", help="The request in the issue form's Markdown.", exists=False)]


def _per_adapter(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} ({n})" for name, n in sorted(counts.items())) or "none"


@removal_app.command("match", epilog=_example("removal match --body request.md --json"))
def removal_match(body: Body, as_json: AsJson = False, project: ProjectDir = HERE) -> None:
    """Parse a request and list the records it matches; exit 2 when the request is invalid."""
    from kiki_bot.removal import match_document

    doc = match_document(_project(project), cliargs.read_body(body))
    _report(as_json, doc)
    for err in doc["errors"]:
        say(f"{err['field']}" + (f", line {err['line']}" if err["line"] else "") + f": {err['message']}")
    if doc["errors"]:
        raise BadInput(str(body), f"{len(doc['errors'])} problem(s) in the request")
    say(f"{len(doc['matches'])} records matched; adapters: {_per_adapter(doc['adapters'])}")


@removal_app.command("file", epilog=_example("removal file --body request.md --json"))
def removal_file(body: Body, actor: Annotated[str, typer.Option(help="Who filed it (a login, or 'private').")] = "private",
                 dry_run: DryRun = False, as_json: AsJson = False, project: ProjectDir = HERE) -> None:
    """Record a request received privately (same checks; nothing about the requester is made public)."""
    from kiki_bot.removal import file_private

    ctx = _context(project, dry_run, as_json)
    doc = file_private(ctx, cliargs.read_body(body), actor)
    _report(as_json, doc, ctx.fx)
    say(f"{doc['request']}: {doc['records']} records matched; adapters: {_per_adapter(doc['adapters'])}; "
        f"deadline {doc['deadline']}" + (" (dry run: not recorded)" if dry_run else ""))


@removal_app.command("purge", epilog=_example("removal purge R-42 --actor maintainer"))
def removal_purge(request_id: Annotated[str, typer.Argument(help="R-<issue> or P-<hex>", metavar="REQUEST-ID")],
                  actor: Annotated[str, typer.Option(help="Who approved it (login or 'private').")] = "private",
                  dry_run: DryRun = False, as_json: AsJson = False, project: ProjectDir = HERE) -> None:
    """Purge an approved request: ledger first, then an atomic rewrite of the data; opens the purge PR."""
    from kiki_bot.hubsync import follow_up
    from kiki_bot.removal import purge_command

    ctx = _context(project, dry_run, as_json)
    outputs = follow_up(ctx, purge_command(ctx, request_id, actor))
    _outputs(as_json, outputs, ctx.fx, request=request_id)
    if dry_run:
        say(f"{request_id}: dry run, nothing purged")
    else:
        say(f"{request_id}: purged; {outputs.get('pr-url') or 'no PR (no repository configured)'}")


# ---------------------------------------------------------------- deadlines
Now = Annotated[str | None, typer.Option("--now", help="ISO time with a zone (default: the current time).")]


@schedule_app.command("plan", epilog=_example("schedule plan --now 2026-05-06T12:00:00Z --json"))
def schedule_plan(now: Now = None, as_json: AsJson = False, project: ProjectDir = HERE) -> None:
    """Per adapter: pending requests, earliest deadline, latest safe retrain start, and the action."""
    from kiki_bot import deadlines

    plans, release_tags, _ = deadlines.plan(_context(project, True, as_json, now=cliargs.time_option(now)))
    _report(as_json, {p.adapter: {**p.as_json(), "release": release_tags[p.adapter]} for p in plans})
    for p in plans:
        say(f"{p.adapter}: {p.action} — {p.reason}")
    if not plans:
        say("no removal is waiting for a release")


@schedule_app.command("run", epilog=_example("schedule run --dry-run"))
def schedule_run(now: Now = None, dry_run: DryRun = False, as_json: AsJson = False, project: ProjectDir = HERE) -> None:
    """Act on the plan: start retrains once, warn at-risk issues, apply the fallback when a deadline passed."""
    from kiki_bot import deadlines

    ctx = _context(project, dry_run, as_json, now=cliargs.time_option(now))
    try:
        outputs = deadlines.run(ctx)
    except CheckFailed as exc:  # a missed deadline: the real run fails loudly; its dry run shows the plan
        if not dry_run:
            raise
        _report(as_json, {"outputs": {}, "would_fail": str(exc), "problems": exc.problems}, ctx.fx)
        say(f"dry run: the real run would fail: {exc}")
        for problem in exc.problems:
            say(f"  {problem}")
        return
    _outputs(as_json, outputs, ctx.fx)
    say(outputs.get("actions") or "nothing to do")


# ---------------------------------------------------------------- Hub discussions and upstream takedowns
@hub_app.command("sync", epilog=_example("hub sync --dry-run"))
def hub_sync(dry_run: DryRun = False, as_json: AsJson = False, project: ProjectDir = HERE) -> None:
    """Mirror removal requests from the adapters' Hub discussions to issues and answer there at each step; file
    requests for upstream opt-out lists and dataset revisions (what the scheduled run does first)."""
    from kiki_bot import hubsync

    outputs = _moment(hubsync.sync, (), project, dry_run, as_json)
    say(", ".join(f"{k}: {v or 'nothing new'}" for k, v in outputs.items()) or "nothing to sync")


# ---------------------------------------------------------------- release flow
@app.command(epilog=_example("release example-lora/v0.2.0 --dry-run"))
def release(
    tag: Annotated[str, typer.Argument(help="<adapter>/v<semver>, e.g. example-lora/v0.1.0", metavar="TAG")],
    dry_run: DryRun = False,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Train the tagged version, regenerate its card, stage it on the Hub and open the review PR."""
    from kiki_bot.release import release as run

    outputs = _moment(run, (tag,), project, dry_run, as_json, tag=tag)
    say(f"release {tag}: review PR {outputs.get('pr-url') or '(dry run)'}")


@app.command(epilog=_example("publish example-lora/v0.2.0"))
def publish(
    tag: Annotated[str, typer.Argument(help="<adapter>/v<semver> whose review PR was merged", metavar="TAG")],
    dry_run: DryRun = False,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Merge the staged Hub PR, tag the Hub revision, make the GitHub release, close satisfied removals."""
    from kiki_bot.publish import publish as run

    outputs = _moment(run, (tag,), project, dry_run, as_json, tag=tag)
    say(f"published {tag}: {outputs.get('hub-url') or '(dry run)'}")


@app.command(epilog=_example("handle --event-name issues --event-path event.json --dry-run"))
def handle(
    event_name: Annotated[str | None, typer.Option(help="Default: GITHUB_EVENT_NAME.")] = None,
    event_path: Annotated[Path | None, typer.Option(help="Default: GITHUB_EVENT_PATH.")] = None,
    hub_event: Annotated[Path | None, typer.Option(help="A Hugging Face webhook payload (a discussion created or "
                                                   "commented) instead of a GitHub event.")] = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Dispatch a GitHub event (or a Hub webhook payload) to the moment it belongs to; other events do nothing."""
    from kiki_bot import events

    name = event_name or os.environ.get("GITHUB_EVENT_NAME") or ""
    path = event_path or (Path(p) if (p := os.environ.get("GITHUB_EVENT_PATH")) else None)

    def make(repository: str | None, branch: str | None):
        return _context(project, dry_run, as_json, repository=repository, default_branch=branch)

    if hub_event is not None:
        name = "Hub event"
        doc, ctx = events.handle_hub(hub_event, make)
    else:
        doc, ctx = events.handle(name, path, os.environ.get("KIKI_BOT_LOGIN", "kiki-bot[bot]"), make)
    if ctx is None:
        say(f"{name or 'event'}: nothing for kiki-bot to do")
    else:
        cliargs.write_outputs(doc["outputs"])
    _report(as_json, doc, ctx and ctx.fx)


@app.command(epilog=_example("demo --workdir /tmp/kiki-demo"))
def demo(
    workdir: Annotated[Path | None, typer.Option(help="Where to play the story; default: a new temp dir.")] = None,
    as_json: AsJson = False,
) -> None:
    """The whole story on the bundled example, offline, against local GitHub and Hub emulators."""
    import tempfile

    from kiki_bot.demo import story

    if missing := story.missing_extra():
        raise BadInput("kiki-bot demo", f"{missing} is not installed: the demo needs `pip install 'kiki-bot[demo]'`")
    if workdir is not None and workdir.exists() and not workdir.is_dir():
        raise BadInput(f"--workdir {workdir}", "not a directory")
    where = workdir or Path(tempfile.mkdtemp(prefix="kiki-demo-"))
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kiki-bot"
    story.run(where, cache, main)
    _report(as_json, {"workdir": where})


# ---------------------------------------------------------------- export
@export_app.command("peft", epilog=_example("export peft adapters/ peft/ --base-id org/base"))
def export_peft(
    run_dir: Annotated[Path, typer.Argument(help="The mlx-lm adapter directory (adapters.safetensors, "
                                            "adapter_config.json).", metavar="RUN-DIR", show_default=False)],
    out: Annotated[Path, typer.Argument(help="Where adapter_model.safetensors and adapter_config.json go.",
                                        metavar="OUT", show_default=False)],
    base: Annotated[Path | None, typer.Option(help="The base model directory the adapter was trained on; "
                                              "default: the adapter config's `model`, if a local directory.")] = None,
    base_id: Annotated[str | None, typer.Option(help="The base model's Hub id for base_model_name_or_path; "
                                                "default: the adapter config's `model`, if a Hub id.")] = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    project: ProjectDir = HERE,
) -> None:
    """Write the PEFT form of a trained mlx-lm LoRA adapter; refuse (exit 2) what does not convert exactly.
    Relative paths are taken from -C."""
    from kiki_bot.shells import peft_export
    from kiki_bot.shells.effects import Effects
    from kiki_bot.shells.settings import Settings

    fx = Effects(Settings(), None, dry_run, stream=not as_json)  # files only: no GitHub, no Hub
    files = [str(p) for p in peft_export.write(project / run_dir, project / out, base and project / base, base_id, fx)]
    _report(as_json, {"out": str(project / out), "files": files}, fx)
    say(f"{'would write' if dry_run else 'wrote'} {', '.join(files)}")


# ---------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Entry point: map the bot's errors to exit codes with a one-line message naming what was wrong."""
    import contextlib

    from typer import _click  # the click that typer vendors: its usage errors are these

    console.quiet = False
    command = typer.main.get_command(app)
    args, path, bare = cliargs.arrange(command, list(sys.argv[1:] if argv is None else argv))
    try:
        if bare:  # no command named: the group's help, on stderr, as a usage error
            with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(typer.Exit):
                command.main(args=[*args, "--help"], prog_name="kiki-bot", standalone_mode=False)
            sys.exit(2)
        command.main(args=args, prog_name="kiki-bot", standalone_mode=False)
    except _click.exceptions.UsageError as exc:
        say(cliargs.usage_line(exc, path))
        sys.exit(2)
    except KikiError as exc:
        say(f"error: {exc}" if exc.exit_code == 2 else f"failed: {exc}")
        for problem in getattr(exc, "problems", [])[:20]:
            say(f"  {problem}")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # GitHub/Hub refusals
        if (service := cliargs.remote_service(exc)) is not None:
            from kiki_bot.shells.github import missing_permission

            say(f"error: {service} refused the request: {' '.join(str(missing_permission(exc) or exc).split())}")
            sys.exit(2)
        raise
