"""The template's own rules, checked on a rendered README: labels verbatim and in order, Yes/No boxes
exactly where the template has them, dates in the template's formats, Hub metadata the Hub accepts."""

from __future__ import annotations

import re

from kiki_bot.core.licences import HUB_LICENSES

# A number as typed: 2850, 2,850, 2 850 (a space, narrow or no-break); digits inside a word (v5, 0x29) are not one.
_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:[, \u202f\u00a0]\d{3})+(?![\w,]*\d)|(?<![\w.,])\d+(?![\w]|[.,]\d)")

YES_NO = "☒ Yes ☐ No", "☐ Yes ☒ No"

# (label, has a Yes/No box) in template order; labels are the Commission template's own words.
LABELS: list[tuple[str, bool]] = [
    ("Version of the Summary:", False),
    ("Last update:", False),
    ("1.1 Provider identification", False),
    ("Provider name and contact details:", False),
    ("Authorised representative name and contact details:", False),
    ("1.2 Model identification", False),
    ("Versioned model name(s):", False),
    ("Model dependencies:", False),
    ("Date of placement of the model on the Union market:", False),
    ("1.3 Modalities, overall training data size and other characteristics", False),
    ("Latest date of data acquisition/collection for model training:", False),
    ("Description of the linguistic characteristics of the overall training data:", False),
    ("Other relevant characteristics of the overall training data:", False),
    ("Additional comments (optional):", False),
    ("2.1 Publicly available datasets", False),
    ("Have you used publicly available datasets to train the model?", True),
    ("If yes, specify the modality(ies) of the content covered by the datasets concerned:", False),
    ("List of large publicly available datasets:", False),
    ("General description of other publicly available datasets not listed above:", False),
    ("Additional comments (optional):", False),
    ("2.2.1 Datasets commercially licensed by rightsholders or their representatives", False),
    ("Have you concluded transactional commercial licensing agreement(s) with rightsholder(s) or with their "
     "representatives?", True),
    ("If yes, specify the modality(ies) of the content covered by the datasets concerned:", False),
    ("2.2.2 Private datasets obtained from other third parties", False),
    ("Have you obtained private datasets from third parties that are not licensed as described in Section 2.2.1, "
     "such as data obtained from providers of private databases, or data intermediaries?", True),
    ("If yes, specify the modality(ies) of the content covered by the datasets concerned:", False),
    ("If publicly known, list private datasets obtained from other third parties:", False),
    ("General description of non-publicly known private datasets obtained from third parties:", False),
    ("Additional comments (optional):", False),
    ("2.3 Data crawled and scraped from online sources", False),
    ("Were crawlers used by the provider or on behalf of?", True),
    ("If yes, specify crawler name(s)/identifier(s):", False),
    ("Purposes of the crawler(s):", False),
    ("General description of crawler behaviour:", False),
    ("Period of data collection:", False),
    ("Comprehensive description of the type of content and online sources crawled:", False),
    ("Type of modality covered:", False),
    ("Summary of the most relevant domain names crawled:", False),
    ("Additional comments (optional):", False),
    ("2.4 User data", False),
    ("Was data from user interactions with the AI model (e.g. user input and prompts) used to train the model?", True),
    ("Was data collected from user interactions with the provider's other services or products used to train the "
     "model?", True),
    ("2.5 Synthetic data", False),
    ("Was synthetic AI-generated data created by the provider or on their behalf to train the model?", True),
    ("2.6 Other sources of data", False),
    ("Have data sources other than those described in Sections 2.1 to 2.5 been used to train the model?", True),
    ("3.1 Respect of reservation of rights from text and data mining exception or limitation", False),
    ("Are you a Signatory to the Code of Practice for general-purpose AI models that includes commitments to "
     "respect reservations of rights from the TDM exception or limitation?", True),
    ("Describe the measures implemented before model training to respect reservations of rights from the TDM "
     "exception or limitation before and during data collection, including the opt-out protocols and solutions "
     "honoured by the provider or, as applicable, by third parties from which datasets have been obtained:", False),
    ("Additional comments (optional):", False),
    ("3.2 Removal of illegal content", False),
    ("General description of measures taken:", False),
    ("3.3 Other information (optional)", False),
    ("Other relevant information about data processing (optional):", False),
]

_LINE_VALUE = {
    # The template's DD/MM/YY, with the date spelled out beside the two-digit year.
    "Last update:": (re.compile(r"^\d{2}/\d{2}/\d{2} \(\d{1,2} [A-Z][a-z]+ \d{4}\)$"), "DD/MM/YY (D Month YYYY)"),
    "Latest date of data acquisition/collection for model training:": (re.compile(r"^\d{2}/\d{4}\b"), "MM/YYYY"),
    "Period of data collection:": (re.compile(r"^(From \d{2}/\d{4} to \d{2}/\d{4}|not applicable)$"),
                                   "From MM/YYYY to MM/YYYY"),
}


def _body_lines(readme: str) -> list[str]:
    parts = readme.split("\n---\n", 1)
    return (parts[1] if readme.startswith("---\n") and len(parts) == 2 else readme).splitlines()


def _label_of(line: str) -> tuple[str, str] | None:
    """(label, rest of line) for a `**label** value` line or a `### x.y title` heading."""
    if line.startswith("**") and ("** " in line or line.endswith("**")):
        label, _, rest = line[2:].partition("**")
        return label, rest.strip()
    m = re.match(r"^#{2,4} (\d\.\d(?:\.\d)? .+)$", line)
    return (m.group(1), "") if m else None


def check_body(readme: str) -> list[str]:
    """Every template rule the rendered body breaks, one sentence each."""
    problems: list[str] = []
    found = [lv for line in _body_lines(readme) if (lv := _label_of(line))]
    expected_labels = [label for label, _ in LABELS]
    seen = [label for label, _ in found if label in set(expected_labels)]
    if seen != expected_labels:
        for i, (want, got) in enumerate(zip(expected_labels, seen + [None] * len(expected_labels), strict=False)):
            if want != got:
                problems.append(f"template label #{i + 1} should be {want!r}, found {got!r} (labels verbatim, in order)")
                break
    box = dict(LABELS)
    for label, rest in found:
        if label not in box:
            continue
        has_box = any(rest.startswith(y) for y in YES_NO)
        if box[label] and not has_box:
            problems.append(f"{label!r} needs exactly one of Yes/No")
        if not box[label] and any(y in rest for y in YES_NO):
            problems.append(f"{label!r} has a Yes/No box that the template does not have")
        if label in _LINE_VALUE:
            pattern, form = _LINE_VALUE[label]
            if not pattern.match(rest):
                problems.append(f"{label!r} must be in the template's format {form}, found {rest!r}")
    version = next((rest for label, rest in found if label == "Version of the Summary:"), "")
    if "previous versions" not in version and "first version" not in version:
        problems.append("'Version of the Summary:' must link every previous version (or say it is the first)")
    return problems


def check_metadata(meta: dict) -> list[str]:
    """What the Hub would refuse in the YAML block (licence ids, language codes, ids, relation)."""
    problems = []
    lic = meta.get("license")
    if lic not in HUB_LICENSES:
        problems.append(f"metadata `license`: {lic!r} is not a Hub licence id")
    if lic == "other" and not meta.get("license_name"):
        problems.append("metadata `license: other` needs `license_name`")
    for lang in meta.get("language") or []:
        if not re.fullmatch(r"[a-z]{2,3}", str(lang)):
            problems.append(f"metadata `language`: {lang!r} is not an ISO 639 code")
    if not meta.get("language"):
        problems.append("metadata `language` is empty")
    for key in ("base_model",):
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", str(meta.get(key, ""))):
            problems.append(f"metadata `{key}` must be a Hub model id")
    for ds in meta.get("datasets") or []:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", str(ds)):
            problems.append(f"metadata `datasets`: {ds!r} is not a Hub dataset id")
    if meta.get("base_model_relation") != "adapter":
        problems.append("metadata `base_model_relation` must be `adapter`")
    if meta.get("library_name") not in ("mlx", "peft"):  # peft: the exact PEFT form is at the repository's root
        problems.append("metadata `library_name` must be `mlx` or `peft`")
    return problems


def figures_of(sources: dict[str, tuple[int, int]]) -> dict[int, str]:
    """A version's computed figures (records and tokens, per source and in all), each with what it counts."""
    out: dict[int, str] = {}
    for sid, (records, tokens) in sources.items():
        out.setdefault(records, f"records of {sid}")
        out.setdefault(tokens, f"tokens of {sid}")
    out.setdefault(sum(r for r, _ in sources.values()), "records in all")
    out.setdefault(sum(t for _, t in sources.values()), "tokens in all")
    return out


def stale_figures(typed: list[tuple[str, str]], earlier: list[tuple[str, dict[int, str]]],
                  current: dict[int, str]) -> list[str]:
    """Typed text that states a figure of an earlier version which the data no longer gives: written once, it
    went stale when the data changed (the computed sections carry the figures)."""
    problems = []
    for where, text in typed:
        for m in _NUMBER.finditer(text):
            # "2 850" groups with a space as the template writes "1 000"; "20 100-line" may also state 20
            readings = [m.group(), *m.group().split(" ")] if " " in m.group() else [m.group()]
            found = next(((written, version, figures[number]) for written in readings
                          if (number := int(re.sub(r"\D", "", written))) not in current
                          for version, figures in earlier if number in figures), None)
            if found:
                problems.append(f"{where}: states {found[0]!r}, the {found[2]} of v{found[1]}; the data has "
                                "changed since: leave figures to the sections computed from it")
    return problems
