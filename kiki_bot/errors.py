"""The two ways a command can fail, each with its exit code (DESIGN.md section 4)."""

from __future__ import annotations


class KikiError(Exception):
    """Base of the bot's own errors; `exit_code` is what the CLI exits with."""

    exit_code = 2


class BadInput(KikiError):
    """Input that cannot be used: names where (file, line, field) and what was expected. Exit 2."""

    exit_code = 2

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}" if where else problem)


class CheckFailed(KikiError):
    """A check found a problem (drift, broken ledger, missed deadline). Exit 1."""

    exit_code = 1

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)
