"""Building the card record from data, never typed: the PST template's answers, figures, size bins and
domain cut, the compute estimate; the version history and the changelog entry come from `cardhistory`.

Pure: takes the project's config, the adapter's sources, the data figures, removal statistics, the training
run's facts and the previous card, and returns one `Card` (`cardmodel`). Both README.md and CHANGELOG.md
render from it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter

from kiki_bot.core.cardhistory import changelog_entry, history_of, issues_url, removal_form_url, superseded
from kiki_bot.core.cardmodel import (
    Card,
    Compute,
    CrawledRepo,
    Domain,
    Evaluation,
    Fingerprint,
    Header,
    History,
    LargeDataset,
    ModelLink,
    ModalityRow,
    Purge,
    Removals,
    RunFacts,
    Section1,
    Section3,
    Section21,
    Section22,
    Section23,
    Section24to26,
    SourceRow,
)
from kiki_bot.core.config import Adapter, Category, KikiConfig, Modality, Payload, Source
from kiki_bot.core.errors import BadInput
from kiki_bot.core.figuresmodel import ESTIMATE_BYTES_PER_TOKEN, DataFigures, merged_domains
from kiki_bot.core.optouts import Facts, robots_token
from kiki_bot.core.optouts import card_text as optouts_text

TEMPLATE_EDITION = (
    "Template for the Public Summary of Training Content for general-purpose AI models "
    "(Art. 53(1)(d) of Regulation (EU) 2024/1689), C(2025) 8311 final of 5 December 2025 "
    "(same text as C(2025) 5235 final of 24 July 2025)"
)
SYSTEMIC_RISK_FLOP = 1e25
FALLBACK_BASE_FLOP = {"systemic": 1e25, "other": 1e23}
LARGE_SHARE = 0.03
PAIRS = "instruction/response pairs"  # PST 1.3 names them among the types of content (chat, prompt/completion)
LANGUAGE_NAMES = {
    "bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French", "ga": "Irish", "hr": "Croatian",
    "hu": "Hungarian", "it": "Italian", "lt": "Lithuanian", "lv": "Latvian", "mt": "Maltese", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish",
}
BINS: dict[Modality, tuple[str, float, float, tuple[str, str, str]]] = {
    Modality.TEXT: ("tokens", 1e9, 1e13, (
        "Less than 1 billion tokens", "1 billion to 10 trillion tokens", "More than 10 trillion tokens")),
    Modality.IMAGE: ("images", 1e6, 1e9, (
        "Less than 1 million images", "1 million to 1 billion images", "More than 1 billion images")),
    Modality.AUDIO: ("hours", 1e4, 1e6, (
        "Less than 10 000 hours", "10 000 to 1 million hours", "More than 1 million hours")),
    Modality.VIDEO: ("hours", 1e4, 1e6, (
        "Less than 10 000 hours", "10 000 to 1 million hours", "More than 1 million hours")),
}


# ---------------------------------------------------------------- pure helpers
def mm_yyyy(day: dt.date | None) -> str:
    return day.strftime("%m/%Y") if day else "not applicable"


def size_bin(modality: Modality, amount: float) -> str:
    """Bins are [lower, upper): the template does not define the edges, the card says so."""
    _, lower, upper, names = BINS[modality]
    return names[0] if amount < lower else names[1] if amount < upper else names[2]


def domain_cut(count: int, sme: bool) -> tuple[int, str]:
    """How many top domains to list: 10 % of the count; SMEs 5 % or 1 000, whichever is lower; rounded up."""
    if count == 0:
        return 0, "No domains were crawled."
    crawled = f"{count:,} {'domain was' if count == 1 else 'domains were'} crawled."
    if sme:
        n = min(math.ceil(count * 0.05), 1000)
        rule = (f"{crawled} As an SME the provider lists the top 5 % of them, or at most 1 000: {n:,} listed here "
                "(5 % rounded up; the template does not define rounding).")
    else:
        n = math.ceil(count * 0.10)
        rule = (f"{crawled} The top 10 % of them are listed: {n:,} here (10 % rounded up; the template does not "
                "define rounding).")
    return n, rule


def large_datasets(public: list[tuple[Source, int]], threshold: float = LARGE_SHARE) -> list[LargeDataset]:
    """A public dataset is large when it exceeds 3 % of all public datasets' size in its modality."""
    totals: dict[Modality, int] = {}
    for src, amount in public:
        totals[src.modality] = totals.get(src.modality, 0) + amount
    out = []
    for src, amount in public:
        total = totals[src.modality]
        share = amount / total if total else 0.0
        if share > threshold:
            out.append(LargeDataset(name=src.name, url=str(src.url) if src.url else None, modality=src.modality,
                                    share_percent=round(share * 100, 2), selection=src.selection))
    return out


def compute_estimate(adapter: Adapter, tokens_processed: int, basis: str) -> Compute:
    """C ≈ 6·N·D, compared with the systemic-risk line and the one-third-of-base test for provider status."""
    n = adapter.base_model.parameters
    flop = 6 * n * tokens_processed
    base = adapter.base_model.training_compute_flop
    threshold = (base if base else FALLBACK_BASE_FLOP["other"]) / 3
    basis_text = (f"The threshold is one third of the base model's published training compute ({base:.2e} FLOP), "
                  f"that is {threshold:.2e} FLOP." if base else
                  "The base model's training compute is not published, so the Commission guidelines' fallback "
                  f"threshold applies: one third of 10^23 FLOP, that is {threshold:.2e} FLOP.")
    if flop > threshold:
        case = (f"{basis_text} This modification's estimate exceeds it: under the Commission's indicative "
                "criterion the fine-tuner is the provider of a modified general-purpose AI model, and this "
                "summary is required.")
    else:
        case = (f"{basis_text} This modification's estimate is below it: under the Commission's indicative "
                "criterion the fine-tuner does not become the provider of a new general-purpose AI model; this "
                "summary of the modification's data is published voluntarily.")
    return Compute(formula="C ≈ 6 × N × D (N parameters of the base model, D tokens processed in training; an upper "
                   "bound for LoRA, whose frozen weights need no weight gradients)",
                   parameters=n, tokens_processed=tokens_processed, tokens_basis=basis, flop=flop,
                   systemic_risk_threshold=SYSTEMIC_RISK_FLOP, base_compute=base, provider_threshold=threshold,
                   provider_case=case)


def languages(codes: list[str]) -> list[str]:
    return [f"{LANGUAGE_NAMES.get(c, c)} ({c})" for c in sorted(set(codes))]


# ---------------------------------------------------------------- the builder
def build(
    config: KikiConfig,
    sources: list[Source],
    adapter: Adapter,
    figures: DataFigures,
    removals: Removals,
    version: str,
    date: dt.date,
    run: RunFacts,
    previous_card: Card | None,
    published_at: dt.datetime | None = None,
    ledger_head: tuple[int, str] = (0, "0" * 64),
    optouts: Facts | None = None,
    upstream: str = "",
    purges: list[Purge] | None = None,
    history: History | None = None,
) -> Card:
    """Assemble the whole card; a re-render of the same version reproduces the same bytes.

    A `previous_card` that was never published (a draft, or a release whose publish has not run) is replaced:
    the new card compares with, links and keeps the history of published versions only. `history` (from a
    hand-written card, `kiki-bot card import`) replaces what `previous_card` would give; `purges` (the
    ledger's, for this adapter) say which earlier versions were built before records were removed.
    """
    cfg, srcs = config, sources
    rows = [_source_row(s, figures) for s in srcs]
    # Sections 1.3 to 2.3 and the Hub metadata answer for the sources whose records this version uses (all
    # removed: not used); Appendix A lists every source of the adapter, at 0 records if need be.
    used = [s for s in srcs if figures.sources[s.id].records]
    by_cat = {c: [s for s in used if s.category is c] for c in Category}
    tokens_by_source = {r.id: r.tokens for r in rows}
    modalities = _modality_rows(used, figures)
    all_last = [figures.sources[s.id].last_access for s in srcs if figures.sources[s.id].last_access]
    crawled = by_cat[Category.CRAWLED]
    crawl_first = [figures.sources[s.id].first_access for s in crawled if figures.sources[s.id].first_access]
    crawl_last = [figures.sources[s.id].last_access for s in crawled if figures.sources[s.id].last_access]
    domains = merged_domains(figures.sources[s.id] for s in crawled)
    listed, rule = domain_cut(len(domains), cfg.provider.sme)
    ranked = sorted(domains.items(), key=lambda kv: (-kv[1], kv[0]))[:listed]
    public = [(s, tokens_by_source[s.id]) for s in by_cat[Category.PUBLIC]]
    large = large_datasets(public)
    total_tokens = sum(r.tokens for r in rows)
    total_records = sum(r.records for r in rows) or 1
    if run.trained_tokens:
        processed, basis = run.trained_tokens, (
            "tokens processed in this release's training run (mlx-lm trained_tokens)" if run.origin == "release"
            else "tokens processed in a training run typed in with card render --run, not recorded by kiki-bot")
    else:
        t = adapter.training
        processed = round(total_tokens * t.iters * t.batch_size / total_records)
        basis = (f"dataset tokens × iterations × batch size ÷ records ({t.iters} × {t.batch_size} ÷ "
                 f"{total_records}); " + ("this version's training run was not recorded by kiki-bot (its score is "
                                           "typed in, see Appendix C)" if run.eval_score is not None
                                           else "no training run recorded yet"))
    training = _training_facts(adapter)
    period = f"From {mm_yyyy(min(crawl_first))} to {mm_yyyy(max(crawl_last))}" if crawl_first else "not applicable"
    fingerprint = Fingerprint(
        sources={r.id: (r.records, r.tokens) for r in rows},
        licenses=sorted({lic for s in srcs for lic in figures.sources[s.id].licenses}),
        size_bins=[f"{m.modality.value}: {m.bin}" for m in modalities],
        latest_collection=mm_yyyy(max(all_last) if all_last else None),
        period=period,
        domains=[d for d, _ in ranked],
        large=[d.name for d in large],
        removals=removals.records_removed,
        training=training,
    )
    kept = history or history_of(previous_card, version, adapter.hub_repo)
    previous = kept.previous
    entry = changelog_entry(version, date, fingerprint, previous, removals, trained=run.iterations is not None)
    older = [e for e in kept.changelog if e.version != version]
    evaluation = _evaluation(adapter, run)
    return Card(
        adapter=adapter.name,
        header=Header(version=version, last_update=date, previous_versions=kept.versions,
                      template_edition=TEMPLATE_EDITION, latest_url=f"https://huggingface.co/{adapter.hub_repo}",
                      ledger_seq=ledger_head[0], ledger_hash=ledger_head[1]),
        section1=Section1(
            provider=f"{cfg.provider.name} ({cfg.provider.country})",
            provider_website=str(cfg.provider.website), provider_contact=cfg.provider.contact,
            representative=(cfg.provider.authorised_representative if not cfg.provider.established_in_eu else
                            f"Not applicable: the provider is established in the Union ({cfg.provider.country})."),
            model_name=f"{adapter.hub_repo} v{version}",
            model_url=f"https://huggingface.co/{adapter.hub_repo}",
            description=adapter.description,
            dependencies=[{"name": adapter.base_model.id, "url": f"https://huggingface.co/{adapter.base_model.id}",
                           "summary_url": str(adapter.base_model.summary_url) if adapter.base_model.summary_url else None}],
            placement_date=date,
            modalities=modalities,
            latest_collection=fingerprint.latest_collection,
            continuous_training=adapter.continuous_training,
            languages=languages([lang for s in used for lang in s.languages]),
            other_characteristics=_other_characteristics([r for r in rows if r.records]),
            comments=_token_comment(figures),
        ),
        section21=Section21(
            used=bool(public), modalities=_mods(by_cat[Category.PUBLIC]), large=large,
            other_description=_describe_others([s for s, _ in public if s.name not in {d.name for d in large}]),
            comments=("Shares are computed over all publicly available datasets of the same modality, after filtering; "
                      "a dataset is listed when its share exceeds 3 %." if public else "")),
        section22=Section22(
            licensed_used=bool(by_cat[Category.LICENSED]), licensed_modalities=_mods(by_cat[Category.LICENSED]),
            private_used=bool(by_cat[Category.PRIVATE_THIRD_PARTY]),
            private_modalities=_mods(by_cat[Category.PRIVATE_THIRD_PARTY]),
            private_listed=[s.name for s in by_cat[Category.PRIVATE_THIRD_PARTY] if s.url],
            private_description=_describe_others([s for s in by_cat[Category.PRIVATE_THIRD_PARTY] if not s.url]),
            comments=""),
        section23=Section23(
            used=bool(crawled), crawlers=sorted({s.crawler.name for s in crawled if s.crawler}),
            purposes=_join({s.crawler.purpose for s in crawled if s.crawler}),
            behaviour=_join({s.crawler.behaviour for s in crawled if s.crawler}),
            period=period,
            content_description=_join({s.crawler.content_description for s in crawled if s.crawler}),
            modalities=_mods(crawled), domain_count=len(domains), domains_listed=listed, domain_rule=rule,
            domains=[Domain(domain=d, bytes=b) for d, b in ranked],
            repositories=[CrawledRepo(name=s.url.path.strip("/"), url=str(s.url), records=figures.sources[s.id].records)
                          for s in crawled if s.url and s.url.host == "github.com"],
            comments=("Domains are registrable domains (public suffix list) of each record's origin, ranked by the "
                      "size of the content used in training." if crawled else "")),
        section24_26=_sections_24_to_26(srcs, figures),
        section3=Section3(
            signatory=cfg.provider.code_of_practice_signatory,
            opt_out_measures=(_opt_out_text(crawled, optouts, sum(figures.sources[s.id].records for s in crawled))
                              + (f" {upstream}" if upstream else "")),
            opt_outs=sorted({o for s in crawled if s.crawler for o in s.crawler.opt_outs}),
            removals=removals,
            copyright_policy_url=str(cfg.provider.copyright_policy_url),
            removal_channel=(f"An approved removal reaches a published release trained without the records within "
                             f"{cfg.policy.removal_window_days} days of the request."),
            removal_form_url=removal_form_url(cfg.provider.contact),
            private_contact=cfg.provider.private_contact,
            no_origin={r.name: r.no_origin for r in rows if r.no_origin},
            illegal_content_measures=adapter.illegal_content_measures,
            other_processing=adapter.other_processing),
        sources=rows,
        token_method=figures.token_method,
        compute=compute_estimate(adapter, processed, basis),
        training=training,
        run=run,
        evaluation=evaluation,
        intended_use=adapter.intended_use,
        limitations=adapter.limitations,
        citation=_citation(cfg.provider.name, adapter, version, date),
        hub=_hub_metadata(adapter, used, run),
        fingerprint=fingerprint,
        previous=previous,
        changelog=[entry, *older],
        superseded=superseded(kept.versions, purges or [], cfg.policy.superseded,
                              issues_url(cfg.provider.contact)),
        published_at=published_at,
    )


def _evaluation(adapter: Adapter, run: RunFacts) -> Evaluation | None:
    """The scores with where each came from; a score typed in (no training run recorded, or run facts typed with
    `card render --run`) must say where from, next to the benchmark's caveats, or the card is refused."""
    ev = adapter.eval
    if ev is None:
        return None
    ran = run.iterations is not None
    # scores that say where they came from were typed in, run or not, and so were any with typed run facts
    measured = ran and run.origin == "release" and not run.eval_source
    if not measured and not run.eval_source and (run.eval_score, run.eval_base) != (None, None):
        score = run.eval_score if run.eval_score is not None else run.eval_base
        raise BadInput("card.json: key `run.eval_source`", f"the score {score:g} has no recorded training "
                       "run: say where it came from (`eval_source` in the `--run` facts of `card render`)")
    typed_in = f"typed in, not measured by a run kiki-bot recorded: {(run.eval_source or '').rstrip('.')}."
    base = _first(run.eval_base, ev.base_score)
    said = []
    if run.eval_score is None:
        said.append("This adapter: not measured" + ("" if ran else " (no training run recorded yet)") + ".")
    else:
        said.append("This adapter: " + ("measured by this release's training run (the evaluation command after "
                                        "training)." if measured else typed_in))
    if run.eval_base is not None:
        said.append("Base model: measured by the same run." if measured else f"Base model: {typed_in}")
    elif base is not None:
        said.append("Base model: typed in by the provider (the adapter's configuration), not measured by a run "
                    "kiki-bot recorded.")
    typed = not measured and (base, run.eval_score) != (None, None) or base is not None and run.eval_base is None
    if typed and not ev.caveats:
        raise BadInput(f"adapters/{adapter.name}.toml: key `eval.caveats`", "a score typed in is shown with the "
                       "benchmark's caveats (what it measures and what it does not): add them")
    if ev.caveats:
        said.append(f"Benchmark caveats: {ev.caveats.rstrip('.')}.")
    return Evaluation(benchmark=ev.benchmark, metric=ev.metric, base=base, adapter=run.eval_score,
                      delta=None if base is None or run.eval_score is None else round(run.eval_score - base, 4),
                      source=" ".join(said))


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


PARTS = {"prompt": "prompts", "response": "responses", "text": "texts"}


def _payloads(srcs: list[Source]) -> dict[str, Payload]:
    """Every source's `[payload]`; a missing one is an error, never a No (PST 2.5 and 2.6 are answered from them)."""
    missing = [(f"sources/{s.id}.toml: key `payload`", "missing: declare who wrote each part of the records "
                "(`prompt` and `response`, or `text`: each `source`, `provider` or `model:<hub id>`, DESIGN.md "
                "section 8); the card answers PST 2.5 and 2.6 from it, never from a default")
               for s in srcs if s.payload is None]
    if missing:
        raise BadInput.of(missing)
    return {s.id: s.payload for s in srcs if s.payload is not None}


def _written_by(srcs: list[Source], payloads: dict[str, Payload], author: str) -> str:
    """`the responses (in part; the rest taken verbatim from the source) of A, B and C`: what `author` wrote,
    sources grouped by the parts written."""
    groups: dict[str, list[str]] = {}
    for s in srcs:
        declared = payloads[s.id].authors()
        parts = []
        for part in payloads[s.id].by(author):
            rest = [_author_name(a) for a in declared[part] if a != author and not a.startswith(f"{author}:")]
            parts.append(PARTS[part] + (f" (in part; the rest {' or '.join(rest)})" if rest else ""))
        if parts:
            groups.setdefault(f"the {' and the '.join(parts)}", []).append(s.name)
    return "; ".join(f"{parts} of {_and(names)}" for parts, names in groups.items())


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _author_name(author: str) -> str:
    names = {"source": "taken verbatim from the source", "provider": "written by the provider's people"}
    return names.get(author) or f"generated by {author.removeprefix('model:')}"


def _sections_24_to_26(srcs: list[Source], figures: DataFigures) -> Section24to26:
    """2.4 from the user-data sources' declarations, 2.5 and 2.6 from who wrote each part of the records used
    (a source whose records were all removed no longer counts)."""
    payloads = _payloads(srcs)
    srcs = [s for s in srcs if figures.sources[s.id].records]
    by_cat = {c: [s for s in srcs if s.category is c] for c in Category}
    generated = [s for s in srcs if payloads[s.id].models]
    models = sorted({m for s in generated for m in payloads[s.id].models})
    summaries = {m: str(u) for s in generated for m, u in payloads[s.id].summaries.items()}

    def notes(chosen: list[Source]) -> str:
        return " ".join(dict.fromkeys(n for s in chosen if (n := payloads[s.id].note)))

    if generated:
        synthetic = f"Generated: {_written_by(srcs, payloads, 'model')}. {notes(generated)}".strip()
    else:
        synthetic = (f"No: by the payload declarations of all {len(srcs)} sources used (who wrote each part of "
                     "their records), no part was generated by an AI model.")
    people = [s for s in srcs if s.category is not Category.OTHER and payloads[s.id].by("provider")]
    listed = _describe_others(by_cat[Category.OTHER])
    if people:
        other = (f"The provider's people wrote content that no listed source holds: "
                 f"{_written_by(people, payloads, 'provider')}. {notes(people)} {listed}")
    elif listed:
        other = listed
    else:
        other = (f"No: by the payload declarations of all {len(srcs)} sources used, no part of any record was written "
                 "by the provider's people, and no source outside sections 2.1 to 2.5 was used.")
    return Section24to26(
        user_interactions=any(s.user_data == "model" for s in by_cat[Category.USER]),
        user_other_services=any(s.user_data == "other-services" for s in by_cat[Category.USER]),
        synthetic=bool(generated), synthetic_modalities=_mods(generated),
        synthetic_models=[ModelLink(name=m, url=f"https://huggingface.co/{m}", summary_url=summaries.get(m))
                          for m in models],
        synthetic_description=synthetic,
        other=bool(people or by_cat[Category.OTHER]), other_description=" ".join(other.split()),
        user_basis=_user_basis(srcs, by_cat[Category.USER]))


def _user_basis(used: list[Source], users: list[Source]) -> str:
    """What 2.4's two answers rest on: the categories the sources used are declared in (and, for user data,
    whose interactions), so neither No is a default."""
    n = len(used)
    if not users:
        counts = Counter(s.category.value for s in used)
        cats = ", ".join(f"{c} ({k} source{'s' * (k != 1)})" for c, k in sorted(counts.items()))
        return (f"No to both: none of the {n} source{'s' * (n != 1)} used is declared as user data (category "
                f"2.4); their categories are {cats}.")
    whose = {"model": "interactions with the AI model", "other-services": "interactions with the provider's other "
             "services or products"}
    named = "; ".join(f"{s.name} ({s.id}), {whose[s.user_data or '']}" for s in users)
    return (f"Of the {n} source{'s' * (n != 1)} used, {len(users)} {'is' if len(users) == 1 else 'are'} declared as "
            f"user data (category 2.4): {named}.")


def _source_row(s: Source, figures: DataFigures) -> SourceRow:
    """The licence shown is the one the records carry (their provenance), the source's declared one only when
    every record carries it."""
    f = figures.sources[s.id]
    carried = sorted(f.licenses.items(), key=lambda kv: (-kv[1], kv[0]))
    license = s.license if set(f.licenses) <= {s.license} else ", ".join(f"{lic} ({n:,} records)" for lic, n in carried)
    return SourceRow(id=s.id, name=s.name, category=s.category, license=license, records=f.records,
                     bytes=f.bytes, tokens=f.tokens, no_origin=f.no_origin, selection=s.selection)


def _modality_rows(srcs: list[Source], figures: DataFigures) -> list[ModalityRow]:
    rows = []
    for modality in Modality:
        chosen = [s for s in srcs if s.modality is modality]
        if not chosen:
            continue
        if modality is Modality.TEXT:
            amount = sum(figures.sources[s.id].tokens for s in chosen)
            note = (f"about {amount:,} tokens" + (" (counted with the base model's tokenizer)"
                    if figures.token_method == "tokenizer" else " (estimated; see Additional comments)"))
        else:
            amount = sum(figures.sources[s.id].records for s in chosen)
            note = f"{amount:,} items"
        unit, *_ = BINS.get(modality, ("items",))
        rows.append(ModalityRow(
            modality=modality, bin=size_bin(modality, amount) if modality in BINS else note,
            bins=BINS[modality][3] if modality in BINS else (note, "", ""),
            amount=amount, unit=unit, size_note=note + "; bins are read as [lower, upper)",
            content_types=sorted({c for s in chosen for c in s.content_types} | (
                {PAIRS} if any(s.payload and s.payload.pairs for s in chosen)
                else set()))))
    return rows


def _training_facts(adapter: Adapter) -> dict[str, str]:
    lora, t = adapter.lora, adapter.training
    return {
        "base_model": adapter.base_model.id,
        "method": "LoRA (mlx-lm)",
        "rank": str(lora.rank),
        "alpha": f"{lora.alpha:g}",
        "scale": f"{lora.scale:g}",
        "dropout": f"{lora.dropout:g}",
        "target_modules": ", ".join(lora.target_modules),
        "num_layers": str(lora.num_layers),
        "iters": str(t.iters),
        "batch_size": str(t.batch_size),
        "learning_rate": f"{t.learning_rate:g}",
        "max_seq_length": str(t.max_seq_length),
        "seed": str(t.seed),
    }


def _mods(srcs: list[Source]) -> list[Modality]:
    return sorted({s.modality for s in srcs}, key=list(Modality).index)


def _join(parts: set[str]) -> str:
    return " ".join(sorted(parts))


def _describe_others(srcs: list[Source]) -> str:
    return " ".join(f"{s.name}: {s.description} Languages: {', '.join(s.languages)}. Collected "
                    f"{mm_yyyy(s.collected_from)}–{mm_yyyy(s.collected_to)}." for s in srcs)


def _other_characteristics(rows: list[SourceRow]) -> str:
    total = sum(r.records for r in rows)
    no_origin = sum(r.no_origin for r in rows)
    return (f"{total:,} records from {len(rows)} source{'s' * (len(rows) != 1)}; every record carries per-record provenance (source, "
            f"licence, access date{'' if not no_origin else ', and origin for all but ' + format(no_origin, ',')})."
            " Figures are after pre-processing and removals, before training.")


def _token_comment(figures: DataFigures) -> str:
    if figures.token_method == "tokenizer":
        return f"Tokens were counted with the tokenizer of {figures.tokenizer}."
    return (f"Token counts are estimates: UTF-8 bytes of each record's text ÷ {ESTIMATE_BYTES_PER_TOKEN}, rounded up "
            "(a usual ratio for English text and source code with BPE tokenizers), because no local copy of the "
            "base model's tokenizer was configured.")


def _opt_out_text(crawled: list[Source], facts: Facts | None, records: int) -> str:
    """What the crawler declares it honours (the provider's word), then what the stored evidence shows."""
    if not crawled:
        return "No data was crawled by or for the provider."
    declared = sorted({o for s in crawled if s.crawler for o in s.crawler.opt_outs})
    tokens = sorted({robots_token(s.crawler.name) for s in crawled if s.crawler})
    facts = facts or Facts({s.id: None for s in crawled}, {s.id: False for s in crawled})
    return (f"The provider declares that its crawler honoured {', '.join(declared)} during collection. "
            + optouts_text(facts, tokens, records))


def _citation(provider: str, adapter: Adapter, version: str, date: dt.date) -> str:
    key = adapter.name.replace("-", "_") + "_" + version.replace(".", "_")
    return (f"@misc{{{key},\n  title  = {{{adapter.name} v{version}}},\n  author = {{{provider}}},\n"
            f"  year   = {{{date.year}}},\n  url    = {{https://huggingface.co/{adapter.hub_repo}}}\n}}")


def _hub_metadata(adapter: Adapter, used: list[Source], run: RunFacts) -> dict[str, object]:
    """The Hub's conventions for an adapter: `license` is the adapter's own, as declared (the base model's
    is its own card's); `library_name` names the format at the repo's root (PEFT's when an exact PEFT form
    exists, else mlx-lm's); the other format is a tag, as the Hub reads a library from tags."""
    from kiki_bot.core.licences import hub_license

    lic, name = hub_license(adapter.license)
    datasets = sorted({d for s in used if (d := s.hub_dataset_id)})
    meta: dict[str, object] = {
        "license": lic,
        "base_model": adapter.base_model.id,
        "base_model_relation": "adapter",
        "library_name": "peft" if run.peft_sha256 else "mlx",
        "pipeline_tag": adapter.pipeline_tag,
        "language": sorted(set(adapter.languages)),
        "tags": [*(["peft", "transformers"] if run.peft_sha256 else []), "mlx", "lora",
                 f"base_model:adapter:{adapter.base_model.id}", "eu-ai-act", "training-data-summary", *adapter.tags],
        "datasets": datasets,
    }
    if name:
        meta["license_name"] = name
    return meta
