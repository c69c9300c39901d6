"""`kiki-bot init`: write the skeleton of a model repository (kiki_bot.repo.skeleton) into a directory.

It writes kiki.toml, an example adapter and source with a few records and their manifest, one thin caller
workflow per moment (pinned by full SHA to the commit of the kiki-bot that runs `init`), the removal-request
issue form, `.gitattributes`, and the example's rendered draft card. `kiki-bot card check` then names the
placeholders only the user can fill in. With a token it also creates the labels the bot uses. It never
overwrites a file unless told to.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

from kiki_bot.core.errors import BadInput
from kiki_bot.repo.skeleton import (
    ADAPTER,
    EXAMPLE_VERSION,
    FORM,
    KIKI_BOT_REPO,
    LABELS,
    PLACEHOLDER_CONTACT,
    SOURCE,
    plan,
    templates,
)
from kiki_bot.repo.storage import write_text

if TYPE_CHECKING:
    from kiki_bot.shells.effects import Effects

_REPOSITORY = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")  # nothing a workflow's branch filter would read as a pattern
SHA40 = re.compile(r"^[0-9a-f]{40}$")
INSTALL_FROM_GIT = f"pip install 'kiki-bot @ git+https://github.com/{KIKI_BOT_REPO}@<commit>'"


def kiki_bot_ref(ref: str | None = None, dist: metadata.Distribution | None = None) -> tuple[str, str]:
    """The kiki-bot commit the callers pin, and the note their comment carries: `ref`, else the commit of the
    kiki-bot that runs, from its installed distribution's metadata (PEP 610 `direct_url.json`).

    A wrong pin would run some other kiki-bot in CI than the one that wrote the callers, so without a commit
    this is a `BadInput` that says how to get one.
    """
    if ref is not None:
        if not SHA40.match(ref.lower()):
            raise BadInput("--ref", f"expected a full 40-hex commit SHA of {KIKI_BOT_REPO}, got {ref!r}")
        return ref.lower(), "the kiki-bot commit given to `kiki-bot init --ref`"
    try:
        dist = dist or metadata.distribution("kiki-bot")
    except metadata.PackageNotFoundError:
        commit, why = None, "kiki-bot runs without being installed (no distribution metadata)"
    else:
        commit, why = _installed_commit(dist)
    if commit is None:
        raise BadInput(
            "--ref",
            f"cannot tell which kiki-bot commit the workflows should pin: {why}. Install kiki-bot from git "
            f"({INSTALL_FROM_GIT}), or commit your changes in the kiki-bot checkout, or pass "
            f"--ref <40-hex commit of {KIKI_BOT_REPO}>",
        )
    return commit, f"kiki-bot {dist.version}, the commit `kiki-bot init` ran from"


def _installed_commit(dist: metadata.Distribution) -> tuple[str | None, str]:
    """(commit, why not): a VCS install's `vcs_info.commit_id`; a local checkout's HEAD when it is clean."""
    text = dist.read_text("direct_url.json")
    if text is None:
        return None, f"kiki-bot {dist.version} was not installed from git or from a checkout (no direct_url.json)"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None, "its direct_url.json is not JSON"
    vcs = doc.get("vcs_info") if isinstance(doc, dict) else None
    if isinstance(vcs, dict):
        commit = str(vcs.get("commit_id", ""))
        if vcs.get("vcs") == "git" and SHA40.match(commit):
            return commit, ""
        return None, f"it was installed from {vcs.get('vcs')!r} without a full git commit id"
    url = str(doc.get("url", "")) if isinstance(doc, dict) else ""
    if not url.startswith("file://"):
        return None, f"it was installed from {url or 'an unknown place'}, not from git"
    return _checkout_head(Path(url2pathname(urlsplit(url).path)))


def _checkout_head(checkout: Path) -> tuple[str | None, str]:
    """HEAD of the kiki-bot checkout an editable or local install came from, if nothing in it is uncommitted."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()

    try:
        head, dirty = git("rev-parse", "--verify", "HEAD"), git("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return None, f"it was installed from {checkout}, which is not a git checkout with a commit"
    if dirty:
        return None, f"its checkout {checkout} has uncommitted changes, so no commit holds the code that runs"
    return head, ""


def detect_default_branch(root: Path) -> str:
    """The branch the callers' push trigger names: origin's HEAD, else the branch checked out, else main."""
    for ref in ("refs/remotes/origin/HEAD", "HEAD"):
        try:
            name = subprocess.run(["git", "-C", str(root), "symbolic-ref", "--short", ref], capture_output=True,
                                  text=True, timeout=10, check=True).stdout.strip().removeprefix("origin/")
        except (OSError, subprocess.SubprocessError):
            continue
        if _BRANCH.match(name):
            return name
    return "main"


def detect_repository(root: Path) -> str | None:
    """`owner/name` of the directory's GitHub `origin` remote, if it has one."""
    try:
        url = subprocess.run(
            ["git", "-C", str(root), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(
        r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)([\w.-]+/[\w.-]+?)(?:\.git)?/?$",
        url,
    )
    return m.group(1) if m else None


def resolve_repository(root: Path, repository: str | None) -> str | None:
    """`repository`, else GITHUB_REPOSITORY, else the `origin` remote's; checked to be owner/name."""
    from kiki_bot.shells.settings import Settings

    repository = repository or Settings().github_repository or detect_repository(root)
    if repository is not None and not _REPOSITORY.match(repository):
        raise BadInput("--repository", f"expected owner/name, got {repository!r}")
    return repository


def staged(
    directory: Path | str,
    force: bool = False,
    token: str | None = None,
    repository: str | None = None,
    private_contact: str | None = None,
    ref: str | None = None,
) -> dict[Path, bytes]:
    """Every file `init` writes into `directory`, with its bytes, and nothing written there: the manifest and
    the card are made in a scratch copy. Existing files are a `BadInput` listing them unless `force`;
    `.gitignore` and `.gitattributes` only gain the lines they lack.

    `repository` (owner/name) defaults to GITHUB_REPOSITORY or the `origin` remote; it names the Hub namespace
    and the contact in kiki.toml, and is where the labels are created when a `token` is given. The callers pin
    `ref`, else the commit of the running kiki-bot (`kiki_bot_ref`).
    """
    import tempfile

    from kiki_bot.render import today
    from kiki_bot.repo import cards, manifests
    from kiki_bot.repo.project import Project

    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise BadInput(str(root), "not a directory")
    repository = resolve_repository(root, repository)
    if token and repository is None:
        raise BadInput(
            "--repository",
            "needed to create the labels: owner/name (or set GITHUB_REPOSITORY, "
            "or add a GitHub `origin` remote)",
        )
    pin = kiki_bot_ref(ref)
    day = today()
    files = plan(repository, private_contact or PLACEHOLDER_CONTACT, day, pin, detect_default_branch(root))
    generated = [
        f"data/{SOURCE}/{manifests.MANIFEST}",
        *(f"cards/{ADAPTER}/{name}" for name in ("README.md", "CHANGELOG.md", "card.json")),
    ]
    existing = sorted(str(root / rel) for rel in [*files, *generated] if (root / rel).exists())
    if existing and not force:
        raise BadInput(
            str(root),
            f"{len(existing)} file(s) exist already; rerun with --force to overwrite them: "
            + ", ".join(existing),
        )
    with tempfile.TemporaryDirectory(prefix="kiki-init-") as scratch:
        copy = Path(scratch)
        for rel, text in files.items():
            write_text(copy / rel, text)
        manifests.refresh(copy / "data" / SOURCE)
        project = Project(copy)
        adapter = project.adapter(ADAPTER)
        cards.write(project, adapter, cards.render_adapter(project, adapter, EXAMPLE_VERSION, day))
        out = {root / rel: (copy / rel).read_bytes() for rel in [*files, *generated]}
    attributes = (templates() / "gitattributes").read_text(encoding="utf-8").splitlines()
    for name, lines in ((".gitignore", [".kiki/"]), (".gitattributes", attributes)):  # .kiki/: runs, index, lock
        if (data := _with_lines(root / name, lines)) is not None:
            out[root / name] = data
    return out


@dataclass(frozen=True)
class Scaffolded:
    """What `init` wrote (in a dry run: would write) and where."""

    repository: str | None
    files: list[Path]
    labels: list[str]  # created on GitHub where missing (with a token)


def init(
    directory: Path | str,
    force: bool = False,
    token: str | None = None,
    repository: str | None = None,
    private_contact: str | None = None,
    ref: str | None = None,
    fx: Effects | None = None,
) -> Scaffolded:
    """Scaffold a model repository in `directory` (see `staged`) through `fx` (default: live, files only);
    with a `token`, create the labels in `repository` too."""
    from kiki_bot.repo.storage import writer_lock
    from kiki_bot.shells.effects import Effects
    from kiki_bot.shells.settings import Settings

    root = Path(directory)
    repository = resolve_repository(root, repository)
    files = staged(root, force, token, repository, private_contact, ref)
    if fx is None:
        fx = Effects(Settings())
    if not fx.dry_run:
        root.mkdir(parents=True, exist_ok=True)
    with writer_lock(root, fx.dry_run):
        fx.write_files(files=files)
    if token:
        fx.create_labels(repository=repository, labels=LABELS)
    return Scaffolded(repository, list(files), list(LABELS) if token else [])


def _with_lines(path: Path, lines: list[str]) -> bytes | None:
    """A git file (.gitignore, .gitattributes) with the lines it lacks appended, keeping the user's own;
    None when it has them all."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    have = set(text.splitlines())
    if not (missing := [line for line in lines if line not in have]):
        return None
    return (text + ("" if not text or text.endswith("\n") else "\n") + "\n".join(missing) + "\n").encode("utf-8")


def next_steps(root: Path, repository: str | None) -> str:
    """What the user does after `init`, in order."""
    where = f"https://github.com/{repository}/settings" if repository else "the repository's Settings"
    return "\n".join(
        [
            f"Next steps for {root}:",
            "  1. Edit kiki.toml (provider identity, licence policy, Hub namespace), then replace the example adapter,",
            "     source and data with your own; `kiki-bot data manifest` and `kiki-bot card render` keep them in step.",
            f"     The removal form sends personal-data requests to provider.private_contact; keep {FORM} in step.",
            f"  2. In {where} → Environments, create `hub-publish` and add the secret HF_TOKEN (a Hub write token) there.",
            "  3. Register a self-hosted runner on Apple Silicon with the labels self-hosted, macOS, ARM64 (release training).",
            f"  4. Commit and push, then tag a release: git tag {ADAPTER}/v0.1.0 && git push origin {ADAPTER}/v0.1.0",
            "     kiki-bot trains, renders the card and opens a review pull request; merging it publishes the adapter.",
        ]
    )
