"""What the commands share below their table (`cli`): the arrangement of argv and the one-line usage error,
the parsers of option values into the bot's types (BadInput naming the option), the step outputs for the
Action, and which service an HTTP error came from. Kept apart so that cli.py is the commands only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from kiki_bot.core.errors import BadInput


def write_outputs(outputs: dict[str, str]) -> None:
    """Step outputs for the Action, with a delimiter that cannot occur in a value."""
    import secrets

    from kiki_bot.shells.settings import Settings

    path = Settings().github_output
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for key, value in outputs.items():
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
            fh.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")


def date_option(date: str | None) -> dt.date | None:
    """--date as a date (None: the command's default)."""
    try:
        return dt.date.fromisoformat(date) if date else None
    except ValueError:
        raise BadInput("--date", f"expected YYYY-MM-DD, got {date!r}") from None


def read_body(path: Path) -> str:
    """--body's text: an unreadable or non-UTF-8 file is bad input, not a traceback."""
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise BadInput(f"--body {path}", f"cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BadInput(f"--body {path}", "not UTF-8 text") from None


def time_option(value: str | None) -> dt.datetime | None:
    """--now in UTC: a time without a zone would be read differently on each runner."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadInput("--now", f"expected an ISO time such as 2026-05-06T12:00:00Z, got {value!r}") from None
    if moment.tzinfo is None:
        raise BadInput("--now", "the time needs a zone (e.g. Z or +02:00)")
    return moment.astimezone(dt.UTC)


def remote_service(exc: Exception) -> str | None:
    """Which service an HTTP error came from (their clients raise their own types), if any."""
    package = type(exc).__module__.split(".")[0]
    return {"github": "GitHub", "huggingface_hub": "the Hugging Face Hub"}.get(package)


_GLOBAL_WITH_VALUE = ("-C", "--project")


def arrange(root: Any, args: list[str]) -> tuple[list[str], str, bool]:
    """Move -C/--project/--json written before the subcommand to just after it, where the command parses
    them (DESIGN.md section 4 accepts them on either side). Also returns the command path the words name
    and whether it is only a group (`kiki-bot`, `kiki-bot card`): a usage error that shows that group's help."""
    command, words, hoisted, path, i = root, [], [], ["kiki-bot"], 0
    while i < len(args) and hasattr(command, "commands"):
        token = args[i]
        if token in _GLOBAL_WITH_VALUE:
            hoisted += args[i:i + 2]
            i += 2
            continue
        if token == "--json" or token.startswith(("--project=", "-C")):
            hoisted.append(token)
        else:
            words.append(token)
            if not token.startswith("-"):
                command = command.commands.get(token)
                if command is None:  # an unknown command: click names it
                    return words + args[i + 1:], " ".join(path), False
                path.append(token)
        i += 1
    if hasattr(command, "commands"):
        return words, " ".join(path), not any(w.startswith("-") for w in words)
    return words + hoisted + args[i:], " ".join(path), False


def usage_line(exc: Any, path: str) -> str:
    """A usage error in one line: the command, what was wrong, where the help is."""
    where = exc.ctx.command_path if exc.ctx is not None else path
    return f"error: {where}: {' '.join(exc.format_message().split())} (see `{where} --help`)"
