"""The command-line contract (DESIGN.md section 4): every usage error is exit 2 and one line, -C and --json
on either side of the command, --json on every command, flags that take no value, --version, and a --help
that ends with an example."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from conftest import EXAMPLE

from kiki_bot.cli import app

KIKI_BOT = Path(sys.executable).parent / "kiki-bot"
ROOT = typer.main.get_command(app)


def commands(group=ROOT, path=()) -> dict[tuple[str, ...], object]:
    """Every command and group of the app, by its words."""
    found = {path: group}
    for name, cmd in getattr(group, "commands", {}).items():
        found.update(commands(cmd, (*path, name)))
    return found


LEAVES = sorted(p for p, c in commands().items() if not hasattr(c, "commands"))
GROUPS = sorted(p for p, c in commands().items() if hasattr(c, "commands"))


def snapshot(*roots: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass
class Row:
    """A command's valid required inputs, a bad value (and the word its error names), and what a call
    missing a required input looks like (default: -C with no directory)."""

    ok: list[str]
    bad: tuple[list[str], str]
    missing: tuple[list[str], str] = (["-C"], "-C")


# Placeholders: {empty} an empty directory, {body} a valid request body, {file} a plain file,
# {absent} a path that does not exist. The commands run inside a test project.
TABLE = {
    ("init",): Row(["{empty}", "--ref", "a" * 40], (["{empty}", "--repository", "not a repo"], "--repository"),
                   (["{empty}", "--repository"], "--repository")),
    ("card", "render"): Row(["tiny-lora"], (["tiny-lora", "--date", "2026-13-45"], "--date"),
                            (["tiny-lora", "--version"], "--version")),
    ("card", "check"): Row(["tiny-lora"], (["no-such-adapter"], "no-such-adapter")),
    ("card", "import"): Row(["{file}", "tiny-lora"], (["{absent}"], "{absent}"), ([], "FILE")),
    ("data", "manifest"): Row(["acme-fw"], (["no-such-source"], "no-such-source")),
    ("data", "check-optouts"): Row(["acme-fw", "--offline"], (["no-such-source", "--offline"], "no-such-source")),
    ("ledger", "verify"): Row([], (["-C", "{file}"], "{file}")),
    ("removal", "match"): Row(["--body", "{body}"], (["--body", "{absent}"], "--body"), ([], "--body")),
    ("removal", "file"): Row(["--body", "{body}"], (["--body", "{absent}"], "--body"), ([], "--body")),
    ("removal", "purge"): Row(["R-1"], (["no-such-request"], "no-such-request"), ([], "REQUEST-ID")),
    ("schedule", "plan"): Row([], (["--now", "yesterday"], "--now"), (["--now"], "--now")),
    ("schedule", "run"): Row([], (["--now", "yesterday"], "--now"), (["--now"], "--now")),
    ("hub", "sync"): Row([], (["-C", "{file}"], "{file}")),
    ("release",): Row(["tiny-lora/v0.2.0"], (["banana"], "banana"), ([], "TAG")),
    ("publish",): Row(["tiny-lora/v0.2.0"], (["banana"], "banana"), ([], "TAG")),
    ("handle",): Row([], (["--event-path", "{absent}"], "{absent}"), (["--event-name"], "--event-name")),
    ("export", "peft"): Row(["{absent}", "{empty}"], (["{absent}", "{empty}"], "{absent}"), ([], "RUN-DIR")),
    ("demo",): Row([], (["--workdir", "{file}"], "--workdir"), (["--workdir"], "--workdir")),
}
KINDS = ["unknown option", "missing required", "bad value", "extra argument"]


def test_the_table_covers_every_command():
    assert sorted(TABLE) == LEAVES


@pytest.fixture
def places(project, tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.chdir(project)
    for name in ("GITHUB_TOKEN", "KIKI_GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "plain.txt").write_text("not a directory\n")
    body = tmp_path / "request.md"
    body.write_text("### Content to remove\n\nacme/fw\n\n### Your relationship to the content\n\n"
                    "I am the author or rightsholder\n\n### Reason\n\nCopyright\n\n### Additional details\n\n"
                    "_No response_\n\n### Confirmation\n\n- [X] I confirm that the information in this request "
                    "is accurate\n")
    return {"{empty}": str(tmp_path / "empty"), "{body}": str(body), "{file}": str(tmp_path / "plain.txt"),
            "{absent}": str(tmp_path / "absent.json")}


def case(row: Row, kind: str) -> tuple[list[str], str]:
    if kind == "unknown option":
        return [*row.ok, "--bogus"], "--bogus"
    if kind == "missing required":
        return row.missing
    if kind == "bad value":
        return row.bad
    return [*row.ok, "surplus"], "surplus"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_usage_error_is_exit_2_and_one_line(cli, project, tmp_path, places, path, kind):
    args, word = case(TABLE[path], kind)
    args = [places.get(a, a) for a in args]
    before = snapshot(tmp_path)
    res = cli(*path, *args)
    assert res.code == 2, res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.err
    assert places.get(word, word) in lines[0]
    assert res.out == ""
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("words", [[], ["card"], ["removal"], ["-C", "."], ["--json"]], ids=str)
def test_no_command_shows_the_help_and_exits_2(cli, words):
    res = cli(*words)
    assert res.code == 2 and res.out == ""
    assert "Usage: kiki-bot" in res.err and "Commands" in res.err and "Traceback" not in res.err


def test_an_unknown_command_is_one_line(cli):
    res = cli("nope")
    assert res.code == 2 and res.err.strip() == "error: kiki-bot: No such command 'nope'. (see `kiki-bot --help`)"


def test_version_is_the_installed_distribution(cli):
    res = cli("--version")
    assert res.code == 0 and res.out == f"kiki-bot {importlib.metadata.version('kiki-bot')}\n"


def test_project_and_json_go_before_or_after_the_command(cli, project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a project: only -C makes these work
    p = str(project)
    for words in (["card", "check"], ["ledger", "verify"]):
        first, *rest = words
        spellings = [
            [*words, "-C", p, "--json"],
            ["-C", p, *words, "--json"],
            ["--json", *words, "-C", p],
            ["--json", "-C", p, *words],
            [f"--project={p}", "--json", *words],
            [first, "-C", p, "--json", *rest],
            [f"-C{p}", *words, "--json"],
        ]
        results = [cli(*s) for s in spellings]
        assert {r.code for r in results} == {results[0].code}, [r.err for r in results]
        assert all(r.json() == results[0].json() for r in results)


def test_every_command_takes_json_and_project():
    for path in LEAVES:
        options = {o for p in commands()[path].params for o in p.opts}
        assert "--json" in options, path
        assert path == ("demo",) or {"-C", "--project"} <= options, path


def test_json_prints_exactly_one_document(cli, project, places, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "outputs"))
    ping = tmp_path / "ping.json"
    ping.write_text("{}")
    runs = [
        ["card", "render"], ["card", "check"], ["data", "manifest"], ["ledger", "verify"],
        ["removal", "match", "--body", places["{body}"]], ["schedule", "plan"], ["schedule", "run"],
        ["handle", "--event-name", "ping", "--event-path", str(ping)],
        ["init", places["{empty}"], "--ref", "a" * 40], ["removal", "file", "--body", places["{body}"]],
    ]
    for words in runs:
        res = cli(*words, "--json")
        assert res.code == 0, (words, res.err)
        assert isinstance(json.loads(res.out), dict), words  # one document: json.loads refuses trailing data


def test_boolean_options_are_flags(cli, project, monkeypatch, tmp_path):
    for path, cmd in commands().items():
        for param in cmd.params:
            if param.type_descriptor.annotation is bool:  # the declared type (typer's record of it)
                assert param.is_flag and not param.secondary_opts, (path, param.opts)
    monkeypatch.chdir(tmp_path)
    res = cli("init", "--force", "true")
    assert res.code == 2 and "--force is a flag" in res.err
    assert not (tmp_path / "true").exists()


@pytest.mark.parametrize("path", [*GROUPS, *LEAVES], ids=lambda p: " ".join(p) or "kiki-bot")
def test_every_help_ends_with_an_example(cli, path):
    res = cli(*path, "--help")
    assert res.code == 0
    last = [line.strip() for line in res.out.splitlines() if line.strip()][-1]
    assert last.startswith(f"Example: kiki-bot {' '.join(path)}".rstrip()), last


@pytest.mark.parametrize(
    ("args", "code"),
    [([], 2), (["nope"], 2), (["card", "check", "--bogus"], 2), (["removal", "match"], 2),
     (["ledger", "verify", "--json", "surplus"], 2), (["--version"], 0)],
    ids=str,
)
def test_exit_codes_through_the_installed_entry_point(args, code, tmp_path):
    res = subprocess.run([str(KIKI_BOT), *args], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr
    if code == 2 and args:
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


# What a Python repr looks like in text: None, a dict/list/tuple of strings, an object, a path or time object.
REPR = re.compile(r"\bNone\b|[\[{(]'|<[\w.]+ object at 0x|\b(?:Posix|Windows)?Path\(|\bdatetime\.\w+\(|\bDecimal\(")


def reprs(text: str) -> list[str]:
    return [text[max(0, m.start() - 60):m.end() + 60] for m in REPR.finditer(text)]


def test_the_repr_pattern_catches_python_reprs():
    assert all(reprs(t) for t in ["found None", "adapters: {'a': 1}", "['x']", "<kiki_bot.repo.cards.Rendered object at 0x7f>",
                                  "PosixPath('/x')", "datetime.datetime(2026, 1, 1)"])
    assert not reprs('{"a": null, "b": ["x"]} unknown adapter \'nope\' (known: a, b)')


def test_no_python_repr_in_any_output(cli, project, places, tmp_path, monkeypatch):
    """Every command, human and --json, on a test project with a removal history and on the bundled example."""
    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns(".kiki"))
    body, bad_body = places["{body}"], tmp_path / "bad.md"
    bad_body.write_text(Path(body).read_text().replace("acme/fw", "^.+$"))
    outputs = []

    def run(*args: str) -> None:
        for extra in ([], ["--json"]):
            res = cli(*args, *extra)
            outputs.append((args, extra, res.out + res.err))

    run("--version")
    run("card", "check")  # no card yet: a problem
    run("card", "render", "--date", "2026-05-06")
    run("card", "check")
    run("data", "manifest")
    run("removal", "match", "--body", body)
    run("removal", "match", "--body", str(bad_body))
    run("removal", "file", "--body", body, "--dry-run")
    request = cli("removal", "file", "--body", body, "--json").json()["request"]
    run("schedule", "plan")
    run("schedule", "run", "--dry-run", "--now", "2099-01-01T00:00:00Z")
    run("removal", "purge", request, "--dry-run")
    run("removal", "purge", request)
    run("ledger", "verify")
    run("card", "check")  # the purge changed the data: drift
    run("release", "tiny-lora/v0.2.0", "--dry-run")  # no local base model
    run("handle", "--event-name", "ping", "--event-path", places["{file}"])
    run("init", places["{empty}"], "--ref", "a" * 40)
    for args in (["card", "check"], ["card", "render"], ["data", "manifest"], ["ledger", "verify"],
                 ["removal", "match", "--body", body], ["schedule", "plan"],
                 ["release", "devstral-cpp-lora/v0.5.0", "--dry-run"]):
        run(*args, "-C", str(example))
    found = [f"{' '.join([*args, *extra])}: {hit!r}" for args, extra, text in outputs for hit in reprs(text)]
    assert not found, "\n".join(found)
