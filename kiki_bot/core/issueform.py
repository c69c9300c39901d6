"""The Markdown GitHub renders from the removal-request issue form → a validated `RemovalRequest`.

The body is attacker text: parsing never raises, never widens, and answers anything unusable with
field-by-field errors (`FieldError`) whose messages are bot-authored (they never echo the body), so they can
be posted back as they are. Sections are `### <label>` headings (DESIGN.md section 3), found in any order.
"""

from __future__ import annotations

import hashlib
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from kiki_bot.core.selectors import InvalidSelector, Selector, parse_selector

CONTENT = "Content to remove"
RELATIONSHIP = "Your relationship to the content"
REASON = "Reason"
DETAILS = "Additional details"
CONFIRMATION = "Confirmation"
BODY = "Issue body"
"""`FieldError.field` for problems with the body as a whole; the other fields are the form's labels."""

Relationship = Literal["I am the author or rightsholder", "I act on behalf of the rightsholder", "Other"]
Reason = Literal[
    "Text and data mining opt-out (DSM Directive Art. 4(3))",
    "Copyright",
    "Personal data (GDPR Art. 17)",
    "Other",
]
CONFIRMATION_TEXT = "I confirm that the information in this request is accurate"
NO_RESPONSE = "_No response_"
MAX_BODY_BYTES = 64 * 1024
GITHUB_BODY_LIMIT = 65_536
"""The most characters GitHub takes in an issue's or a comment's body (over it, its API answers 422 "body is too
long"): what the bot writes there must fit."""
MAX_IDENTIFIERS = 200
_ORDER = (BODY, CONTENT, RELATIONSHIP, REASON, DETAILS, CONFIRMATION)
_LABELS = {" ".join(label.casefold().split()): label for label in _ORDER[1:]}


class FieldError(BaseModel):
    """One problem with one form field (a label, or `BODY`); `message` never quotes the body.

    `line` is set for identifier lines only: 1-based within the `Content to remove` answer, counting from its
    first non-blank line (inside the code fence, if the form renders one).
    """

    model_config = ConfigDict(frozen=True)

    field: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return (
            f"{self.field}, line {self.line}: {self.message}"
            if self.line
            else f"{self.field}: {self.message}"
        )


class SelectorLine(BaseModel):
    """A parsed identifier with where it was written (`raw` is untrusted: escape it before echoing)."""

    model_config = ConfigDict(frozen=True)

    line: int
    raw: str
    selector: Selector


class RemovalRequest(BaseModel):
    """A valid request; `body_sha256` pins the exact body triaged, so later edits cannot widen it."""

    model_config = ConfigDict(frozen=True)

    selectors: list[SelectorLine]
    relationship: Relationship
    reason: Reason
    details: str | None
    confirmed: Literal[True]
    body_sha256: str


def _sections(text: str) -> dict[str, list[list[str]]]:
    """Known label → the answer lines of each occurrence; unknown `###` headings stay inside the answer."""
    found: dict[str, list[list[str]]] = {}
    current: list[str] | None = None
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if len(line) - len(stripped) <= 3 and stripped.startswith("###") and stripped[3:4] in (" ", "\t"):
            label = _LABELS.get(" ".join(stripped[3:].casefold().split()))
            if label is not None:
                current = []
                found.setdefault(label, []).append(current)
                continue
        if current is not None:
            current.append(line.rstrip())
    return found


def _trim(lines: list[str]) -> list[str]:
    """Drop surrounding blank lines and the `_No response_` placeholder of an empty optional field."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    kept = lines[start:end]
    return [] if [s.strip() for s in kept] == [NO_RESPONSE] else kept


def _selector_lines(lines: list[str], errors: list[FieldError]) -> list[SelectorLine]:
    if len(lines) >= 2 and lines[0].strip().startswith("```") and lines[-1].strip() == "```":
        lines = lines[1:-1]  # the form may render the textarea as a code block
    numbered = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        errors.append(FieldError(field=CONTENT, line=None, message="required: one identifier per line"))
        return []
    if len(numbered) > MAX_IDENTIFIERS:
        errors.append(
            FieldError(
                field=CONTENT,
                line=None,
                message=f"{len(numbered)} identifiers; at most {MAX_IDENTIFIERS} per request (split it into several)",
            )
        )
        return []
    parsed = []
    for n, text in numbered:
        try:
            parsed.append(SelectorLine(line=n, raw=text, selector=parse_selector(text)))
        except InvalidSelector as exc:
            errors.append(FieldError(field=CONTENT, line=n, message=exc.problem))
    return parsed


def _choice(
    label: str, lines: list[str] | None, options: tuple[str, ...], errors: list[FieldError]
) -> str | None:
    """The dropdown answer when it is exactly one option (None: missing, already reported, or wrong)."""
    if lines is None:
        return None
    value = "\n".join(lines).strip()
    if value in options:
        return value
    listed = ", ".join(f"`{o}`" for o in options)
    problem = "required" if not value else "not one of the options"
    errors.append(FieldError(field=label, line=None, message=f"{problem}: choose exactly one of {listed}"))
    return None


def _confirmed(lines: list[str], errors: list[FieldError]) -> bool:
    boxes = {" ".join(line.split()) for line in lines}
    if {f"- [X] {CONFIRMATION_TEXT}", f"- [x] {CONFIRMATION_TEXT}"} & boxes:
        return True
    unticked = f"- [ ] {CONFIRMATION_TEXT}" in boxes
    message = (
        "the box must be ticked" if unticked else f"expected the ticked checkbox `- [X] {CONFIRMATION_TEXT}`"
    )
    errors.append(FieldError(field=CONFIRMATION, line=None, message=message))
    return False


def parse_removal_request(body: object) -> RemovalRequest | list[FieldError]:
    """Parse an issue body; a request only when every field is valid, else every error found (never empty)."""
    if not isinstance(body, str) or not body.strip():
        return [FieldError(field=BODY, line=None, message="empty: please use the removal-request form")]
    try:
        raw = body.encode("utf-8")
    except UnicodeEncodeError:
        return [FieldError(field=BODY, line=None, message="not valid UTF-8 text")]
    if len(raw) > MAX_BODY_BYTES:
        return [FieldError(field=BODY, line=None, message=f"larger than {MAX_BODY_BYTES // 1024} KiB")]
    sections = _sections(body.replace("\r\n", "\n").replace("\r", "\n"))
    if not sections:
        return [
            FieldError(
                field=BODY,
                line=None,
                message="not the removal-request form: no `### Content to remove` (and other) sections found",
            )
        ]
    errors: list[FieldError] = []
    answers: dict[str, list[str]] = {}
    for label in _LABELS.values():
        occurrences = sections.get(label, [])
        if len(occurrences) > 1:
            errors.append(
                FieldError(field=label, line=None, message=f"appears {len(occurrences)} times; expected once")
            )
        elif occurrences:
            answers[label] = _trim(occurrences[0])
        elif label != DETAILS:
            errors.append(FieldError(field=label, line=None, message="missing from the issue body"))
    selectors = _selector_lines(answers[CONTENT], errors) if CONTENT in answers else []
    relationship = _choice(RELATIONSHIP, answers.get(RELATIONSHIP), get_args(Relationship), errors)
    reason = _choice(REASON, answers.get(REASON), get_args(Reason), errors)
    confirmed = _confirmed(answers[CONFIRMATION], errors) if CONFIRMATION in answers else False
    if errors:
        return sorted(errors, key=lambda e: (_ORDER.index(e.field), e.line or 0))
    return RemovalRequest(
        selectors=selectors,
        relationship=relationship,
        reason=reason,
        details="\n".join(answers.get(DETAILS, [])) or None,
        confirmed=confirmed,
        body_sha256=hashlib.sha256(raw).hexdigest(),
    )
