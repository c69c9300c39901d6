"""Runtime settings (tokens, endpoints, the Actions environment) read from the environment.

Names follow what the Actions runner and the Hub library already use, so the workflows pass
secrets through `env:` and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    github_token: SecretStr | None = Field(None, validation_alias=AliasChoices("KIKI_GITHUB_TOKEN", "GITHUB_TOKEN"))
    github_api_url: str = Field("https://api.github.com", validation_alias="GITHUB_API_URL")
    github_repository: str | None = Field(None, validation_alias="GITHUB_REPOSITORY")
    github_output: Path | None = Field(None, validation_alias="GITHUB_OUTPUT")
    github_step_summary: Path | None = Field(None, validation_alias="GITHUB_STEP_SUMMARY")
    hf_token: SecretStr | None = Field(None, validation_alias="HF_TOKEN")
    hf_endpoint: str = Field("https://huggingface.co", validation_alias="HF_ENDPOINT")
    bot_login: str = Field("kiki-bot[bot]", validation_alias="KIKI_BOT_LOGIN")
    throttle: bool = Field(True, validation_alias="KIKI_GITHUB_THROTTLE",
                           description="PyGithub's pauses between requests; off only against a local emulator.")
    release_workflow: str = Field("kiki-release.yml", validation_alias="KIKI_RELEASE_WORKFLOW",
                                  description="The caller workflow the deadline run dispatches to retrain.")
    runs_dir: Path | None = Field(None, validation_alias="KIKI_RUNS_DIR",
                                  description="Where training runs live; default <project>/.kiki/runs.")
    optouts_offline: bool = Field(False, validation_alias="KIKI_OPTOUTS_OFFLINE",
                                  description="The release's opt-out check asks no host and uses the stored evidence.")

