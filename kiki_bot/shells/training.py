"""The training shell: LoRA training through mlx-lm's own trainer, with metrics, resumable checkpoints and mlx.launch.

mlx and mlx-lm are imported inside functions, so importing this module stays cheap (DESIGN.md section 5).

Identity: a run is its spec plus the SHA-256 of its training data (train then valid file) and of the base
model's weights; paths do not count. A checkpoint of another identity is never resumed and a finished run of
another identity is never returned, so a training set changed by a purge is always trained afresh.

Resume: every `save_every` steps rank 0 writes `{it:07d}_adapters.safetensors`, `{it:07d}_optimizer.safetensors`
(Adam's moments and step count) and `adapters.safetensors`; `metrics.json` is rewritten at every loss report.
A restarted run loads the last checkpoint's adapter weights and optimizer state, cuts the metrics back to that
step, and trains the remaining steps with iteration numbers offset by it. The training batches are shuffled
from an RNG of their own and the consumed batches are skipped, so a resumed run sees the same batches in the same
order as an uninterrupted one; only dropout masks (mx.random) differ after a resume when `dropout > 0`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    computed_field,
    model_validator,
)

from kiki_bot.core.canonical import canonical_json, sha256_hex
from kiki_bot.core.errors import BadInput
from kiki_bot.repo.storage import files_sha256, write_text

if TYPE_CHECKING:
    import mlx.optimizers as optim
    from mlx import nn
    from mlx_lm.tuner.callbacks import TrainingCallback

ADAPTER_FILE = "adapters.safetensors"
CONFIG_FILE = "adapter_config.json"
METRICS_FILE = "metrics.json"
LOG_FILE = "train.log"
_CHECKPOINT = re.compile(r"^(\d{7})_adapters\.safetensors$")
# adapter_config.json keys that hold machine-local paths (mlx-lm writes all of vars(args)).
_PATH_KEYS = ("model", "data", "adapter_path", "config", "resume_adapter_file")


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


def train(spec: TrainSpec, progress: bool = True) -> RunMetrics:
    """Train to `spec.iters` steps, resuming from the last checkpoint of the same identity; a finished run of
    the same identity returns its saved metrics."""
    _check_inputs(spec)
    spec = identified(spec)
    return _launch(spec, progress) if spec.hosts else _train_here(spec, progress)


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


def generate_sample(base_dir: Path, adapter_dir: Path, prompt: str, max_tokens: int = 20) -> str:
    """Load base + adapter the way the card tells users to, and generate: proof the published adapter works."""
    for where in (base_dir, adapter_dir):
        if not Path(where).is_dir():
            raise BadInput(str(where), "directory does not exist")
    from mlx_lm import generate, load

    model, tokenizer = load(str(base_dir), adapter_path=str(adapter_dir))
    return generate(model, tokenizer, prompt, max_tokens=max_tokens)


def _without_paths(config: dict[str, Any]) -> dict[str, Any]:
    def local(value: Any) -> bool:
        return isinstance(value, str) and (os.path.isabs(value) or value.startswith("~"))

    return {k: _without_paths(v) if isinstance(v, dict) else v for k, v in config.items() if not local(v)}


def _check_inputs(spec: TrainSpec) -> None:
    if not (spec.base_model / "config.json").is_file():
        raise BadInput(str(spec.base_model), "base model directory with config.json not found")
    if not (spec.data_dir / "train.jsonl").is_file():
        raise BadInput(str(spec.data_dir / "train.jsonl"), "training data not found")


def _train_here(spec: TrainSpec, progress: bool) -> RunMetrics:
    """One rank of the run (the only one without hosts): load, restore the last checkpoint, train the rest."""
    import mlx.core as mx
    from mlx_lm.tuner.trainer import TrainingArgs
    from mlx_lm.tuner.trainer import train as mlx_train
    from mlx_lm.utils import save_config

    started = time.monotonic()
    world = mx.distributed.init(strict=spec.world_size > 1, backend="ring")
    if world.size() != spec.world_size:
        raise RuntimeError(f"expected {spec.world_size} ranks, mlx.distributed has {world.size()}")
    metrics = _resume_point(spec, _hardware(world.size()))
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
        model.load_weights(str(_checkpoint_path(spec, start, "adapters")), strict=False)
        optimizer.state = tree_unflatten(
            list(mx.load(str(_checkpoint_path(spec, start, "optimizer"))).items())
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


def _resume_point(spec: TrainSpec, hardware: Hardware) -> RunMetrics:
    """Metrics to continue from: fresh, a finished run's, or cut back to the last checkpoint."""
    fingerprint = spec.fingerprint()
    saved = _read_metrics(spec.adapter_dir)
    last = max((int(m[1]) for p in _listdir(spec.adapter_dir) if (m := _CHECKPOINT.match(p.name))), default=0)
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


def _read_metrics(adapter_dir: Path) -> RunMetrics | None:
    path = adapter_dir / METRICS_FILE
    return RunMetrics.model_validate_json(path.read_text("utf-8")) if path.is_file() else None


def _listdir(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.is_dir() else []


def _checkpoint_path(spec: TrainSpec, iteration: int, kind: str) -> Path:
    return spec.adapter_dir / f"{iteration:07d}_{kind}.safetensors"


def _hardware(world_size: int) -> Hardware:
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
                save(_checkpoint_path(spec, iteration, "optimizer"), dict(tree_flatten(optimizer.state)))
                weights = dict(tree_flatten(model.trainable_parameters()))
                save(_checkpoint_path(spec, iteration, "adapters"), weights)
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


def _launch(spec: TrainSpec, progress: bool) -> RunMetrics:
    """Run every rank through `mlx.launch` (ring backend) and read back what rank 0 wrote."""
    launcher = Path(sys.executable).with_name("mlx.launch")
    hostfile = {"backend": "ring", "hosts": [{"ssh": h, "ips": [h]} for h in spec.hosts]}
    # so `-m kiki_bot.shells.training` works uninstalled too
    package_root = str(Path(__file__).resolve().parents[2])
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, (package_root, os.environ.get("PYTHONPATH"))))
    }
    with tempfile.TemporaryDirectory() as tmp:
        hosts_json = Path(tmp) / "hosts.json"
        hosts_json.write_text(json.dumps(hostfile), encoding="utf-8")
        flags = ["--hostfile", str(hosts_json), "--starting-port", str(_free_ports(spec.world_size))]
        rank = [sys.executable, "-m", "kiki_bot.shells.training", spec.model_dump_json()]
        command = [str(launcher), *flags, "--", *rank, *(["--progress"] if progress else [])]
        subprocess.run(command, stdin=subprocess.DEVNULL, env=env, check=False)
    metrics = _read_metrics(spec.adapter_dir)
    if metrics is None or not metrics.completed:
        # mlx.launch exits 0 even when a rank fails, so the finished metrics are the only proof of success.
        raise RuntimeError(f"distributed training did not finish; see the ranks' output and {LOG_FILE}")
    return metrics


def _free_ports(count: int) -> int:
    """A base port with `count` consecutive free ports (the ring backend's default 32323 may be taken), below
    the kernel's ephemeral range: there no outgoing connection of a busy runner's other processes can take
    one in the seconds between this probe and the ranks' bind."""
    low = _ephemeral_low()
    for _ in range(50):
        base = random.randrange(10000, low - count) if low - count > 10000 else _any_port()
        if base + count < 65536 and all(_port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no block of free local ports for the ring backend")


def _ephemeral_low() -> int:
    """The first port the kernel hands out to outgoing connections (Linux; elsewhere IANA's 49152)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def _any_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _main(argv: list[str]) -> None:
    """Entry point of one rank under mlx.launch (or a plain subprocess): `<spec json> [--progress]`."""
    _train_here(identified(TrainSpec.model_validate_json(argv[0])), progress="--progress" in argv[1:])


if __name__ == "__main__":
    _main(sys.argv[1:])
