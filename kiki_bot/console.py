"""What a person sees on stderr (messages, progress bars) and what a machine reads on stdout (JSON).

Kept free of heavy imports: rich is loaded only when something is actually drawn, so `kiki-bot handle`
starts fast. `quiet` is set by the CLI under `--json`, where a progress bar would only be noise.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

quiet = False


def say(message: str) -> None:
    """Human output goes to stderr so stdout stays clean for --json."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(message, markup=False)


def plain(value: Any) -> Any:
    """JSON for the values kiki-bot reports; anything else is a bug, never a Python repr in the output."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if hasattr(value, "model_dump"):  # pydantic models, in their JSON form
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not something kiki-bot prints as JSON")


def dumps(doc: Any, **options: Any) -> str:
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, default=plain, **options)


def show_progress(json_mode: bool, env: Mapping[str, str], stderr_is_tty: bool) -> bool:
    """A bar only for a person at a terminal: never under --json, in CI, or into a log file or pipe."""
    in_ci = env.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return not json_mode and not in_ci and stderr_is_tty


_bar: Any = None  # the rich Progress being drawn; a nested piece of work adds its task to it


@contextlib.contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)` (n of `total` done: items or bytes); draws a rich bar on stderr when
    `show_progress` says a person is watching. Cheap enough to call once a record: the bar moves in steps
    of a five-hundredth of the total."""
    global _bar
    if not show_progress(quiet, os.environ, sys.stderr.isatty()):
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    outer = _bar is None
    if outer:
        _bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True)
        _bar.start()
    task = _bar.add_task(description, total=total)
    step, pending = max(1, total // 500), 0

    def advance(n: int = 1) -> None:
        nonlocal pending
        pending += n
        if pending >= step:
            _bar.advance(task, pending)
            pending = 0

    try:
        yield advance
    finally:
        _bar.remove_task(task)
        if outer:
            _bar.stop()
            _bar = None
