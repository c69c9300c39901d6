"""What a training run is: its spec (the LoRA parameters, where things live, the hosts) and its identity.

Identity: a run is its spec plus the SHA-256 of its training data (train then valid file) and of the base
model's weights; paths do not count. A checkpoint of another identity is never resumed and a finished run of
another identity is never returned, so a training set changed by a purge is always trained afresh.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from kiki_bot.core.canonical import canonical_json, sha256_hex
from kiki_bot.core.errors import BadInput
from kiki_bot.repo.storage import files_sha256

ADAPTER_FILE = "adapters.safetensors"
CONFIG_FILE = "adapter_config.json"
METRICS_FILE = "metrics.json"
LOG_FILE = "train.log"


class TrainSpec(BaseModel):
    """One LoRA run. mlx-lm's `scale` is `alpha / rank`, the same factor as PEFT's `lora_alpha / r`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_model: Path
    data_dir: Path  # mlx-lm layout: train.jsonl, optional valid.jsonl
    adapter_dir: Path
    rank: PositiveInt = 8
    alpha: PositiveFloat = 16.0
    dropout: NonNegativeFloat = 0.0
    keys: tuple[str, ...] | None = None  # block-relative, e.g. "self_attn.q_proj"; None = every linear layer
    num_layers: int = 16  # the last N transformer blocks get adapters; -1 = all
    seed: int = 0
    iters: PositiveInt = 1000
    batch_size: PositiveInt = 4
    learning_rate: PositiveFloat = 1e-5
    max_seq_length: PositiveInt = 2048
    save_every: PositiveInt = 100
    steps_per_report: PositiveInt = 10
    steps_per_eval: PositiveInt = 200
    hosts: tuple[str, ...] = ()  # IP addresses for mlx.launch's ring backend; empty = one local process
    # What the data and base weights hash to (`data_sha256`, `weights_sha256`); filled in and checked by `train`.
    train_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    base_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise BadInput("train spec", problems) from e

    @model_validator(mode="after")
    def _consistent(self) -> TrainSpec:
        problems = []
        if self.dropout >= 1:
            problems.append(f"dropout must be below 1, got {self.dropout}")
        if self.num_layers == 0 or self.num_layers < -1:
            problems.append(f"num_layers must be positive or -1 (all), got {self.num_layers}")
        if self.keys is not None and not all(self.keys):
            problems.append("keys must be non-empty module paths such as 'self_attn.q_proj'")
        if self.save_every % self.steps_per_report:
            # A checkpoint must coincide with a loss report: that is where it is written, with its metrics.
            problems.append(
                f"save_every ({self.save_every}) must be a multiple of steps_per_report ({self.steps_per_report})"
            )
        if self.batch_size % self.world_size:
            problems.append(
                f"batch_size ({self.batch_size}) must be divisible by the number of hosts ({self.world_size})"
            )
        for host in self.hosts:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                problems.append(f"host {host!r} is not an IP address (mlx's ring backend needs IPs)")
        if problems:
            raise BadInput("train spec", "; ".join(problems))
        return self

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def world_size(self) -> int:
        return max(len(self.hosts), 1)

    def fingerprint(self) -> str:
        """The run's identity, what a checkpoint must match to be resumed: the parameters and the content
        hashes; where things live and how many hosts run it do not count."""
        if self.train_sha256 is None or self.base_sha256 is None:
            raise ValueError("fingerprint of a spec whose data and base weights are not hashed (see `identified`)")
        paths = {"adapter_dir", "hosts", "base_model", "data_dir"}
        return sha256_hex(canonical_json(self.model_dump(mode="json", exclude=paths)))


def data_sha256(data_dir: Path) -> str:
    """SHA-256 of a run's training data: `train.jsonl`, then `valid.jsonl` when there is one."""
    return files_sha256(*(p for name in ("train.jsonl", "valid.jsonl") if (p := Path(data_dir) / name).is_file()))


def weights_sha256(base_dir: Path) -> str:
    """SHA-256 of a base model's `*.safetensors` files in name order (for one file, its plain SHA-256: the
    Hub's LFS id of it)."""
    weights = sorted(Path(base_dir).glob("*.safetensors"))
    if not weights:
        raise BadInput(str(base_dir), "no *.safetensors weights in the base model directory")
    return files_sha256(*weights)


def identified(spec: TrainSpec) -> TrainSpec:
    """The spec with the hashes of its data and base weights as they are on disk now; a hash the caller
    gave that the files no longer match is refused (the run would not be the one the caller recorded)."""
    actual = {"train_sha256": data_sha256(spec.data_dir), "base_sha256": weights_sha256(spec.base_model)}
    for key, value in actual.items():
        declared = getattr(spec, key)
        if declared is not None and declared != value:
            where = spec.data_dir if key == "train_sha256" else spec.base_model
            raise BadInput(str(where), f"{key} is {value} on disk, not {declared} as the spec says: "
                           "the files changed since the spec was made")
    return spec.model_copy(update=actual)
