"""Progress bars on long work (index build, card render, purge, data manifest): drawn on stderr for a person
at a terminal, never under --json, in CI, or into a pipe or log file."""

from __future__ import annotations

import io
import json
import sys

import pytest
from factory import record, write_jsonl

from kiki_bot import console
from kiki_bot.cli import main


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, and keeps what was drawn on it."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("json_mode", "env", "tty", "shown"),
    [
        (False, {}, True, True),
        (False, {"CI": ""}, True, True),
        (False, {"CI": "false"}, True, True),
        (True, {}, True, False),
        (False, {"CI": "true"}, True, False),
        (False, {"CI": "1"}, True, False),
        (False, {}, False, False),
        (True, {"CI": "true"}, False, False),
    ],
)
def test_a_bar_only_for_a_person_at_a_terminal(json_mode, env, tty, shown):
    assert console.show_progress(json_mode, env, tty) is shown


def grow(project, n: int = 200) -> None:
    """Enough records that every step has work to show."""
    write_jsonl(project / "data" / "acme-fw" / "part-001.jsonl",
                [record("acme-fw", i, f"int g{i}(void) {{ return {i}; }}") for i in range(100, 100 + n)])


def run(*args: str, stderr) -> tuple[int, str]:
    sys.stderr = stderr
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.stderr = sys.__stderr__
    return code, stderr.getvalue()


@pytest.fixture
def terminal(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    return Terminal


def test_long_work_draws_a_bar_on_a_terminal(project, terminal):
    grow(project)
    code, err = run("data", "manifest", "-C", project, stderr=terminal())
    assert code == 0 and "checking records" in err
    code, err = run("card", "render", "-C", project, stderr=terminal())
    assert code == 0 and "rendering cards" in err and "indexing records" in err


@pytest.mark.parametrize("how", ["json", "ci", "pipe"])
def test_no_bar_under_json_in_ci_or_into_a_pipe(project, terminal, monkeypatch, how):
    grow(project)
    if how == "ci":
        monkeypatch.setenv("CI", "true")
    args = ["--json"] if how == "json" else []
    code, err = run("data", "manifest", "-C", project, *args, stderr=io.StringIO() if how == "pipe" else terminal())
    assert code == 0 and err == "acme-fw: 220 records, manifest updated\n"
    code, err = run("card", "render", "-C", project, *args, stderr=io.StringIO() if how == "pipe" else terminal())
    assert code == 0 and err == "tiny-lora v0.1.0: README.md, CHANGELOG.md, card.json\n"


def test_nothing_but_the_messages_reach_a_non_terminal(cli, project):
    """Through the in-process entry point (stderr captured, not a terminal): every long step, no bar."""
    grow(project)
    assert cli("data", "manifest", "-C", project).err == "acme-fw: 220 records, manifest updated\n"
    assert cli("card", "render", "-C", project).err == "tiny-lora v0.1.0: README.md, CHANGELOG.md, card.json\n"
    body = project.parent / "request.md"
    body.write_text("### Content to remove\n\nacme/fw\n\n### Your relationship to the content\n\n"
                    "I am the author or rightsholder\n\n### Reason\n\nCopyright\n\n### Additional details\n\n"
                    "_No response_\n\n### Confirmation\n\n- [X] I confirm that the information in this request "
                    "is accurate\n")
    request = json.loads(cli("removal", "file", "--body", body, "--json", "-C", project).out)["request"]
    res = cli("removal", "purge", request, "-C", project)
    assert res.code == 0 and res.err == f"{request}: purged; no PR (no repository configured)\n"
