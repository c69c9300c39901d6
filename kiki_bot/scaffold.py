"""`kiki-bot init`: write the skeleton of a model repository (DESIGN.md section 2) into a directory.

It writes kiki.toml, an example adapter and source with a few records and their manifest, one thin caller
workflow per moment (pinned to a kiki-bot commit by full SHA), the removal-request issue form, and the
example's rendered card, so that `kiki-bot card check` passes right away. With a token it also creates the
labels the bot uses. It never overwrites a file unless told to.

The files come from templates/init/; `{{ name }}` placeholders are replaced by plain substitution (the
workflows contain GitHub's own `${{ ... }}` expressions, which stay as they are).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
from pathlib import Path

from kiki_bot.errors import BadInput
from kiki_bot.storage import write_text

KIKI_BOT_REPO = "kiki-bot/kiki-bot"
"""The GitHub repository whose reusable workflows the callers written by `init` use."""
KIKI_BOT_VERSION = "0.1.0"
KIKI_BOT_SHA = "5a54fa94f8afcbbc07a40fa97cedfe9c9ebed17f"
"""The kiki-bot commit the callers pin, by full SHA. Updated at each kiki-bot release to that release's
commit (README, "Releasing kiki-bot"); a commit cannot name itself, so it always points at an earlier one."""

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


def caller_workflows(
    repo: str = KIKI_BOT_REPO, sha: str = KIKI_BOT_SHA, version: str = KIKI_BOT_VERSION,
    default_branch: str = "main",
) -> dict[str, str]:
    """`.github/workflows/kiki-<moment>.yml` → text, each calling kiki-bot's reusable workflow at `sha`.
    A push trigger cannot name "the default branch", so `default_branch` is written in."""
    folder = templates() / "workflows"
    return {
        f".github/workflows/kiki-{m}.yml": fill(
            (folder / f"kiki-{m}.yml.in").read_text(encoding="utf-8"), repo=repo, sha=sha, version=version,
            default_branch=default_branch,
        )
        for m in MOMENTS
    }


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


def plan(repository: str | None, private_contact: str, today: dt.date, default_branch: str = "main") -> dict[str, str]:
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
    files.update(caller_workflows(default_branch=default_branch))
    files[FORM] = issue_form(private_contact)
    return files


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
    from kiki_bot.settings import Settings

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
) -> dict[Path, bytes]:
    """Every file `init` writes into `directory`, with its bytes, and nothing written there: the manifest and
    the card are made in a scratch copy. Existing files are a `BadInput` listing them unless `force`.

    `repository` (owner/name) defaults to GITHUB_REPOSITORY or the `origin` remote; it names the Hub namespace
    and the contact in kiki.toml, and is where the labels are created when a `token` is given.
    """
    import tempfile

    from kiki_bot import cards, manifests
    from kiki_bot.project import Project
    from kiki_bot.render import today

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
    day = today()
    files = plan(repository, private_contact or PLACEHOLDER_CONTACT, day, detect_default_branch(root))
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
    gitignore = root / ".gitignore"
    text = gitignore.read_text(encoding="utf-8") if gitignore.is_file() else ""
    if ".kiki/" not in text.splitlines():  # the bot's runs, index and lock live in .kiki/
        out[gitignore] = (text + ("" if not text or text.endswith("\n") else "\n") + ".kiki/\n").encode("utf-8")
    return out


def init(
    directory: Path | str,
    force: bool = False,
    token: str | None = None,
    repository: str | None = None,
    private_contact: str | None = None,
) -> list[Path]:
    """Scaffold a model repository in `directory` (see `staged`); returns the paths written."""
    from kiki_bot.storage import project_lock, write_bytes

    root = Path(directory)
    repository = resolve_repository(root, repository)
    files = staged(root, force, token, repository, private_contact)
    root.mkdir(parents=True, exist_ok=True)
    with project_lock(root):
        for path, data in files.items():
            write_bytes(path, data)
    if token:
        create_labels(repository, token)
    return list(files)


def create_labels(repository: str, token: str) -> list[str]:
    """Create the bot's labels in `repository` (GITHUB_API_URL); those that exist are left alone. Returns the new ones."""
    from github import GithubException
    from pydantic import SecretStr

    from kiki_bot.github import GitHub
    from kiki_bot.settings import Settings

    settings = Settings().model_copy(update={"github_token": SecretStr(token)})
    repo = GitHub(settings, repository).repo
    created = []
    for name, (color, description) in LABELS.items():
        try:
            repo.create_label(name=name, color=color, description=description)
        except GithubException as exc:
            errors = exc.data.get("errors", []) if isinstance(exc.data, dict) else []
            if exc.status == 422 and any(
                isinstance(e, dict) and e.get("code") == "already_exists" for e in errors
            ):
                continue
            message = exc.data.get("message") if isinstance(exc.data, dict) else exc.data
            raise BadInput(
                f"label {name!r} in {repository}", f"GitHub answered {exc.status}: {message}"
            ) from None
        created.append(name)
    return created


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
