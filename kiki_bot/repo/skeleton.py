"""The skeleton of a model repository (DESIGN.md section 2), as `kiki-bot init` writes it: kiki.toml, an
example adapter and source with a few records, one thin caller workflow per moment, the removal-request
issue form; and which of its values only the user can fill in (`kiki-bot card check` names them).

The files come from kiki_bot/render/templates/init/; `{{ name }}` placeholders are replaced by plain
substitution (the workflows contain GitHub's own `${{ ... }}` expressions, which stay as they are).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import tomllib
from pathlib import Path

from kiki_bot.core.errors import BadInput

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
