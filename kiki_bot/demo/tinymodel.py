"""A tiny random llama-style base model, so training runs for real on a CPU without any Hub download.

The directory has the layout `mlx_lm.load` reads (config.json, model.safetensors, a byte-level BPE
tokenizer.json with a chat template), so tests and the demo exercise the same code path as a real base.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from kiki_bot.core.canonical import canonical_json, sha256_hex
from kiki_bot.repo.storage import write_text

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# Bump when the files written below change, so cached models are rebuilt.
_CODE_VERSION = 1
_MARKER = ".kiki-tinymodel"
_VOCAB_SIZE = 1024
_SPECIAL = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}
# Plain-text role tags keep the template trivial while still giving chat and prompt/completion data a shape.
# Content starts after a newline, so a generation prompt ends on the same token as in training.
_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }}:\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:\n{% endif %}"
)
_ARCH = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 512,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
}


def make_tiny_base(out_dir: Path, texts: Iterable[str], *, seed: int = 0) -> Path:
    """Create (or reuse) a tiny base model in `out_dir` whose tokenizer is trained on `texts`; returns `out_dir`."""
    texts = list(texts)
    if not texts:
        raise ValueError("make_tiny_base needs at least one text to train the tokenizer on")
    digest = sha256_hex(canonical_json({"version": _CODE_VERSION, "seed": seed, "texts": texts}))
    marker = out_dir / _MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == digest:
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)  # a half-rebuilt directory must not pass as cached

    tok = _write_tokenizer(out_dir, texts)
    ids = {name.replace("token", "token_id"): tok.token_to_id(token) for name, token in _SPECIAL.items()}
    config = _ARCH | {"vocab_size": tok.get_vocab_size()} | ids
    write_text(out_dir / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    gen = {k: config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    write_text(out_dir / "generation_config.json", json.dumps(gen, indent=2) + "\n")
    _write_weights(out_dir, config, seed)
    write_text(marker, digest)
    return out_dir


def _write_tokenizer(out_dir: Path, texts: list[str]) -> Tokenizer:
    """Train a byte-level BPE (GPT-2 style, so any text round-trips) and save it for AutoTokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=list(_SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts + ["system:\nuser:\nassistant:\n"], trainer)
    write_text(out_dir / "tokenizer.json", tok.to_str(pretty=True))
    tok_config = _SPECIAL | {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": _ARCH["max_position_embeddings"],
        "chat_template": _CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
    }
    write_text(out_dir / "tokenizer_config.json", json.dumps(tok_config, indent=2) + "\n")
    write_text(out_dir / "special_tokens_map.json", json.dumps(_SPECIAL, indent=2) + "\n")
    return tok


def _write_weights(out_dir: Path, config: dict, seed: int) -> None:
    """Random weights from mlx-lm's own llama class, so names and shapes are exactly what `load` expects."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models.llama import Model, ModelArgs

    mx.random.seed(seed)
    model = Model(ModelArgs.from_dict(config))
    weights = dict(tree_flatten(model.parameters()))
    tmp = out_dir / ".model.tmp.safetensors"
    mx.save_safetensors(str(tmp), weights, metadata={"format": "mlx"})
    tmp.replace(out_dir / "model.safetensors")
