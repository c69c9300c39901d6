"""The Hugging Face Hub emulator (see `emulator`), a package of modules by API area."""

from .cards import validate_card
from .emulator import HubEmulator
from .state import LFS_THRESHOLD, lfs_pointer

__all__ = ["LFS_THRESHOLD", "HubEmulator", "lfs_pointer", "validate_card"]
