"""A small built-in evaluation: mean validation loss of the base model and of base + adapter.

Adapters configure any eval command that prints one JSON object; this one serves the demo and tiny
models, where benchmarks such as HumanEval mean nothing. Usage:
`python -m kiki_bot.evaluate --base DIR --adapter DIR --data DIR` prints {"base": .., "adapter": ..}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

from kiki_bot.core.errors import BadInput


def run_command(command: str, base: Path, adapter: Path, data: Path, cwd: Path) -> dict[str, float]:
    """Run the adapter's eval command (no shell) and read the JSON object it prints last."""
    argv = [a.replace("{base}", str(base)).replace("{adapter}", str(adapter)).replace("{data}", str(data))
            for a in shlex.split(command)]
    if argv and argv[0] == "python":
        argv[0] = sys.executable
    proc = subprocess.run(argv, check=False, cwd=cwd, capture_output=True, text=True, timeout=3600)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise BadInput("eval.command", f"{command!r} failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    try:
        doc = json.loads(lines[-1])
        return {k: float(v) for k, v in doc.items() if k in ("base", "adapter", "score")}
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
        raise BadInput("eval.command", f"expected a JSON object as the last output line, got {lines[-1][:200]!r}") from None


def _losses(base: Path, adapter: Path, data: Path) -> tuple[float, float]:
    """Mean validation loss without and with the adapter, batched as in training (same shapes, fewer kernels)."""
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.tuner.datasets import CacheDataset, load_local_dataset
    from mlx_lm.tuner.trainer import evaluate
    from mlx_lm.tuner.utils import load_adapters

    config = json.loads((adapter / "adapter_config.json").read_text())
    shape = {"batch_size": config.get("batch_size", 4), "max_seq_length": config.get("max_seq_length", 2048)}
    model, tokenizer = load(str(base))
    _, valid, _ = load_local_dataset(data, tokenizer, argparse.Namespace(
        mask_prompt=False, prompt_feature="prompt", completion_feature="completion", text_feature="text",
        chat_feature="messages"))
    valid = CacheDataset(valid)
    mx.random.seed(0)
    before = float(evaluate(model, valid, num_batches=-1, **shape))
    model = load_adapters(model, str(adapter))
    return before, float(evaluate(model, valid, num_batches=-1, **shape))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args(argv)
    # Evaluation is a forward pass over a small split: mlx's kernel compilation costs more than it saves here.
    os.environ.setdefault("MLX_DISABLE_COMPILE", "1")
    with contextlib.redirect_stdout(sys.stderr):  # mlx-lm prints warnings; stdout carries only the result
        base, tuned = _losses(args.base, args.adapter, args.data)
    print(json.dumps({"metric": "validation loss (nats/token)", "base": round(base, 4), "adapter": round(tuned, 4),
                      "perplexity_adapter": round(math.exp(tuned), 2)}))


if __name__ == "__main__":
    main()
