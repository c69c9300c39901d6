"""Emulator fixtures: one GitHub and one Hub emulator per test session, emptied before each test.

huggingface_hub reads HF_ENDPOINT once, when `huggingface_hub.constants` is first imported. Importing this
module therefore starts the Hub emulator and sets the HF_* environment immediately, and it refuses to load if
huggingface_hub got there first. tests/conftest.py must import it before anything that may import
huggingface_hub (kiki_bot modules included):

    from emulator_fixtures import gh, gh_client, gh_server, hf_api, hub, hub_server  # noqa: F401  (first!)
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from kiki_bot.demo.emulators import GitHubEmulator, HubEmulator, Server, serve
from kiki_bot.demo.emulators.recorder import RECORD_ENV

if TYPE_CHECKING:
    from github import Github
    from huggingface_hub import HfApi

HF_TOKEN = "hf_emulator_token"
GITHUB_TOKEN = "ghs_emulator_token"


def _start_hub() -> tuple[HubEmulator, Server]:
    if "huggingface_hub.constants" in sys.modules:
        raise RuntimeError(
            "huggingface_hub was imported before the Hub emulator started, so its HF_ENDPOINT is frozen; "
            "import emulator_fixtures first in tests/conftest.py"
        )
    emulator = HubEmulator()
    server = serve(emulator)
    hf_home = tempfile.mkdtemp(prefix="kiki-hf-home-")
    atexit.register(shutil.rmtree, hf_home, ignore_errors=True)
    os.environ.update(
        HF_ENDPOINT=server.url,
        HF_HOME=hf_home,
        HF_TOKEN=HF_TOKEN,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",  # LFS uploads through the LFS batch API the emulator has, not xet
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        NO_PROXY=",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])),
    )
    for name in ("HF_OIDC_RESOURCE", "HF_HUB_OFFLINE"):
        os.environ.pop(name, None)
    return emulator, server


def _start_recording() -> None:
    """Every emulator of this session, subprocesses' included, records what it serves (for test_conformance_*),
    into a fresh temporary folder, or into $KIKI_EMULATOR_RECORD when set (kept, to look at)."""
    if not os.environ.get(RECORD_ENV):
        folder = tempfile.mkdtemp(prefix="kiki-emulator-record-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ[RECORD_ENV] = folder


_start_recording()
HUB, HUB_SERVER = _start_hub()
GITHUB = GitHubEmulator()
GITHUB_SERVER = serve(GITHUB)


@pytest.fixture(scope="session")
def hub_server() -> Server:
    """The Hub emulator's server; HF_ENDPOINT is its `.url`."""
    return HUB_SERVER


@pytest.fixture(scope="session")
def gh_server() -> Server:
    return GITHUB_SERVER


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    """The Hub emulator, emptied; fails the test if a handler crashed."""
    HUB.reset()
    yield HUB
    assert not HUB.errors, HUB.errors[0]


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubEmulator]:
    """The GitHub emulator, emptied, with GITHUB_API_URL/GITHUB_TOKEN set as the Actions runner would."""
    GITHUB.reset()
    monkeypatch.setenv("GITHUB_API_URL", GITHUB_SERVER.url)
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    yield GITHUB
    assert not GITHUB.errors, GITHUB.errors[0]


def github_client() -> Github:
    """PyGithub pointed at the emulator, without throttling or retries (they only add sleeps in tests)."""
    from github import Auth, Github

    return Github(
        base_url=GITHUB_SERVER.url,
        auth=Auth.Token(GITHUB_TOKEN),
        seconds_between_requests=None,
        seconds_between_writes=None,
        retry=None,
        lazy=True,
    )


@pytest.fixture
def gh_client(gh: GitHubEmulator) -> Github:
    return github_client()


@pytest.fixture
def hf_api(hub: HubEmulator) -> HfApi:
    from huggingface_hub import HfApi

    return HfApi()
