"""A record's `_provenance` (DESIGN.md section 2) as a strict pydantic model: pure, so the selectors and the
matching read provenance without the record files (`kiki_bot.repo.records` streams and parses those)."""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from kiki_bot.core import licences
from kiki_bot.core.errors import found

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@lru_cache(maxsize=4096)
def iso_day(text: str) -> dt.date | None:
    """The date of a plain `YYYY-MM-DD` string (the record format's only date form), else None."""
    if not _DAY.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _json_date(value: Any) -> Any:
    day = iso_day(value) if isinstance(value, str) else None
    if day is None and not isinstance(value, dt.date):
        raise ValueError(f'expected an ISO date string such as "2025-10-02", got {found(value, "json")}')
    return day or value


class Provenance(BaseModel):
    """Where one record came from (DESIGN.md section 2). Strict: `"record_idx": "1"` is a mistake in the
    data, not a number; unknown keys are refused so typos surface."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    source: str = Field(min_length=1)
    license: licences.Expression
    record_idx: int = Field(ge=0)
    access_date: Annotated[dt.date, BeforeValidator(_json_date)]
    origin: str | None = None
    repo: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    path: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    upstream_id: str | int | None = None  # the row's id in the upstream dataset (its `id_field`), when drawn from one
