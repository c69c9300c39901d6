"""Real LoRA training on the CPU with mlx-lm, on a tiny base model made here: no mocks, no Hub."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from kiki_bot.core.errors import BadInput
from kiki_bot.demo.tinymodel import make_tiny_base
from kiki_bot.shells.samples import mlx as generate_sample
from kiki_bot.shells.training import RunMetrics, TrainSpec, strip_adapter_config, train

# Everything loads from local directories. HF_HUB_OFFLINE is set only for the training subprocesses: set in
# this process it would freeze huggingface_hub into offline mode for the whole session (the Hub emulator tests).
OFFLINE = {"HF_HUB_OFFLINE": "1"}
WORDS = ["alpha", "beta", "gamma", "delta", "fox", "dog", "cat", "bird", "tree", "river", "stone", "cloud"]
CHATS = [
    {
        "messages": [
            {"role": "user", "content": f"say {WORDS[i % 12]}"},
            {"role": "assistant", "content": f"{WORDS[i % 12]} {WORDS[i * 5 % 12]}"},
        ]
    }
    for i in range(40)
]
COMPLETIONS = [{"prompt": f"say {w}", "completion": w} for w in WORDS[:8]]
TEXTS = [{"text": f"the {a} sees the {b}"} for a in WORDS for b in WORDS[:4]]
# The uninterrupted run and the killed-then-resumed run share everything but the checkpoint cadence.
HYPER = {
    "rank": 4,
    "alpha": 8,
    "num_layers": 2,
    "iters": 30,
    "batch_size": 4,
    "learning_rate": 1e-3,
    "steps_per_report": 5,
}


def _jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _adapter_weights(adapter_dir: Path) -> dict[str, mx.array]:
    return mx.load(str(adapter_dir / "adapters.safetensors"))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [m["content"] for r in CHATS for m in r["messages"]] + [r["text"] for r in TEXTS]
    return make_tiny_base(tmp_path_factory.mktemp("base"), texts)


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chat records to train on, prompt/completion records to validate on (mlx-lm detects each split's format)."""
    data = tmp_path_factory.mktemp("chat")
    _jsonl(data / "train.jsonl", CHATS)
    _jsonl(data / "valid.jsonl", COMPLETIONS)
    return data


@pytest.fixture(scope="module")
def reference(base: Path, chat_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainSpec:
    spec = TrainSpec(
        base_model=base,
        data_dir=chat_data,
        adapter_dir=tmp_path_factory.mktemp("ref"),
        save_every=10,
        **HYPER,
    )
    train(spec, progress=False)
    return spec


def test_tiny_base_is_cached(base: Path) -> None:
    texts = [m["content"] for r in CHATS for m in r["messages"]] + [r["text"] for r in TEXTS]
    before = (base / "model.safetensors").stat().st_mtime_ns
    assert make_tiny_base(base, texts) == base
    assert (base / "model.safetensors").stat().st_mtime_ns == before


def test_train_writes_adapter_metrics_and_config(reference: TrainSpec) -> None:
    out = reference.adapter_dir
    assert (out / "adapters.safetensors").is_file()
    metrics = RunMetrics.model_validate_json((out / "metrics.json").read_text())
    assert metrics.completed and metrics.iteration == 30 and metrics.resumed_from == []
    assert [r.iteration for r in metrics.train] == [5, 10, 15, 20, 25, 30]
    assert metrics.train[-1].train_loss < metrics.train[0].train_loss
    # Validation runs before step 1 and before the last step, and is numbered by the steps done by then.
    assert [r.iteration for r in metrics.val] == [0, 29]
    assert metrics.trained_tokens > 0 and metrics.tokens_per_second > 0 and metrics.wall_time_s > 0
    assert metrics.hardware.world_size == 1 and "cpu" in metrics.hardware.device.lower()
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["lora_parameters"]["scale"] == pytest.approx(8 / 4)  # alpha / rank
    assert config["num_layers"] == 2 and config["fine_tune_type"] == "lora"

    # Started again, a finished run is a no-op that returns what it saved.
    mtime = (out / "adapters.safetensors").stat().st_mtime_ns
    assert train(reference, progress=False) == metrics
    assert (out / "adapters.safetensors").stat().st_mtime_ns == mtime


def test_killed_run_resumes_from_last_checkpoint(reference: TrainSpec, tmp_path: Path) -> None:
    spec = reference.model_copy(update={"adapter_dir": tmp_path / "run", "save_every": 5})
    env = os.environ | OFFLINE | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "kiki_bot.shells.training", spec.model_dump_json()], env=env)
    first = spec.adapter_dir / "0000005_adapters.safetensors"
    deadline = time.monotonic() + 300
    while not first.exists():  # event: the first checkpoint has been written (atomically)
        assert proc.poll() is None, "training exited before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    checkpoints = sorted(spec.adapter_dir.glob("[0-9]*_adapters.safetensors"))
    last = int(checkpoints[-1].name[:7])
    assert last < spec.iters, "the run finished before it was killed"

    metrics = train(spec, progress=False)
    assert metrics.completed and metrics.resumed_from == [last]
    assert [r.iteration for r in metrics.train] == [5, 10, 15, 20, 25, 30]
    log = (spec.adapter_dir / "train.log").read_text()
    assert f"resumed from iteration {last} with its adapter weights and optimizer state" in log
    # Weights, optimizer state and batch order all carried over: same losses and adapter as without the kill.
    expected = RunMetrics.model_validate_json((reference.adapter_dir / "metrics.json").read_text())
    assert metrics.trained_tokens == expected.trained_tokens
    assert [r.train_loss for r in metrics.train] == pytest.approx([r.train_loss for r in expected.train])
    resumed, uninterrupted = _adapter_weights(spec.adapter_dir), _adapter_weights(reference.adapter_dir)
    assert resumed.keys() == uninterrupted.keys()
    for name in resumed:
        np.testing.assert_allclose(
            np.array(resumed[name]), np.array(uninterrupted[name]), rtol=1e-5, atol=1e-6
        )


def test_mlx_launch_two_local_ranks(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # inherited by the ranks
    data = tmp_path / "text"
    data.mkdir()
    _jsonl(data / "train.jsonl", TEXTS)
    spec = TrainSpec(
        base_model=base,
        data_dir=data,
        adapter_dir=tmp_path / "dist",
        hosts=("127.0.0.1", "127.0.0.1"),
        **HYPER | {"iters": 10, "save_every": 5},
    )
    metrics = train(spec, progress=False)
    assert (spec.adapter_dir / "adapters.safetensors").is_file()
    assert metrics.completed and metrics.hardware.world_size == 2 and metrics.hardware.backend == "ring"
    assert metrics.trained_tokens > 0


def test_stripped_adapter_loads_and_generates(reference: TrainSpec, base: Path, tmp_path: Path) -> None:
    published = tmp_path / "published"
    published.mkdir()
    for name in ("adapters.safetensors", "adapter_config.json"):
        shutil.copy(reference.adapter_dir / name, published / name)
    config = strip_adapter_config(published, base_model_id="example-org/tiny-base")
    text = (published / "adapter_config.json").read_text()
    for local in (reference.adapter_dir, reference.data_dir, base):
        assert str(local) not in text
    assert not any(isinstance(v, str) and v.startswith("/") for v in config.values())
    assert config["model"] == "example-org/tiny-base" and json.loads(text) == config
    assert {"num_layers", "lora_parameters", "fine_tune_type"} <= config.keys()
    # A 30-step adapter on a random base may well answer some prompt with EOS at once: ask a few.
    samples = [
        generate_sample(base, published, p, max_tokens=8) for p in ("say", "fox", "assistant:\n", "the")
    ]
    assert any(s.strip() for s in samples), samples
    assert samples[1] == generate_sample(base, reference.adapter_dir, "fox", max_tokens=8)


def test_bad_inputs(reference: TrainSpec, base: Path, chat_data: Path, tmp_path: Path) -> None:
    ok = {"base_model": base, "data_dir": chat_data, "adapter_dir": tmp_path / "out"}
    with pytest.raises(BadInput, match="base model"):
        train(TrainSpec(**ok | {"base_model": tmp_path / "missing"}), progress=False)
    with pytest.raises(BadInput, match="train.jsonl"):
        train(TrainSpec(**ok | {"data_dir": tmp_path}), progress=False)
    with pytest.raises(BadInput, match="divisible by the number of hosts"):
        TrainSpec(**ok, batch_size=3, hosts=("127.0.0.1", "127.0.0.1"))
    with pytest.raises(BadInput, match="multiple of steps_per_report"):
        TrainSpec(**ok, save_every=7, steps_per_report=5)
    with pytest.raises(BadInput, match="rank"):
        TrainSpec(**ok, rank=0)
    with pytest.raises(BadInput, match="different spec"):
        train(TrainSpec(**reference.model_dump() | {"rank": 8}), progress=False)
    with pytest.raises(BadInput, match="num_layers 16"):
        train(TrainSpec(**ok, num_layers=16, iters=1), progress=False)
    with pytest.raises(BadInput, match="does not exist"):
        generate_sample(base, tmp_path / "nope", "hi")


@pytest.mark.parametrize("changed", ["train data", "base weights"])
def test_a_run_of_other_data_or_base_weights_is_neither_reused_nor_resumed(
    base: Path, tmp_path: Path, changed: str
) -> None:
    """Same paths, same parameters, other content (a purge rewrote the data, or the base was replaced)."""
    data, own_base = tmp_path / "data", tmp_path / "base"
    data.mkdir()
    _jsonl(data / "train.jsonl", CHATS)
    shutil.copytree(base, own_base)
    spec = TrainSpec(base_model=own_base, data_dir=data, adapter_dir=tmp_path / "run",
                     **HYPER | {"iters": 5, "save_every": 5})
    first = train(spec, progress=False)
    assert first.completed
    if changed == "train data":
        _jsonl(data / "train.jsonl", CHATS[4:])
    else:
        weights = own_base / "model.safetensors"
        arrays = mx.load(str(weights))
        mx.save_safetensors(str(weights), {k: v * 2 for k, v in arrays.items()})
    adapter = (spec.adapter_dir / "adapters.safetensors").read_bytes()
    with pytest.raises(BadInput, match="different spec, training data or base weights"):
        train(spec, progress=False)
    assert (spec.adapter_dir / "adapters.safetensors").read_bytes() == adapter  # nothing mixed in
    # The identity names the content: the same hashes declared for other files are refused.
    declared = TrainSpec(**spec.model_dump() | {"adapter_dir": tmp_path / "again",
                                                "train_sha256": "0" * 64, "base_sha256": "0" * 64})
    with pytest.raises(BadInput, match="on disk, not 0000"):
        train(declared, progress=False)
