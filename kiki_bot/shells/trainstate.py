"""What a training run leaves in its adapter dir, and where a restarted run resumes.

Every `save_every` steps rank 0 writes `{it:07d}_adapters.safetensors`, `{it:07d}_optimizer.safetensors`
(Adam's moments and step count) and `adapters.safetensors`; `metrics.json` (RunMetrics) is rewritten at every
loss report. A restarted run cuts the metrics back to the last checkpoint and trains on from there.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

from pydantic import BaseModel, computed_field

from kiki_bot.core.errors import BadInput
from kiki_bot.shells.trainspec import METRICS_FILE, TrainSpec

CHECKPOINT = re.compile(r"^(\d{7})_adapters\.safetensors$")


class TrainReport(BaseModel):
    iteration: int
    train_loss: float
    learning_rate: float
    iterations_per_second: float
    tokens_per_second: float
    trained_tokens: int  # loss-bearing tokens since step 1, summed over ranks (mlx-lm's count)
    peak_memory_gb: float


class ValReport(BaseModel):
    iteration: int  # optimizer steps taken when the validation loss was measured
    val_loss: float
    val_time_s: float


class Hardware(BaseModel):
    platform: str
    processor: str
    device: str
    world_size: int
    backend: str | None
    mlx_version: str
    mlx_lm_version: str


class RunMetrics(BaseModel):
    """What a run measured; `metrics.json` in the adapter dir, rewritten at every report."""

    spec_fingerprint: str
    iters: int
    iteration: int = 0
    completed: bool = False
    resumed_from: list[int] = []
    wall_time_s: float = 0.0  # all attempts, including work lost to a kill after the last report
    hardware: Hardware
    train: list[TrainReport] = []
    val: list[ValReport] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def trained_tokens(self) -> int:
        return self.train[-1].trained_tokens if self.train else 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def peak_memory_gb(self) -> float:
        return max((r.peak_memory_gb for r in self.train), default=0.0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_per_second(self) -> float:
        return sum(r.tokens_per_second for r in self.train) / len(self.train) if self.train else 0.0

    def cut_to(self, iteration: int) -> None:
        """Forget what happened after the checkpoint at `iteration` (it is recomputed by the resumed run)."""
        self.train = [r for r in self.train if r.iteration <= iteration]
        # Validation at `iteration` itself is measured again: it is the resumed run's first step.
        self.val = [r for r in self.val if r.iteration < iteration]
        self.iteration = iteration


def resume_point(spec: TrainSpec, hardware: Hardware) -> RunMetrics:
    """Metrics to continue from: fresh, a finished run's, or cut back to the last checkpoint."""
    fingerprint = spec.fingerprint()
    saved = read_metrics(spec.adapter_dir)
    last = max((int(m[1]) for p in _listdir(spec.adapter_dir) if (m := CHECKPOINT.match(p.name))), default=0)
    if saved is None:
        if last:
            raise BadInput(str(spec.adapter_dir), "holds checkpoints but no metrics.json; cannot resume them")
        return RunMetrics(spec_fingerprint=fingerprint, iters=spec.iters, hardware=hardware)
    if saved.spec_fingerprint != fingerprint:
        raise BadInput(str(spec.adapter_dir), "holds a run of a different spec, training data or base weights "
                       "(never resumed or reused); use an empty adapter dir")
    if not saved.completed:
        saved.cut_to(last)
        saved.hardware = hardware
        if last:
            saved.resumed_from.append(last)
    return saved


def read_metrics(adapter_dir: Path) -> RunMetrics | None:
    path = adapter_dir / METRICS_FILE
    return RunMetrics.model_validate_json(path.read_text("utf-8")) if path.is_file() else None


def _listdir(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.is_dir() else []


def checkpoint_path(spec: TrainSpec, iteration: int, kind: str) -> Path:
    return spec.adapter_dir / f"{iteration:07d}_{kind}.safetensors"


def hardware_of(world_size: int) -> Hardware:
    import mlx.core as mx
    import mlx_lm

    return Hardware(
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        device=str(mx.default_device()),
        world_size=world_size,
        backend="ring" if world_size > 1 else None,
        mlx_version=mx.__version__,
        mlx_lm_version=mlx_lm.__version__,
    )
