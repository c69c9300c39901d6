"""An mlx-lm LoRA adapter in PEFT's format, converted exactly or refused.

mlx-lm's `LoRALinear` computes `base(x) + scale * (dropout(x) @ lora_a) @ lora_b` with `lora_a` (in, r) and
`lora_b` (r, out); PEFT's LoRA `Linear` computes `base(x) + (lora_alpha / r) * lora_B(lora_A(dropout(x)))` with
`lora_A.weight` (r, in) and `lora_B.weight` (out, r). So the export is a transpose of each matrix and
`lora_alpha = scale * r`; nothing is re-fitted. Whatever has no exact PEFT counterpart (DoRA, a full fine-tune,
a quantized base, a module outside the transformer blocks, an mlx-only layer kind, an architecture whose mlx-lm
module paths are not transformers') is refused with the reason, never approximated.

Pure numpy + safetensors: no torch, no mlx (the export also runs where neither is installed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiki_bot.core.errors import BadInput

if TYPE_CHECKING:
    from kiki_bot.shells.effects import Effects

MLX_WEIGHTS = "adapters.safetensors"
MLX_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_CONFIG = "adapter_config.json"
# Architectures whose mlx-lm module tree has transformers' names and layout (mlx_lm/models/<type>.py), and the
# block-relative linear layers each has; everything listed is an nn.Linear in both libraries.
_ATTN = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
_MLP = ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
_LINEARS = {"llama": _ATTN + _MLP, "mistral": _ATTN + _MLP, "qwen2": _ATTN + _MLP, "qwen3": _ATTN + _MLP}
_KEY = re.compile(r"^model\.layers\.(\d+)\.([A-Za-z0-9_.]+)\.(lora_a|lora_b)$")


@dataclass(frozen=True)
class PeftAdapter:
    """The two files of a PEFT LoRA adapter: its config and its tensors (name -> numpy array)."""

    config: dict[str, Any]
    tensors: dict[str, Any]

    def files(self) -> dict[str, bytes]:
        from safetensors.numpy import save

        config = json.dumps(self.config, indent=2, sort_keys=True) + "\n"
        # PEFT's own files say format "pt"; the arrays are contiguous so the bytes are the matrices as shown.
        weights = save({k: v for k, v in sorted(self.tensors.items())}, metadata={"format": "pt"})
        return {PEFT_CONFIG: config.encode(), PEFT_WEIGHTS: weights}


def for_hub(adapter_dir: Path, base_dir: Path, base_id: str) -> tuple[dict[str, bytes], str | None]:
    """The PEFT files as a release stages them (at the Hub repo's root; mlx-lm's then go under `mlx/`), or none and
    the reason the card gives: an adapter that does not convert exactly is still released in mlx-lm's format."""
    try:
        files = convert(adapter_dir, base_dir, base_id).files()
    except BadInput as e:
        # Every reason, on one line and without the local paths it names (the card is public).
        why = str(e).replace(f"{adapter_dir}/", "").replace(f"{base_dir}/", "base model's ")
        return {}, "; ".join(line.strip() for line in why.replace(str(base_dir), "base model").splitlines())
    return files, None


def export(adapter_dir: Path, base_dir: Path | None = None, base_id: str | None = None) -> PeftAdapter:
    """`convert`, with the base taken from mlx-lm's `model` key when not given: a local directory (as
    training writes it) is the base to check against, a Hub id (as a release rewrites it) is its name."""
    model = _read_json(adapter_dir / MLX_CONFIG).get("model")
    local = isinstance(model, str) and (Path(model) / "config.json").is_file()
    base_dir = base_dir or (Path(model) if local else None)
    if base_dir is None:
        raise BadInput("--base", f"the base model directory is not known ({MLX_CONFIG} names {model!r}): pass "
                                 "the local directory of the base model the adapter was trained on")
    if base_id is None and isinstance(model, str) and model and not local and not Path(model).is_absolute():
        base_id = model
    if not base_id:
        raise BadInput("--base-id", "the base model's Hub id is not known (the adapter names a local path): pass "
                                    "it, e.g. --base-id Qwen/Qwen2.5-0.5B; PEFT records it as "
                                    "base_model_name_or_path")
    return convert(adapter_dir, base_dir, base_id)


def write(adapter_dir: Path, out: Path, base_dir: Path | None, base_id: str | None, fx: Effects) -> list[Path]:
    """`kiki-bot export peft`: the PEFT files of `export` written into `out` through `fx` (a dry run writes
    nothing), all or none; what does not convert exactly is refused before anything is written."""
    if out.exists() and not out.is_dir():
        raise BadInput(str(out), "exists and is not a directory")
    files = {out / name: data for name, data in export(adapter_dir, base_dir, base_id).files().items()}
    if not fx.dry_run:
        out.mkdir(parents=True, exist_ok=True)
    fx.write_files(files=files)
    return sorted(files)


def convert(adapter_dir: Path, base_dir: Path, base_id: str) -> PeftAdapter:
    """The PEFT form of the mlx-lm adapter in `adapter_dir`, trained on the base model in `base_dir` (whose
    Hub id, `base_id`, PEFT records as `base_model_name_or_path`)."""
    import numpy as np

    mlx_config = _read_json(adapter_dir / MLX_CONFIG)
    lora = _lora_parameters(adapter_dir / MLX_CONFIG, mlx_config)
    base_config = _read_json(base_dir / "config.json")
    linears = _architecture(base_dir / "config.json", base_config)
    weights = _load(adapter_dir / MLX_WEIGHTS)
    base_shapes = _base_shapes(base_dir)

    where = str(adapter_dir / MLX_WEIGHTS)
    modules: dict[tuple[int, str], dict[str, Any]] = {}
    problems = []
    for name, array in sorted(weights.items()):
        m = _KEY.match(name)
        if m is None:
            problems.append((where, f"tensor `{name}` is not a LoRA matrix of a transformer block's linear layer "
                                    "(model.layers.N.<module>.lora_a|lora_b); PEFT's LoRA has no exact counterpart"))
        elif m[2] not in linears:
            problems.append((where, f"tensor `{name}`: module `{m[2]}` is not one of {base_config['model_type']}'s "
                                    f"linear layers PEFT can target ({', '.join(linears)})"))
        elif array.dtype != np.float32:
            problems.append((where, f"tensor `{name}` is {array.dtype}; only float32 adapters are converted"))
        else:
            modules.setdefault((int(m[1]), m[2]), {})[m[3]] = array
    if problems:
        raise BadInput.of(problems)
    if not modules:
        raise BadInput(where, "no LoRA matrices (lora_a/lora_b) in the adapter")

    tensors = {}
    for (layer, module), pair in sorted(modules.items()):
        path = f"model.layers.{layer}.{module}"
        tensors.update(_transposed(where, path, pair, lora["rank"], base_shapes.get(f"{path}.weight")))
    layers = sorted({layer for layer, _ in modules})
    targets = sorted({module for _, module in modules})
    uneven = [i for i in layers if {m for l, m in modules if l == i} != set(targets)]
    if uneven:
        # PEFT applies target_modules to every layer in layers_to_transform: a per-layer set is not expressible.
        raise BadInput(where, f"layers {uneven} adapt other modules than the rest ({', '.join(targets)}); PEFT "
                              "targets the same modules in every transformed layer")
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_id,
        "r": lora["rank"],
        "lora_alpha": lora["scale"] * lora["rank"],
        "lora_dropout": lora["dropout"],
        "target_modules": sorted(m.rsplit(".", 1)[-1] for m in targets),
        "layers_to_transform": layers,
        "layers_pattern": "layers",
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "inference_mode": True,
    }
    return PeftAdapter(config, tensors)


def _transposed(where: str, path: str, pair: dict[str, Any], rank: int,
                base_shape: tuple[int, ...] | None) -> dict[str, Any]:
    """PEFT's lora_A (r, in) and lora_B (out, r) for one module, after checking mlx-lm's shapes against the
    base layer (out, in): a mismatch means the adapter was not trained on this base."""
    import numpy as np

    if set(pair) != {"lora_a", "lora_b"}:
        missing = ({"lora_a", "lora_b"} - set(pair)).pop()
        raise BadInput(where, f"`{path}` has no `{missing}` matrix")
    a, b = pair["lora_a"], pair["lora_b"]
    if base_shape is None:
        raise BadInput(where, f"`{path}`: the base model has no `{path}.weight` (another base model?)")
    out_dims, in_dims = base_shape
    if a.shape != (in_dims, rank) or b.shape != (rank, out_dims):
        raise BadInput(where, f"`{path}`: lora_a {a.shape} and lora_b {b.shape} do not fit the base layer "
                              f"(out {out_dims}, in {in_dims}) at rank {rank}; expected ({in_dims}, {rank}) "
                              f"and ({rank}, {out_dims})")
    prefix = f"base_model.model.{path}"
    return {f"{prefix}.lora_A.weight": np.ascontiguousarray(a.T), f"{prefix}.lora_B.weight": np.ascontiguousarray(b.T)}


def _lora_parameters(where: Path, config: dict[str, Any]) -> dict[str, Any]:
    """rank, scale and dropout of a plain-LoRA run; every other fine-tune kind is refused by name."""
    kind = config.get("fine_tune_type", "lora")
    if kind != "lora":
        why = {"dora": "PEFT's DoRA normalises the weight differently from mlx-lm's DoRALinear, so the result "
                       "would not be the same model",
               "full": "a full fine-tune has no low-rank matrices to export"}.get(kind, "unknown fine-tune type")
        raise BadInput(f"{where}: key `fine_tune_type`", f"is {kind!r}: only 'lora' converts exactly ({why})")
    if config.get("use_dora"):
        raise BadInput(f"{where}: key `use_dora`", "is true: DoRA adapters are not converted (see fine_tune_type)")
    lora = config.get("lora_parameters")
    if not isinstance(lora, dict):
        raise BadInput(f"{where}: key `lora_parameters`", "missing or not an object (rank, scale, dropout)")
    problems = []
    for key, kinds in (("rank", (int,)), ("scale", (int, float)), ("dropout", (int, float))):
        value = lora.get(key)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < 0 or (key == "rank" and value == 0):
            expected = "a positive integer" if key == "rank" else "a non-negative number"
            problems.append((f"{where}: key `lora_parameters.{key}`", f"expected {expected}, found {value!r}"))
    if problems:
        raise BadInput.of(problems)
    return {"rank": lora["rank"], "scale": float(lora["scale"]), "dropout": float(lora["dropout"])}


def _architecture(where: Path, config: dict[str, Any]) -> tuple[str, ...]:
    """The linear layers PEFT can target in this base, if its mlx-lm module paths are transformers' own."""
    for key in ("quantization", "quantization_config"):
        if key in config:
            raise BadInput(f"{where}: key `{key}`", "the base model is quantized: a QLoRA adapter's matrices fit the "
                                                   "quantized mlx model, and PEFT would load another base")
    model_type = config.get("model_type")
    if model_type not in _LINEARS:
        raise BadInput(f"{where}: key `model_type`", f"is {model_type!r}: the export knows the module names of "
                                                     f"{', '.join(sorted(_LINEARS))} only")
    return _LINEARS[model_type]


def _base_shapes(base_dir: Path) -> dict[str, tuple[int, ...]]:
    """The shape of every base weight, read from the safetensors headers only (the weights stay on disk)."""
    from safetensors import safe_open

    files = sorted(base_dir.glob("*.safetensors"))
    if not files:
        raise BadInput(str(base_dir), "no *.safetensors weights in the base model directory")
    shapes = {}
    for file in files:
        with safe_open(str(file), framework="numpy") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                shapes[name] = tuple(f.get_slice(name).get_shape())
    if any(name.endswith(".scales") for name in shapes):
        raise BadInput(str(base_dir), "the base weights are quantized (`*.scales` tensors): PEFT loads a "
                                      "full-precision base, on which this adapter was not trained")
    return shapes


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BadInput(str(path), "no adapter weights (has this adapter been trained?)")
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for bad headers and unknown dtypes
        raise BadInput(str(path), f"not a readable float32 safetensors file ({e})") from e


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BadInput(str(path), "file not found")
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(str(path), f"not valid JSON ({e})") from e
    if not isinstance(doc, dict):
        raise BadInput(str(path), "expected a JSON object")
    return doc
