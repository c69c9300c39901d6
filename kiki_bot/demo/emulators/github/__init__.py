"""The GitHub REST emulator (see `emulator`), a package of modules by API area."""

from .emulator import GitHubEmulator

__all__ = ["GitHubEmulator"]
