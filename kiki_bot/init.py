"""`kiki-bot init`: write the skeleton of a model repository (DESIGN.md section 2) into a directory.

It writes kiki.toml, an example adapter and source with a few records and their manifest, one thin caller
workflow per moment (pinned by full SHA to the commit of the kiki-bot that runs `init`), the removal-request
issue form, `.gitattributes`, and the example's rendered draft card. `kiki-bot card check` then names the
placeholders only the user can fill in. With a token it also creates the labels the bot uses. It never
overwrites a file unless told to.

The files come from kiki_bot/render/templates/init/; `{{ name }}` placeholders are replaced by plain
substitution (the workflows contain GitHub's own `${{ ... }}` expressions, which stay as they are).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from kiki_bot.core.errors import BadInput
from kiki_bot.repo.storage import write_text

KIKI_BOT_REPO = "kiki-bot/kiki-bot"
"""The GitHub repository whose reusable workflows the callers written by `init` use."""

MOMENTS = ("release", "publish", "removal-triage", "removal-purge", "removal-refresh", "deadlines", "card-review")
"""One reusable workflow `.github/workflows/<moment>.yml` each, and one caller `kiki-<moment>.yml`."""

LABELS: dict[str, tuple[str, str]] = {
    "removal-request": ("d93f0b", "A request to remove content from the training data"),
    "awaiting-approval": ("fbca04", "Removal request triaged; waiting for a maintainer's /kiki approve"),
    "invalid": ("e4e669", "The request could not be used as it is; see the bot's comment"),
    "purged": ("0e8a16", "The records are removed from the data; a release without them is pending"),
    "retrain-scheduled": ("1d76db", "A retrain that releases the adapter without these records is planned"),
    "deadline-at-risk": ("ff9f1c", "The removal deadline may be missed"),
    "deadline-missed": ("b60205", "The removal deadline was missed; the fallback was applied"),
}
"""The labels the bot reads and sets, with their colour and description."""

FORM = ".github/ISSUE_TEMPLATE/removal-request.yml"
ADAPTER = "example-lora"
SOURCE = "example-source"
EXAMPLE_VERSION = "0.1.0"
PLACEHOLDER_CONTACT = "privacy@example.org"
PLACEHOLDER_OWNER = "example-org"
_PLACEHOLDER = re.compile(r"(?<!\$)\{\{ *([a-z_]+) *\}\}")
_REPOSITORY = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")  # nothing a workflow's branch filter would read as a pattern


def templates() -> Path:
    from kiki_bot.render import templates_dir

    return templates_dir() / "init"


def fill(text: str, **values: str) -> str:
    """Replace each `{{ name }}` (not GitHub's `${{ }}`) by its value; an unknown name is a bug, so it raises."""

    def one(m: re.Match) -> str:
        if m.group(1) not in values:
            raise KeyError(f"no value for template placeholder {m.group(0)}")
        return values[m.group(1)]

    return _PLACEHOLDER.sub(one, text)


def _quoted(value: str) -> str:
    """A string as a TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def issue_form(private_contact: str) -> str:
    """The removal-request issue form, pointing personal-data requests to `private_contact`."""
    if not private_contact.strip() or any(ord(c) < 32 or c == "\x7f" for c in private_contact):
        raise BadInput(
            "private_contact", "expected one line of text (an address or URL for personal-data requests)"
        )
    return fill(
        (templates() / "removal-request.yml").read_text(encoding="utf-8"),
        private_contact=private_contact.strip(),
    )


def caller_workflows(pin: tuple[str, str], repo: str = KIKI_BOT_REPO, default_branch: str = "main") -> dict[str, str]:
    """`.github/workflows/kiki-<moment>.yml` → text, each calling kiki-bot's reusable workflow at the pinned
    commit (`pin` is that SHA and the note its comment carries, see `kiki_bot_ref`). A push trigger cannot
    name "the default branch", so `default_branch` is written in."""
    sha, note = pin
    folder = templates() / "workflows"
    return {
        f".github/workflows/kiki-{m}.yml": fill(
            (folder / f"kiki-{m}.yml.in").read_text(encoding="utf-8"), repo=repo, sha=sha, pin_note=note,
            default_branch=default_branch,
        )
        for m in MOMENTS
    }


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


def example_records(today: dt.date) -> list[dict]:
    """A few records of the example source, each with its `_provenance` (DESIGN.md section 2)."""
    snippets = [
        (
            "src/led.c",
            "led_toggle",
            "void led_toggle(void)\n{\n    led_state = !led_state;\n    gpio_write(LED_PIN, led_state);\n}\n",
            "It inverts the cached LED state and writes it to the LED pin, so each call switches the LED.",
        ),
        (
            "src/uart.c",
            "uart_put",
            "int uart_put(char c)\n{\n    while (!(UART->SR & UART_SR_TXE)) {}\n    UART->DR = c;\n    return c;\n}\n",
            "It busy-waits until the transmit register is empty, then writes the character and returns it.",
        ),
        (
            "src/crc.c",
            "crc8",
            "uint8_t crc8(const uint8_t *p, size_t n)\n{\n    uint8_t c = 0;\n    while (n--) c = table[c ^ *p++];\n    return c;\n}\n",
            "It computes a table-driven CRC-8 over n bytes, starting from 0.",
        ),
        (
            "src/debounce.c",
            "debounced",
            "bool debounced(bool raw)\n{\n    count = raw ? count + 1 : 0;\n    return count >= 5;\n}\n",
            "It reports a press only after five consecutive samples read high.",
        ),
    ]
    records = []
    for idx, (path, name, code, answer) in enumerate(snippets):
        records.append(
            {
                "messages": [
                    {"role": "user", "content": f"What does `{name}` do?\n\n```c\n{code}```"},
                    {"role": "assistant", "content": answer},
                ],
                "_provenance": {
                    "source": SOURCE,
                    "license": "MIT",
                    "record_idx": idx,
                    "access_date": today.isoformat(),
                    "origin": f"https://github.com/example-org/example-firmware/blob/main/{path}",
                    "repo": "example-org/example-firmware",
                    "path": path,
                    "sha256": hashlib.sha256(code.encode("utf-8")).hexdigest(),
                },
            }
        )
    return records


def plan(repository: str | None, private_contact: str, today: dt.date, pin: tuple[str, str],
         default_branch: str = "main") -> dict[str, str]:
    """Every file `init` writes (relative path → text), before the manifest and the card."""
    owner = repository.split("/")[0] if repository else PLACEHOLDER_OWNER
    contact = (
        f"https://github.com/{repository}/issues"
        if repository
        else "https://github.com/example-org/models/issues"
    )
    values = {
        "contact": _quoted(contact),
        "private_contact": _quoted(private_contact),
        "namespace": _quoted(owner),
        "hub_repo": _quoted(f"{owner}/{ADAPTER}"),
        "today": today.isoformat(),
    }
    root = templates()
    files = {
        rel: fill((root / rel).read_text(encoding="utf-8"), **values)
        for rel in ("kiki.toml", f"adapters/{ADAPTER}.toml", f"sources/{SOURCE}.toml")
    }
    files[f"data/{SOURCE}/part-000.jsonl"] = "".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in example_records(today)
    )
    files.update(caller_workflows(pin, default_branch=default_branch))
    files[FORM] = issue_form(private_contact)
    return files


PLACEHOLDER_KEYS: dict[str, tuple[str, ...]] = {
    "kiki.toml": ("provider.name", "provider.contact", "provider.website", "provider.copyright_policy_url",
                  "provider.private_contact", "hub.namespace"),
    f"adapters/{ADAPTER}.toml": ("description", "hub_repo", "intended_use", "limitations", "illegal_content_measures"),
}
"""The values `init` writes that only the user can give (identity, contact, the adapter's own words): a card
that still carries them is not filled in. Their placeholder text is read from the templates, never repeated."""


def _lookup(doc: dict, key: str) -> object:
    for part in key.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


@functools.cache
def _placeholder_values() -> dict[str, dict[str, object]]:
    files = plan(None, PLACEHOLDER_CONTACT, dt.date(2000, 1, 1), ("0" * 40, ""))
    return {rel: {key: _lookup(tomllib.loads(files[rel]), key) for key in keys}
            for rel, keys in PLACEHOLDER_KEYS.items()}


def placeholders(root: Path, adapter: str) -> list[str]:
    """`<file>: key `<key>`: ...` for each value of kiki.toml and `adapters/<adapter>.toml` still as `init` wrote it."""
    wanted = _placeholder_values()
    problems = []
    for rel, template in (("kiki.toml", "kiki.toml"), (f"adapters/{adapter}.toml", f"adapters/{ADAPTER}.toml")):
        path = root / rel
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue  # loading the project reports what is wrong with the file itself
        for key, value in wanted[template].items():
            if _lookup(doc, key) == value:
                shown = json.dumps(value, ensure_ascii=False)
                problems.append(f"{rel}: key `{key}`: not filled in: still the placeholder {shown} that `kiki-bot init` wrote")
    return problems


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


def init(
    directory: Path | str,
    force: bool = False,
    token: str | None = None,
    repository: str | None = None,
    private_contact: str | None = None,
    ref: str | None = None,
) -> list[Path]:
    """Scaffold a model repository in `directory` (see `staged`); returns the paths written."""
    from kiki_bot.repo.storage import project_lock, write_bytes

    root = Path(directory)
    repository = resolve_repository(root, repository)
    files = staged(root, force, token, repository, private_contact, ref)
    root.mkdir(parents=True, exist_ok=True)
    with project_lock(root):
        for path, data in files.items():
            write_bytes(path, data)
    if token:
        from pydantic import SecretStr

        from kiki_bot.shells.effects import Effects
        from kiki_bot.shells.settings import Settings

        Effects(Settings(github_token=SecretStr(token))).create_labels(repository=repository, labels=LABELS)
    return list(files)


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
