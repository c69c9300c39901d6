"""The training shell: LoRA training through mlx-lm's own trainer, with metrics, resumable checkpoints and mlx.launch.

The run is split by job: its spec and identity (kiki_bot.shells.trainspec), what it leaves in its adapter dir
and where a restart resumes (trainstate), one rank's mlx-lm run (mlxrun), several hosts (launch). mlx and
mlx-lm are imported inside functions, so importing any of them stays cheap (DESIGN.md section 5).

Resume: a restarted run loads the last checkpoint's adapter weights and optimizer state, cuts the metrics back
to that step, and trains the remaining steps with iteration numbers offset by it, on the same batches in the
same order as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from kiki_bot.core.errors import BadInput
from kiki_bot.repo.storage import write_text
from kiki_bot.shells.launch import launch
from kiki_bot.shells.mlxrun import train_here
from kiki_bot.shells.trainspec import CONFIG_FILE, TrainSpec, identified
from kiki_bot.shells.trainstate import RunMetrics

# adapter_config.json keys that hold machine-local paths (mlx-lm writes all of vars(args)).
_PATH_KEYS = ("model", "data", "adapter_path", "config", "resume_adapter_file")


def train(spec: TrainSpec, progress: bool = True) -> RunMetrics:
    """Train to `spec.iters` steps, resuming from the last checkpoint of the same identity; a finished run of
    the same identity returns its saved metrics."""
    _check_inputs(spec)
    spec = identified(spec)
    return launch(spec, progress) if spec.hosts else train_here(spec, progress)


def strip_adapter_config(adapter_dir: Path, base_model_id: str | None = None) -> dict[str, Any]:
    """Drop machine-local paths from adapter_config.json before publishing; `base_model_id` replaces `model`.

    `num_layers`, `lora_parameters` and `fine_tune_type` stay: mlx-lm's `load_adapters` needs them.
    """
    path = Path(adapter_dir) / CONFIG_FILE
    if not path.is_file():
        raise BadInput(str(path), "no adapter_config.json (has this adapter been trained?)")
    config = _without_paths(
        {k: v for k, v in json.loads(path.read_text("utf-8")).items() if k not in _PATH_KEYS}
    )
    if base_model_id:
        config["model"] = base_model_id
    write_text(path, json.dumps(config, indent=4, sort_keys=True) + "\n")
    return config


def _without_paths(config: dict[str, Any]) -> dict[str, Any]:
    def local(value: Any) -> bool:
        return isinstance(value, str) and (os.path.isabs(value) or value.startswith("~"))

    return {k: _without_paths(v) if isinstance(v, dict) else v for k, v in config.items() if not local(v)}


def _check_inputs(spec: TrainSpec) -> None:
    if not (spec.base_model / "config.json").is_file():
        raise BadInput(str(spec.base_model), "base model directory with config.json not found")
    if not (spec.data_dir / "train.jsonl").is_file():
        raise BadInput(str(spec.data_dir / "train.jsonl"), "training data not found")


def _main(argv: list[str]) -> None:
    """Entry point of one rank under mlx.launch (or a plain subprocess): `<spec json> [--progress]`."""
    train_here(identified(TrainSpec.model_validate_json(argv[0])), progress="--progress" in argv[1:])


if __name__ == "__main__":
    _main(sys.argv[1:])
