from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# The release's opt-out check asks no remote host in tests (the data's origins are github.com, unreachable
# here); tests/test_optouts.py points the checker at local servers.
os.environ.setdefault("KIKI_OPTOUTS_OFFLINE", "1")

# Starts the Hub emulator and sets HF_ENDPOINT before anything imports huggingface_hub.
from emulator_fixtures import gh, gh_client, gh_server, hf_api, hub, hub_server  # noqa: F401
from factory import make_project

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "devstral-cpp-lora"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys):
    """Run `kiki-bot ...` in-process through the real entry point; returns exit code and output."""
    from kiki_bot.cli import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "repo")


@pytest.fixture
def streaming(monkeypatch: pytest.MonkeyPatch):
    """Make the provenance index unusable, so every caller streams the JSONL (the reference it must equal)."""
    from kiki_bot.index import store

    @contextlib.contextmanager
    def run():
        with monkeypatch.context() as m:
            m.setattr(store, "_open", lambda *a, **k: None)
            yield

    return run


LAST = {"test_everything_the_emulator_served_is_what_github_describes",
        "test_every_hub_answer_huggingface_hub_reads_carries_what_the_hub_sends"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The conformance checks of everything the emulators served run after every other test."""
    items.sort(key=lambda item: item.name in LAST)


def pytest_terminal_summary(terminalreporter) -> None:
    """The conformance figures (and the exceptions used) in the run's closing note."""
    conformance = sys.modules.get("openapi_conformance")
    for line in getattr(conformance, "SUMMARY", []):
        terminalreporter.write_line(line)
