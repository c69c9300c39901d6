"""One rank of a training run, through mlx-lm's own trainer: load, restore the last checkpoint, train the rest,
recording the metrics and writing the checkpoints (kiki_bot.shells.trainstate) under global iteration numbers.

mlx and mlx-lm are imported inside functions, so importing this module stays cheap (DESIGN.md section 5).
The training batches are shuffled from an RNG of their own and the consumed batches are skipped, so a resumed
run sees the same batches in the same order as an uninterrupted one; only dropout masks (mx.random) differ
after a resume when `dropout > 0`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from kiki_bot.core.errors import BadInput
from kiki_bot.repo.storage import write_text
from kiki_bot.shells.trainspec import ADAPTER_FILE, CONFIG_FILE, LOG_FILE, METRICS_FILE, TrainSpec
from kiki_bot.shells.trainstate import (
    RunMetrics,
    TrainReport,
    ValReport,
    checkpoint_path,
    hardware_of,
    resume_point,
)

if TYPE_CHECKING:
    import mlx.optimizers as optim
    from mlx import nn
    from mlx_lm.tuner.callbacks import TrainingCallback


def train_here(spec: TrainSpec, progress: bool) -> RunMetrics:
    """One rank of the run (the only one without hosts): load, restore the last checkpoint, train the rest."""
    import mlx.core as mx
    from mlx_lm.tuner.trainer import TrainingArgs
    from mlx_lm.tuner.trainer import train as mlx_train
    from mlx_lm.utils import save_config

    started = time.monotonic()
    world = mx.distributed.init(strict=spec.world_size > 1, backend="ring")
    if world.size() != spec.world_size:
        raise RuntimeError(f"expected {spec.world_size} ranks, mlx.distributed has {world.size()}")
    metrics = resume_point(spec, hardware_of(world.size()))
    if metrics.completed:
        return metrics
    start = metrics.iteration
    if mx.distributed.all_sum(mx.array(start), stream=mx.cpu).item() != start * world.size():
        raise RuntimeError("ranks disagree on the checkpoint to resume from; the adapter dir must be shared")
    is_main = world.rank() == 0
    args = _mlx_args(spec)
    spec.adapter_dir.mkdir(parents=True, exist_ok=True)
    with _mlx_output(spec.adapter_dir / LOG_FILE if is_main else None):
        model, train_set, valid_set = _load(spec, args)
        optimizer = _adapt(spec, args, model, start)
        if is_main:
            save_config(vars(args), spec.adapter_dir / CONFIG_FILE)
        with _progress_bar(progress and is_main, spec.iters, start) as show:
            recorder, persist = _recorder(
                spec, metrics, model, optimizer, started, is_main=is_main, show=show
            )
            mlx_train(
                model=model,
                optimizer=optimizer,
                train_dataset=train_set,
                val_dataset=valid_set,
                args=TrainingArgs(
                    batch_size=spec.batch_size,
                    iters=spec.iters - start,
                    val_batches=args.val_batches,
                    steps_per_report=spec.steps_per_report,
                    steps_per_eval=spec.steps_per_eval,
                    steps_per_save=spec.iters + 1,  # never: the recorder checkpoints under global numbers
                    max_seq_length=spec.max_seq_length,
                    adapter_file=str(spec.adapter_dir / ADAPTER_FILE),
                ),
                loss=_loss,
                iterate_batches=_batches(spec.seed, skip=start),
                training_callback=recorder,
            )
    metrics.completed = True
    persist()
    return metrics


@contextlib.contextmanager
def _mlx_output(log: Path | None) -> Iterator[None]:
    """mlx-lm prints its own table and warnings to stdout: keep them in `log` (rank 0), out of the way."""
    with open(log or os.devnull, "a", encoding="utf-8") as out, contextlib.redirect_stdout(out):
        yield


def _adapt(spec: TrainSpec, args: SimpleNamespace, model: nn.Module, start: int) -> optim.Optimizer:
    """Add the LoRA layers and make the optimizer; from a checkpoint, restore both."""
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx.utils import tree_unflatten
    from mlx_lm.tuner.utils import linear_to_lora_layers

    mx.random.seed(spec.seed)
    model.freeze()
    linear_to_lora_layers(model, spec.num_layers, args.lora_parameters)
    optimizer = optim.Adam(learning_rate=spec.learning_rate)  # mlx-lm's default optimizer
    if start:
        model.load_weights(str(checkpoint_path(spec, start, "adapters")), strict=False)
        optimizer.state = tree_unflatten(
            list(mx.load(str(checkpoint_path(spec, start, "optimizer"))).items())
        )
        print(f"resumed from iteration {start} with its adapter weights and optimizer state", flush=True)
    return optimizer


def _mlx_args(spec: TrainSpec) -> SimpleNamespace:
    """mlx-lm's argument namespace (CONFIG_DEFAULTS + the spec): what `adapter_config.json` records."""
    from mlx_lm.lora import CONFIG_DEFAULTS

    lora = {"rank": spec.rank, "dropout": spec.dropout, "scale": spec.scale}
    if spec.keys is not None:
        lora["keys"] = list(spec.keys)
    return SimpleNamespace(
        **CONFIG_DEFAULTS
        | {
            "model": str(spec.base_model),
            "data": str(spec.data_dir),
            "adapter_path": str(spec.adapter_dir),
            "train": True,
            "seed": spec.seed,
            "num_layers": spec.num_layers,
            "batch_size": spec.batch_size,
            "iters": spec.iters,
            "learning_rate": spec.learning_rate,
            "steps_per_report": spec.steps_per_report,
            "steps_per_eval": spec.steps_per_eval,
            "save_every": spec.save_every,
            "max_seq_length": spec.max_seq_length,
            "lora_parameters": lora,
        }
    )


def _load(spec: TrainSpec, args: SimpleNamespace) -> tuple[nn.Module, Any, Any]:
    """The base model and the tokenized data sets, with mlx-lm's errors turned into BadInput."""
    from mlx_lm.tuner.datasets import CacheDataset, load_dataset
    from mlx_lm.utils import load

    model, tokenizer = load(str(spec.base_model))
    if spec.num_layers > len(model.layers):
        raise BadInput(
            "train spec", f"num_layers {spec.num_layers} > the base model's {len(model.layers)} layers"
        )
    try:
        train_set, valid_set, _ = load_dataset(args, tokenizer)
    except ValueError as e:  # includes JSON errors and unknown record formats
        raise BadInput(str(spec.data_dir), str(e)) from e
    for name, data in (("train", train_set), ("valid", valid_set)):
        if 0 < len(data) < spec.batch_size:  # an empty train.jsonl was refused by load_dataset
            problem = f"{len(data)} records, fewer than batch_size {spec.batch_size}"
            raise BadInput(str(spec.data_dir / f"{name}.jsonl"), problem)
    return model, CacheDataset(train_set), CacheDataset(valid_set)


def _recorder(
    spec: TrainSpec,
    metrics: RunMetrics,
    model: nn.Module,
    optimizer: optim.Optimizer,
    started: float,
    *,
    is_main: bool,
    show: Callable[[int, float], None],
) -> tuple[TrainingCallback, Callable[[], None]]:
    """A TrainingCallback recording reports under global iteration numbers and writing the checkpoints,
    plus the function that persists the metrics (rank 0 only)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.callbacks import TrainingCallback

    start = metrics.iteration
    tokens_before = metrics.trained_tokens
    wall_before = metrics.wall_time_s

    def save(path: Path, arrays: dict[str, mx.array]) -> None:
        tmp = path.with_name(f".tmp-{path.name}")  # mlx insists on the .safetensors suffix
        mx.save_safetensors(str(tmp), arrays)
        os.replace(tmp, path)

    def persist() -> None:
        if is_main:
            metrics.wall_time_s = wall_before + time.monotonic() - started
            write_text(spec.adapter_dir / METRICS_FILE, metrics.model_dump_json(indent=2) + "\n")

    class Recorder(TrainingCallback):
        def on_train_loss_report(self, train_info: dict) -> None:
            iteration = start + train_info["iteration"]
            metrics.iteration = iteration
            metrics.train.append(
                TrainReport(
                    iteration=iteration,
                    train_loss=train_info["train_loss"],
                    learning_rate=train_info["learning_rate"],
                    iterations_per_second=train_info["iterations_per_second"],
                    tokens_per_second=train_info["tokens_per_second"],
                    trained_tokens=tokens_before + int(train_info["trained_tokens"]),
                    peak_memory_gb=train_info["peak_memory"],
                )
            )
            persist()
            if is_main and iteration % spec.save_every == 0:
                # Optimizer first: the adapter checkpoint's appearance is what marks a complete checkpoint.
                save(checkpoint_path(spec, iteration, "optimizer"), dict(tree_flatten(optimizer.state)))
                weights = dict(tree_flatten(model.trainable_parameters()))
                save(checkpoint_path(spec, iteration, "adapters"), weights)
                save(spec.adapter_dir / ADAPTER_FILE, weights)
            show(iteration, train_info["train_loss"])

        def on_val_loss_report(self, val_info: dict) -> None:
            metrics.val.append(
                ValReport(
                    iteration=start + val_info["iteration"],
                    val_loss=val_info["val_loss"],
                    val_time_s=val_info["val_time"],
                )
            )

    return Recorder(), persist


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, done: int) -> Iterator[Callable[[int, float], None]]:
    """A rich progress bar on stderr, advanced at each loss report."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}"))
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True), disable=not enabled) as bar:
        task = bar.add_task("train", total=total, completed=done, loss="")

        def show(iteration: int, loss: float) -> None:
            bar.update(task, completed=iteration, loss=f"loss {loss:.3f}")

        yield show


def _loss(model: nn.Module, batch: Any, lengths: Any) -> Any:
    """mlx-lm's `default_loss` without its off-by-one: in mlx-lm 0.32 its mask also scores the first padding
    position of every row, training the model to emit token id 0 after each sequence and over-counting
    trained tokens by one per row (ml-explore/mlx-lm#1697). Passing one less as the end fixes both."""
    import mlx.core as mx
    from mlx_lm.tuner.trainer import default_loss

    return default_loss(model, batch, lengths - mx.array([0, 1]))


def _batches(seed: int, skip: int) -> Callable[..., Iterator[Any]]:
    """mlx-lm's batch iterator with the training shuffle drawn from its own RNG, minus the first `skip` batches.

    mlx-lm shuffles with numpy's global RNG, which validation also draws from; a private RNG makes the order
    depend on the seed alone, so a resumed run sees exactly the batches the uninterrupted run would have.
    """
    import numpy as np
    from mlx_lm.tuner.trainer import iterate_batches

    def batches(**kwargs: Any) -> Iterator[Any]:
        inner = iterate_batches(**kwargs)
        if not kwargs.get("loop"):
            return inner  # validation: the order does not matter
        return itertools.islice(_with_rng(inner, np.random.RandomState(seed).get_state()), skip, None)

    return batches


def _with_rng(inner: Iterator[Any], state: Any) -> Iterator[Any]:
    import numpy as np

    while True:
        outer = np.random.get_state()
        np.random.set_state(state)
        try:
            item = next(inner, None)
        finally:
            state = np.random.get_state()
            np.random.set_state(outer)
        if item is None:
            return
        yield item
