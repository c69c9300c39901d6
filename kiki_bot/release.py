"""Moment 1: a release tag was pushed. Build the training set, train, evaluate, regenerate the card,
stage the adapter as a Hub pull request and open the review pull request on GitHub.

Every step is safe to repeat: training resumes or returns its finished run, the release date and
ledger entries are those of the first attempt, and the PRs are found (and brought up to date) before
they are created. A run lives in a directory named by its identity (spec, training-set hash, base
weights hash), so a re-run whose training set a purge changed trains afresh, never on old checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

from kiki_bot import render
from kiki_bot.console import say
from kiki_bot.context import Context
from kiki_bot.core import carddiff, ledger, tags
from kiki_bot.core.canonical import sha256_hex
from kiki_bot.core.cardmodel import RunFacts
from kiki_bot.core.errors import BadInput
from kiki_bot.render import lossplot
from kiki_bot.repo import cards, ledgerfile, trainset
from kiki_bot.repo.storage import files_sha256, write_text
from kiki_bot.shells.trainspec import ADAPTER_FILE, TrainSpec, weights_sha256

STATE = "release.json"
OPTOUTS = "optouts.tsv"  # the first attempt's opt-out answers: source id, tab, evidence line
TIMINGS = "timings.json"


@contextlib.contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = round(timings.get(phase, 0.0) + time.perf_counter() - start, 3)


def hub_title(tag: tags.Tag) -> str:
    return f"{tag.adapter} v{tag.version}"


def last_published(ctx: Context, adapter: str) -> str | None:
    """The last version `publish` ran for, as the card on the default branch records it (drafts do not count)."""
    from kiki_bot.core.cardmodel import last_published as last

    return last(render.load_card(ctx.project.card_dir(adapter)))


def parse_tag(ctx: Context, tag_text: str) -> tags.Tag:
    """The tag, or bad input whose example names one of this project's own adapters."""
    return tags.parse(tag_text, min(ctx.project.adapters, default="example-lora"))


def check_tag(ctx: Context, tag_text: str) -> tags.Tag:
    """Refuse a tag whose version is not newer than the published ones. The Hub tag is asked too: a re-run of
    an old release run checks out a commit from before its version's card was merged and published."""
    tag = parse_tag(ctx, tag_text)
    adapter = ctx.project.adapter(tag.adapter)
    last = last_published(ctx, tag.adapter)
    if not tags.newer(tag.version, last):
        raise BadInput("tag", f"{tag} is not newer than the last published version v{last} of {tag.adapter}")
    if ctx.fx.hub_has_tag(adapter.hub_repo, f"v{tag.version}"):
        raise BadInput("tag", f"{tag} is already published ({adapter.hub_repo} has the Hub tag v{tag.version}); "
                              "a published version is never rebuilt: tag a newer one")
    return tag


def release(ctx: Context, tag_text: str) -> dict[str, str]:
    """Run the whole release; returns the outputs (version, PR URL, Hub PR URL)."""
    tag = check_tag(ctx, tag_text)
    project, adapter = ctx.project, ctx.project.adapter(tag.adapter)
    base = project.base_model_path[adapter.name]
    if base is None or not (base / "config.json").is_file():
        found = "it is not set" if base is None else f"{base} has no config.json"
        raise BadInput(f"adapters/{adapter.name}.toml: key `base_model.local_path`",
                       f"a local copy of {adapter.base_model.id} (with config.json) is needed to train; {found}")
    base_sha256 = _pinned_base(adapter, base)
    run_dir = ctx.runs_dir / adapter.name / tag.version
    state = _state(run_dir, ctx.now)
    timings: dict[str, float] = {}
    with _timed(timings, "opt-out check"):
        evidence_files = _check_optouts(ctx, adapter, run_dir, state)
    with _timed(timings, "training set"):
        entries = ledgerfile.read(project.ledger_path)
        data = trainset.assemble(project, adapter, run_dir / "data", trainset.rule(project, entries))
    spec = _spec(adapter, base, run_dir, data.train_sha256, base_sha256)
    with _timed(timings, "training"):
        metrics = ctx.fx.train(spec=spec.model_dump())
    facts, scores, peft_files = RunFacts(train_sha256=data.train_sha256, origin="release"), {}, {}
    if metrics is not None:
        from kiki_bot.shells import peft_export

        peft_files, peft_refused = peft_export.for_hub(spec.adapter_dir, base, adapter.base_model.id)
        peft_weights = peft_files.get(peft_export.PEFT_WEIGHTS)
        with _timed(timings, "evaluation"):
            scores = _evaluate(ctx, adapter, base, spec.adapter_dir, run_dir)
        facts = RunFacts(trained_tokens=metrics.trained_tokens, iterations=metrics.iters,
                         wall_time_s=round(metrics.wall_time_s, 1), hardware=_hardware(metrics),
                         final_train_loss=metrics.train[-1].train_loss if metrics.train else None,
                         final_val_loss=metrics.val[-1].val_loss if metrics.val else None,
                         eval_score=scores.get("adapter", scores.get("score")), eval_base=scores.get("base"),
                         train_sha256=data.train_sha256,
                         adapter_sha256=files_sha256(spec.adapter_dir / ADAPTER_FILE),
                         peft_sha256=sha256_hex(peft_weights) if peft_weights else None, peft_refused=peft_refused,
                         origin="release")
    with _timed(timings, "card"):
        ledger_bytes, new_entries, honoured = _released_entries(ctx, adapter.name, tag.version, entries, state,
                                                                facts)
        if honoured:
            _check_ledger_unmoved(ctx, tag)
        rendered = cards.render_adapter(project, adapter, tag.version, state["date"], facts, new_entries)
        previous = render.load_card(project.card_dir(adapter.name))
        changes = carddiff.describe(carddiff.field_diff(
            previous.model_dump(mode="json", by_alias=True), rendered.card.model_dump(mode="json", by_alias=True)),
            limit=25) if previous else ["This is the first summary of this adapter: every field is new."]
        curve = lossplot.svg([(r.iteration, r.train_loss) for r in metrics.train] if metrics else [],
                             [(r.iteration, r.val_loss) for r in metrics.val] if metrics else [],
                             f"{adapter.name} v{tag.version}")
    with _timed(timings, "hub"):
        hub_files = _hub_files(run_dir, spec.adapter_dir, adapter.base_model.id, rendered.files, curve,
                               facts.mlx_dir if metrics is not None else None) | peft_files
        hub_pr = ctx.fx.hub_stage(repo=adapter.hub_repo, files=hub_files, title=hub_title(tag),
                                  description=f"Staged by kiki-bot for review; merged when {tag} is published.")
    card_path = f"cards/{adapter.name}"
    files = {f"{card_path}/{name}": text.encode() for name, text in rendered.files.items()}
    files[f"{card_path}/loss-curve.svg"] = curve.encode()
    if honoured:
        files["compliance/removals.jsonl"] = ledger_bytes
    files |= {path.relative_to(project.root).as_posix(): data for path, data in evidence_files.items()}
    # A dry run stages nothing: no Hub PR number yet, so the link goes to the repository's discussions.
    hub_pr_url = f"{ctx.settings.hf_endpoint}/{adapter.hub_repo}/discussions" + (f"/{hub_pr}" if hub_pr else "")
    timings = _first_timings(run_dir, timings)
    branch = tags.release_branch(tag)
    with _timed(timings, "github"):
        body = render.environment().get_template("release_pr.md.j2").render(
            tag=str(tag), adapter=adapter.name, version=tag.version, hub_pr=hub_pr or 0, hub_pr_url=hub_pr_url,
            sources={k: dataclasses.asdict(v) for k, v in data.sources.items()}, train=data.train, valid=data.valid,
            honoured=honoured, metrics=metrics, hardware=facts.hardware, timings=timings,
            spark_train=lossplot.sparkline([r.train_loss for r in metrics.train]) if metrics else "",
            spark_val=lossplot.sparkline([r.val_loss for r in metrics.val]) if metrics else "",
            final_train=facts.final_train_loss, final_val=facts.final_val_loss,
            curve_url=f"https://github.com/{ctx.repository}/blob/{branch}/{ctx.fx.folder}{card_path}/loss-curve.svg",
            evaluation=rendered.card.evaluation, card_changes=changes)
        pr_url = ctx.fx.pull_request(branch=branch, base=ctx.default_branch, title=f"Release {tag}", body=body,
                                     files=files)
    if pr_url is None and not ctx.dry_run:  # its review PR merged, and nothing changed since: publish is next
        say(f"{tag}: nothing to review, {ctx.default_branch} already holds its card; publish it "
            f"(`kiki-bot publish {tag}`, which the merged review PR's workflow runs)")
    return {"version": tag.version, "pr-url": pr_url or "", "hub-url": hub_pr_url if hub_pr else ""}


def _check_optouts(ctx: Context, adapter, run_dir: Path, state: dict) -> dict[Path, bytes]:
    """The release's opt-out check of the adapter's crawled sources, made once per release (a re-run applies
    the first attempt's answers again); its evidence is in the checkout for the build and goes into the review
    PR. Offline (KIKI_OPTOUTS_OFFLINE) or in a dry run no host is asked: the stored evidence stands."""
    from kiki_bot.core import optouts
    from kiki_bot.repo import evidence
    from kiki_bot.shells.optouts import run

    saved = run_dir / OPTOUTS
    ids = [s.id for s in evidence.crawled(ctx.project.adapter_sources(adapter))]
    if not saved.is_file():
        offline = ctx.settings.optouts_offline or ctx.fx.dry_run
        found = run(ctx.project, ids, state["at"], offline).lines
        write_text(saved, "".join(f"{sid}\t{optouts.dumps(e)}\n" for sid in sorted(found) for e in found[sid]))
    lines: dict[str, list] = {}
    for row in saved.read_text(encoding="utf-8").splitlines():
        sid, _, line = row.partition("\t")
        lines.setdefault(sid, []).extend(optouts.parse(line.encode(), str(saved)))
    if files := evidence.appended(ctx.project, lines):
        ctx.fx.write_files(files=files)
    return {evidence.path(ctx.project, sid): evidence.path(ctx.project, sid).read_bytes() for sid in ids
            if evidence.path(ctx.project, sid).is_file()} | files


def _pinned_base(adapter, base: Path) -> str | None:
    """The base weights' SHA-256 when the config pins it, refused before anything is built when they differ: a
    self-hosted runner's local copy can be swapped or half-downloaded, and the card names the base by its id."""
    if (pin := adapter.base_model.sha256) is None:
        return None
    if (actual := weights_sha256(base)) != pin:
        raise BadInput(f"adapters/{adapter.name}.toml: key `base_model.sha256`",
                       f"the weights at base_model.local_path ({base}) hash to {actual}, not the pinned {pin}: "
                       f"restore the exact copy of {adapter.base_model.id}, or pin the new one after checking it")
    return actual


def _spec(adapter, base: Path, run_dir: Path, train_sha256: str, base_sha256: str | None) -> TrainSpec:
    """The training run of this release, in `run_dir/adapter/<identity>`: a run of other data, base weights
    or parameters gets a clean directory of its own, so checkpoints are never mixed."""
    t, lora = adapter.training, adapter.lora
    spec = TrainSpec(base_model=base, data_dir=run_dir / "data", adapter_dir=run_dir / "adapter", rank=lora.rank,
                     alpha=lora.alpha, dropout=lora.dropout, keys=tuple(lora.target_modules),
                     num_layers=lora.num_layers, seed=t.seed, iters=t.iters, batch_size=t.batch_size,
                     learning_rate=t.learning_rate, max_seq_length=t.max_seq_length, save_every=t.save_every,
                     steps_per_report=t.steps_per_report, steps_per_eval=t.steps_per_eval, hosts=tuple(t.hosts),
                     train_sha256=train_sha256, base_sha256=base_sha256 or weights_sha256(base))
    return spec.model_copy(update={"adapter_dir": run_dir / "adapter" / spec.fingerprint()[:16]})


def _state(run_dir: Path, now: dt.datetime) -> dict:
    """The first attempt's release date and clock: a re-run reproduces the same files."""
    path = run_dir / STATE
    if path.is_file():
        doc = json.loads(path.read_text())
        return {"date": dt.date.fromisoformat(doc["date"]), "at": dt.datetime.fromisoformat(doc["at"])}
    write_text(path, json.dumps({"date": now.date().isoformat(), "at": now.isoformat()}) + "\n")
    return {"date": now.date(), "at": now}


def _first_timings(run_dir: Path, timings: dict[str, float]) -> dict[str, float]:
    """The first attempt's phase times (saved once): what the release cost, shown unchanged on a re-run."""
    path = run_dir / TIMINGS
    if not path.is_file():
        write_text(path, json.dumps(timings, indent=2, sort_keys=True) + "\n")
    return json.loads(path.read_text())


def _hardware(metrics) -> str:
    h = metrics.hardware
    return f"{h.device} ({h.processor or h.platform}), {h.world_size} process(es), mlx {h.mlx_version}"


def _evaluate(ctx: Context, adapter, base: Path, adapter_dir: Path, run_dir: Path) -> dict[str, float]:
    if adapter.eval is None:
        return {}
    from kiki_bot.evaluate import run_command

    return run_command(adapter.eval.command, base, adapter_dir, run_dir / "data", ctx.project.root)


def _released_entries(ctx: Context, adapter: str, version: str, entries: list, state: dict,
                      facts: RunFacts) -> tuple[bytes, list[ledger.Entry], list[str]]:
    """The ledger with `released` for every purged request this version no longer contains, naming the
    training set and the weights that prove it (none before there are weights: a dry run), as the review PR
    will hold it: (its bytes, its entries, the requests honoured). Built in memory from the checkout's
    ledger, whose chain is checked first."""
    path = ctx.project.ledger_path
    data = ledgerfile.data(path)
    chain = ledger.verified(data, str(path))
    if facts.adapter_sha256 is None:
        return data, chain, []
    honoured, added = [], []
    names = {"train_sha256": facts.train_sha256, "adapter_sha256": facts.adapter_sha256}
    from kiki_bot.removal import published

    for rid, s in sorted(ledger.request_state(entries, published(ctx.project, [adapter])).items()):
        if adapter not in s.pending:
            continue
        entry, new = ledger.once(chain, "released", {"id": rid, "issue": s.issue}, ctx.settings.bot_login,
                                 state["at"], str(path), ("adapter", "version", *names), adapter=adapter,
                                 version=version, **names)
        added += [ledger.line(entry)] if new else []
        honoured.append(rid)
    return data + "".join(f"{text}\n" for text in added).encode("utf-8"), chain, honoured


def _check_ledger_unmoved(ctx: Context, tag: tags.Tag) -> None:
    """The review PR's branch is built on the default branch's head, and its ledger is the tag's plus the
    `released` entries: if the default branch's ledger has entries the tag's lacks (a purge merged since), the
    PR would drop them. Refused before anything is staged; tagging the head again is the fix."""
    if not ctx.repository:
        return
    head = ctx.fx.file_at("compliance/removals.jsonl", ctx.default_branch) or b""
    here = ledgerfile.data(ctx.project.ledger_path)
    if not here.startswith(head):
        raise BadInput("tag", f"the removal ledger on {ctx.default_branch} has entries that {tag} lacks "
                              f"({len(head.splitlines())} there, {len(here.splitlines())} at the tag): tag the head "
                              f"of {ctx.default_branch} again so that the release sees every removal")


def _hub_files(run_dir: Path, adapter_dir: Path, base_id: str, card_files: dict[str, str], curve: str,
               mlx_dir: str | None) -> dict[str, Path | bytes]:
    """What goes to the Hub: the card, the proof of what it was trained on, and the trained adapter with its
    cleaned config under `mlx_dir` (None: nothing was trained)."""
    files: dict[str, Path | bytes] = {"README.md": card_files[render.README].encode(),
                                      "CHANGELOG.md": card_files[render.CHANGELOG].encode(),
                                      "loss-curve.svg": curve.encode(),
                                      trainset.HASHES: run_dir / "data" / trainset.HASHES}
    if mlx_dir is not None:
        from kiki_bot.shells.training import strip_adapter_config
        from kiki_bot.shells.trainspec import CONFIG_FILE

        strip_adapter_config(adapter_dir, base_model_id=base_id)
        files[mlx_dir + ADAPTER_FILE] = adapter_dir / ADAPTER_FILE
        files[mlx_dir + CONFIG_FILE] = adapter_dir / CONFIG_FILE
    return files
