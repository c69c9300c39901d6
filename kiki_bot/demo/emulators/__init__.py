"""Local, stateful emulators of the GitHub REST and Hugging Face Hub API subsets kiki-bot uses (DESIGN.md §6).

The real PyGithub and huggingface_hub talk to them over HTTP on 127.0.0.1. These modules import neither
library, so a Hub emulator can be started, and HF_ENDPOINT set, before huggingface_hub is first imported.
"""

from .github import GitHubEmulator
from .hub import HubEmulator
from .server import RecordedRequest, Server, serve

__all__ = ["GitHubEmulator", "HubEmulator", "RecordedRequest", "Server", "serve"]
