"""The PEFT export of a really trained mlx-lm adapter: exact conversion or a refusal that says why, and the
numerical proof that transformers + PEFT compute what mlx-lm computes (logits, and merged = fused weights).

The proof needs the `peft` extra (torch CPU build, transformers, peft). Without it those tests error, never skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from test_release_flow import env, tiny_base  # noqa: F401 (fixtures: a model repository in the emulators)
from test_training import CHATS, TEXTS, _jsonl

from kiki_bot.core.errors import BadInput
from kiki_bot.demo.tinymodel import make_tiny_base
from kiki_bot.shells.peft_export import PEFT_CONFIG, PEFT_WEIGHTS, export
from kiki_bot.shells.training import TrainSpec, strip_adapter_config, train

BASE_ID = "kiki-bot/tiny-llama"
# Two runs that exercise every mapping: all linear layers of the last block only (layers_to_transform), and a
# subset of modules in every block with dropout (target_modules, lora_dropout), each with its own rank and scale.
RUNS = {
    "last-block-all-linears": {"rank": 4, "alpha": 16.0, "num_layers": 1},
    "all-blocks-q-v-down": {"rank": 2, "alpha": 3.0, "num_layers": -1, "dropout": 0.1,
                            "keys": ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")},
}
PROMPTS = ["say fox", "the dog sees the alpha", "user:\nsay river</s>\nassistant:\n", "cloud stone tree"]
# float32 on the CPU: the two libraries sum in different orders, so the results differ by rounding only.
LOGITS_TOLERANCE = 1e-4
WEIGHTS_TOLERANCE = 1e-5
OFFLINE = {"HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [m["content"] for r in CHATS for m in r["messages"]] + [r["text"] for r in TEXTS]
    return make_tiny_base(tmp_path_factory.mktemp("base"), texts)


@pytest.fixture(scope="module")
def runs(base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    data = tmp_path_factory.mktemp("data")
    _jsonl(data / "train.jsonl", CHATS)
    out = {}
    for name, hyper in RUNS.items():
        spec = TrainSpec(base_model=base, data_dir=data, adapter_dir=tmp_path_factory.mktemp(name), iters=20,
                         batch_size=4, learning_rate=1e-2, steps_per_report=5, save_every=10, **hyper)
        train(spec, progress=False)
        out[name] = spec.adapter_dir
    return out


@pytest.fixture(scope="module")
def exported(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, run in runs.items():
        out[name] = tmp_path_factory.mktemp(f"peft-{name}")
        for file, data in export(run, base_id=BASE_ID).files().items():
            (out[name] / file).write_bytes(data)
    return out


@pytest.fixture(scope="module")
def stack() -> Any:
    """torch, transformers and peft, or an error that says how to get them (a skip would hide the proof)."""
    try:
        import peft
        import torch
        import transformers
    except ImportError as e:
        raise RuntimeError(f"the PEFT equivalence proof needs the `peft` extra: pip install -e '.[test,peft]' "
                           f"({e})") from e
    return torch, transformers, peft


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- the conversion
@pytest.mark.parametrize("name", RUNS)
def test_config_and_matrices_are_mlx_lm_s_transposed(runs, exported, name):
    hyper, out = RUNS[name], exported[name]
    config = json.loads((out / PEFT_CONFIG).read_text())
    linears = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert config == {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": BASE_ID,
        "r": hyper["rank"], "lora_alpha": hyper["alpha"], "lora_dropout": hyper.get("dropout", 0.0),
        "target_modules": sorted(k.rsplit(".", 1)[-1] for k in hyper["keys"]) if "keys" in hyper else linears,
        "layers_to_transform": [1] if hyper["num_layers"] == 1 else [0, 1], "layers_pattern": "layers",
        "bias": "none", "fan_in_fan_out": False, "use_rslora": False, "use_dora": False,
        "modules_to_save": None, "inference_mode": True,
    }
    mlx, peft = load_file(str(runs[name] / "adapters.safetensors")), load_file(str(out / PEFT_WEIGHTS))
    assert len(peft) == len(mlx)
    for key, a in mlx.items():
        module, kind = key.rsplit(".", 1)
        b = peft[f"base_model.model.{module}.{'lora_A' if kind == 'lora_a' else 'lora_B'}.weight"]
        assert b.dtype == np.float32 and np.array_equal(b, a.T)


def _copy_run(run: Path, base: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(run, tmp_path / "run")
    shutil.copytree(base, tmp_path / "base")
    return tmp_path / "run", tmp_path / "base"


def _edit_json(path: Path, **changes: Any) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def _edit_weights(run: Path, add: dict[str, np.ndarray] | None = None, drop: tuple[str, ...] = ()) -> None:
    path = run / "adapters.safetensors"
    weights = {k: v for k, v in load_file(str(path)).items() if k not in drop} | (add or {})
    save_file(weights, str(path))


Q = "model.layers.0.self_attn.q_proj"
REFUSALS = {
    "dora": (lambda run, base: _edit_json(run / "adapter_config.json", fine_tune_type="dora"),
             "key `fine_tune_type`: is 'dora'"),
    "full fine-tune": (lambda run, base: _edit_json(run / "adapter_config.json", fine_tune_type="full"),
                       "key `fine_tune_type`: is 'full'"),
    "use_dora": (lambda run, base: _edit_json(run / "adapter_config.json", use_dora=True), "key `use_dora`"),
    "quantized base config": (lambda run, base: _edit_json(base / "config.json", quantization={"bits": 4}),
                              "the base model is quantized"),
    "quantized base weights": (
        lambda run, base: save_file(load_file(str(base / "model.safetensors"))
                                    | {"model.layers.0.mlp.up_proj.scales": np.zeros((128, 1), np.float32)},
                                    str(base / "model.safetensors")),
        "the base weights are quantized"),
    "unknown architecture": (lambda run, base: _edit_json(base / "config.json", model_type="phi3"),
                             "key `model_type`: is 'phi3'"),
    "module outside the blocks": (lambda run, base: _edit_weights(run, {"lm_head.lora_a": np.zeros((64, 2),
                                                                                                   np.float32)}),
                                  "tensor `lm_head.lora_a` is not a LoRA matrix"),
    "dora magnitude": (lambda run, base: _edit_weights(run, {f"{Q}.m": np.zeros(64, np.float32)}),
                       f"tensor `{Q}.m` is not a LoRA matrix"),
    "mlx-only switch layer": (
        lambda run, base: _edit_weights(run, {"model.layers.1.mlp.switch_mlp.gate_proj.lora_a":
                                              np.zeros((64, 2), np.float32)}),
        "module `mlp.switch_mlp.gate_proj` is not one of llama's linear layers"),
    "half of a pair": (lambda run, base: _edit_weights(run, drop=(f"{Q}.lora_b",)), f"`{Q}` has no `lora_b` matrix"),
    "modules differ per layer": (lambda run, base: _edit_weights(run, drop=(f"{Q}.lora_a", f"{Q}.lora_b")),
                                 "layers [0] adapt other modules than the rest"),
    "rank not the matrices'": (
        lambda run, base: _edit_json(run / "adapter_config.json", lora_parameters={"rank": 8, "scale": 1.5,
                                                                                   "dropout": 0.0}),
        "do not fit the base layer"),
    "float16 matrices": (
        lambda run, base: _edit_weights(run, {f"{Q}.lora_a": np.zeros((64, 2), np.float16)}),
        f"tensor `{Q}.lora_a` is float16; only float32"),
    "scale missing": (lambda run, base: _edit_json(run / "adapter_config.json", lora_parameters={"rank": 2}),
                      "2 problems"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_what_does_not_convert_exactly_is_refused_with_the_reason(runs, base, tmp_path, cli, case):
    run, base_copy = _copy_run(runs["all-blocks-q-v-down"], base, tmp_path)
    mutate, message = REFUSALS[case]
    mutate(run, base_copy)
    with pytest.raises(BadInput) as err:
        export(run, base_copy, BASE_ID)
    assert message in str(err.value)
    # The command: exit 2, one line naming the problem, nothing written.
    res = cli("export", "peft", run, tmp_path / "out", "--base", base_copy, "--base-id", BASE_ID)
    assert res.code == 2 and res.err.startswith("error: ") and message.split("`")[0] in res.err
    assert "Traceback" not in res.err and not (tmp_path / "out").exists()


def test_a_release_stages_no_peft_form_it_cannot_make_exactly_and_the_card_says_why(runs, base, tmp_path,
                                                                                    project):
    from kiki_bot.core.cardmodel import RunFacts
    from kiki_bot.repo import cards
    from kiki_bot.repo.project import Project
    from kiki_bot.shells.peft_export import for_hub

    files, why = for_hub(runs["last-block-all-linears"], base, BASE_ID)
    assert sorted(files) == ["adapter_config.json", "adapter_model.safetensors"] and why is None
    run, base_copy = _copy_run(runs["last-block-all-linears"], base, tmp_path)
    REFUSALS["dora"][0](run, base_copy)
    REFUSALS["quantized base config"][0](run, base_copy)
    files, why = for_hub(run, base_copy, BASE_ID)
    assert files == {} and why == ("adapter_config.json: key `fine_tune_type`: is 'dora': only 'lora' converts "
                                   "exactly (PEFT's DoRA normalises the weight differently from mlx-lm's "
                                   "DoRALinear, so the result would not be the same model)")
    assert str(tmp_path) not in for_hub(runs["last-block-all-linears"], base_copy, BASE_ID)[1]

    proj = Project(project)
    adapter = next(iter(proj.adapters.values()))
    refused = RunFacts(peft_refused="a `reason` <b>")
    rendered = cards.render_adapter(proj, adapter, "0.1.0", run=refused)
    readme = rendered.files["README.md"]
    assert "Only mlx-lm's format is provided: this adapter has no exact PEFT form (a `reason` &lt;b>)" in readme
    assert "from peft import PeftModel" not in readme and "adapter_path=adapter_dir)" in readme
    assert rendered.card.hub["library_name"] == "mlx" and "peft" not in rendered.card.hub["tags"]
    rendered = cards.render_adapter(proj, adapter, "0.1.0", run=RunFacts(peft_sha256="0" * 64))
    readme = rendered.files["README.md"]
    assert 'PeftModel.from_pretrained(base, "test-lab/tiny-lora")' in readme
    assert 'adapter_path=f"{adapter_dir}/mlx")' in readme
    # The Hub reads the library from the root's adapter_config.json (PEFT's); mlx-lm's format is a tag.
    assert rendered.card.hub["library_name"] == "peft" and {"peft", "mlx", "lora"} <= set(rendered.card.hub["tags"])


def test_the_base_comes_from_the_adapter_config_or_must_be_named(runs, base, tmp_path):
    run = shutil.copytree(runs["last-block-all-linears"], tmp_path / "run")
    with pytest.raises(BadInput, match="--base-id"):  # training records the base's local path, not its Hub id
        export(run)
    assert export(run, base_id=BASE_ID).config["base_model_name_or_path"] == BASE_ID
    strip_adapter_config(run, base_model_id=BASE_ID)  # what a release publishes: the Hub id, no local path
    with pytest.raises(BadInput, match="--base"):
        export(run)
    assert export(run, base).config["base_model_name_or_path"] == BASE_ID


def test_command_writes_both_files_reruns_safely_and_dry_runs(runs, base, exported, tmp_path, cli):
    run, out = runs["last-block-all-linears"], tmp_path / "peft"
    res = cli("export", "peft", run, out, "--base-id", BASE_ID, "--dry-run")
    assert res.code == 0 and not out.exists()
    planned = [json.loads(line) for line in res.out.splitlines()]
    assert [p["action"] for p in planned] == ["write_files"]
    assert sorted(planned[0]["files"]) == [str(out / PEFT_CONFIG), str(out / PEFT_WEIGHTS)]

    res = cli("export", "peft", run, out, "--base-id", BASE_ID, "--json")
    assert res.code == 0 and res.json() == {"out": str(out), "files": [str(out / PEFT_CONFIG),
                                                                        str(out / PEFT_WEIGHTS)]}
    assert _tree(out) == _tree(exported["last-block-all-linears"])
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert cli("-C", tmp_path, "export", "peft", run, "peft", "--base-id", BASE_ID).code == 0  # relative to -C
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before  # same content: untouched


# ---------------------------------------------------------------- the proof
def _mlx_logits(base: Path, run: Path, ids: list[list[int]]) -> list[np.ndarray]:
    import mlx.core as mx
    from mlx_lm import load

    model, _ = load(str(base), adapter_path=str(run))
    return [np.array(model(mx.array([i]))[0].astype(mx.float32)) for i in ids]


def _token_ids(base: Path) -> list[list[int]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base))
    return [tok.encode(p) for p in PROMPTS]


def _peft_model(stack: Any, base: Path, out: Path) -> Any:
    torch, transformers, peft = stack
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    return peft.PeftModel.from_pretrained(model, str(out)).eval()


@pytest.mark.parametrize("name", RUNS)
def test_peft_logits_equal_mlx_lm_s(stack, base, runs, exported, name):
    torch = stack[0]
    ids = _token_ids(base)
    model = _peft_model(stack, base, exported[name])
    pairs = len(load_file(str(runs[name] / "adapters.safetensors"))) // 2
    assert sum(1 for _, m in model.named_modules() if hasattr(m, "lora_A")) == pairs  # adapted where mlx-lm was
    with torch.no_grad():
        peft_logits = [model(torch.tensor([i])).logits[0].numpy() for i in ids]
        with model.disable_adapter():
            base_logits = [model(torch.tensor([i])).logits[0].numpy() for i in ids]
    mlx_logits = _mlx_logits(base, runs[name], ids)
    diff = max(float(np.abs(p - m).max()) for p, m in zip(peft_logits, mlx_logits, strict=True))
    effect = max(float(np.abs(p - b).max()) for p, b in zip(peft_logits, base_logits, strict=True))
    print(f"{name}: max |logits PEFT - mlx-lm| = {diff:.3g} (adapter moves logits by up to {effect:.3g})")
    assert effect > 100 * LOGITS_TOLERANCE  # the adapter matters: equal logits are not the base's twice
    assert diff < LOGITS_TOLERANCE


@pytest.mark.parametrize("name", RUNS)
def test_peft_merged_weights_equal_mlx_lm_fuse(stack, base, runs, exported, tmp_path, name):
    fused_dir = tmp_path / "fused"
    subprocess.run([sys.executable, "-m", "mlx_lm", "fuse", "--model", str(base), "--adapter-path",
                    str(runs[name]), "--save-path", str(fused_dir)], check=True, env=os.environ | OFFLINE,
                   capture_output=True)
    fused = {k: v for f in sorted(fused_dir.glob("*.safetensors")) for k, v in load_file(str(f)).items()}
    merged = {k: v.detach().numpy() for k, v in _peft_model(stack, base, exported[name]).merge_and_unload()
              .state_dict().items()}
    assert set(merged) - set(fused) == {"lm_head.weight"}  # tied to the embeddings, which mlx-lm saves once
    assert np.array_equal(merged["lm_head.weight"], fused["model.embed_tokens.weight"])
    base_weights = load_file(str(base / "model.safetensors"))
    changed = [k for k in fused if not np.array_equal(fused[k], base_weights[k])]
    assert len(changed) == len(load_file(str(runs[name] / "adapters.safetensors"))) // 2
    diff = max(float(np.abs(merged[k] - fused[k]).max()) for k in fused)
    print(f"{name}: max |PEFT merge_and_unload - mlx_lm fuse| = {diff:.3g}")
    assert diff < WEIGHTS_TOLERANCE


# ---------------------------------------------------------------- the release: both formats, both snippets
def test_release_stages_both_formats_and_the_card_s_snippets_load_them(stack, env, gh, hub, cli, gh_client,
                                                                        tiny_base, hf_api):
    import hashlib
    import re

    from huggingface_hub import CommitOperationAdd, snapshot_download
    from test_release_flow import GH_REPO, TAG, handle, merged_event, push_event

    # An earlier version in the older layouts (mlx-lm's at the root, PEFT's under peft/): its weights must not stay
    # downloadable at the head beside the new ones.
    hf_api.create_repo("test-lab/tiny-lora")
    hf_api.create_commit("test-lab/tiny-lora", [CommitOperationAdd(name, b"old weights") for name in (
        "adapters.safetensors", "peft/adapter_model.safetensors", "peft/adapter_config.json", "notes.txt")],
        commit_message="v0.0.9")
    assert handle(cli, env, "push", push_event(TAG)).code == 0
    [pr] = gh.pulls(GH_REPO)
    staged = hub.repo("test-lab/tiny-lora")
    [hub_pr] = staged.discussions.values()
    files = staged.files(f"refs/pr/{hub_pr.num}")
    assert {"mlx/adapters.safetensors", "mlx/adapter_config.json", "adapter_config.json",
            "adapter_model.safetensors", "notes.txt"} <= set(files)
    assert not {"adapters.safetensors", "peft/adapter_model.safetensors", "peft/adapter_config.json"} & set(files)
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == "test-lab/tiny-base"
    assert json.loads(files["mlx/adapter_config.json"])["model"] == "test-lab/tiny-base"
    run = json.loads(gh.files(GH_REPO, "kiki/release/tiny-lora/0.1.0")["cards/tiny-lora/card.json"])["run"]
    assert run["peft_sha256"] == hashlib.sha256(files["adapter_model.safetensors"]).hexdigest()
    assert run["adapter_sha256"] == hashlib.sha256(files["mlx/adapters.safetensors"]).hexdigest()
    assert run["peft_refused"] is None

    gh_client.get_repo(GH_REPO).get_pull(pr.number).merge(merge_method="squash")
    for name, data in gh.files(GH_REPO, "main").items():
        (env / name).parent.mkdir(parents=True, exist_ok=True)
        (env / name).write_bytes(data)
    assert handle(cli, env, "pull_request", merged_event(pr.number, "kiki/release/tiny-lora/0.1.0")).code == 0

    # The card's two snippets, run as written against the published repo; only the base model is the local
    # copy (the Hub emulator does not hold the base).
    readme = (Path(snapshot_download("test-lab/tiny-lora")) / "README.md").read_text()
    usage = readme[readme.index("## Appendix D"):readme.index("## Appendix E")]
    snippets = re.findall(r"^(`{3,})python\n(.*?)\n\1$", usage, flags=re.S | re.M)
    assert len(snippets) == 2 and "from peft" in snippets[0][1] and "from mlx_lm" in snippets[1][1]
    spaces = []
    for _, code in snippets:
        assert code.count('"test-lab/tiny-base"') in (1, 2)
        spaces.append({})
        exec(code.replace('"test-lab/tiny-base"', repr(str(tiny_base))), spaces[-1])  # noqa: S102
    torch = stack[0]
    ids = spaces[0]["tokenizer"]("int f1(void)")["input_ids"]
    with torch.no_grad():
        peft_logits = spaces[0]["model"](torch.tensor([ids])).logits[0].numpy()
    import mlx.core as mx

    mlx_logits = np.array(spaces[1]["model"](mx.array([ids]))[0])
    assert float(np.abs(peft_logits - mlx_logits).max()) < LOGITS_TOLERANCE
