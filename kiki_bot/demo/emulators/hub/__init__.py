"""The Hugging Face Hub emulator (see `emulator`), a package of modules by API area."""

from .emulator import LFS_THRESHOLD, HubEmulator, lfs_pointer, validate_card

__all__ = ["LFS_THRESHOLD", "HubEmulator", "lfs_pointer", "validate_card"]
