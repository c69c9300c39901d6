"""Proof that a published adapter works: load base + adapter the way the card tells users to, and generate, in
mlx-lm's form (`mlx`) and in PEFT's with transformers (`peft`). The libraries are imported when called."""

from __future__ import annotations

from pathlib import Path

from kiki_bot.core.errors import BadInput


def _directories(*paths: Path) -> None:
    for where in paths:
        if not Path(where).is_dir():
            raise BadInput(str(where), "directory does not exist")


def mlx(base_dir: Path, adapter_dir: Path, prompt: str, max_tokens: int = 20) -> str:
    """mlx-lm's `load(base, adapter_path=…)` and `generate`."""
    _directories(base_dir, adapter_dir)
    from mlx_lm import generate, load

    model, tokenizer = load(str(base_dir), adapter_path=str(adapter_dir))
    return generate(model, tokenizer, prompt, max_tokens=max_tokens)


def peft(base_dir: Path, adapter_dir: Path, prompt: str, max_tokens: int = 20) -> str:
    """transformers' model with PEFT's `PeftModel.from_pretrained`, generating greedily."""
    try:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise BadInput("PEFT", f"loading the PEFT form needs the `peft` extra: pip install 'kiki-bot[peft]' ({e})") from e
    _directories(base_dir, adapter_dir)
    import warnings

    with warnings.catch_warnings():  # transformers' own deprecation notices, not the user's to act on
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base_dir)), str(adapter_dir)).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
        inputs = tokenizer(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False)
    return tokenizer.decode(out[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)
