"""What an export contains: its format and the filters that pick its rows.

``ExportOptions`` is shared by ``manage.py export_preferences`` and the export API, so both
accept exactly the same options with the same defaults (see docs/exports.md).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.conf import settings

from evalhub.campaigns.models import Criterion
from evalhub.core.errors import EvalHubError

DPO_JSONL = "dpo-jsonl"
PICKAPIC_PARQUET = "pickapic-parquet"
RAW_CSV = "raw-csv"
RAW_PARQUET = "raw-parquet"
FORMATS = (DPO_JSONL, PICKAPIC_PARQUET, RAW_CSV, RAW_PARQUET)
RAW_FORMATS = (RAW_CSV, RAW_PARQUET)

# File name of the data file inside a bundle, and its extension when written alone.
DATA_FILE_NAMES = {
    DPO_JSONL: "preferences.jsonl",
    PICKAPIC_PARQUET: "preferences.parquet",
    RAW_CSV: "judgments.csv",
    RAW_PARQUET: "judgments.parquet",
}
CONTENT_TYPES = {
    DPO_JSONL: "application/x-ndjson",
    PICKAPIC_PARQUET: "application/vnd.apache.parquet",
    RAW_CSV: "text/csv; charset=utf-8",
    RAW_PARQUET: "application/vnd.apache.parquet",
}

AGGREGATE_JUDGMENT = "judgment"
AGGREGATE_PAIR = "pair"
AGGREGATES = (AGGREGATE_JUDGMENT, AGGREGATE_PAIR)
BUNDLES = ("zip", "folder")
PSEUDONYM_HEX_CHARS = 16


class UnknownFormat(EvalHubError):
    """The requested export format does not exist."""


@dataclass(frozen=True)
class ExportOptions:
    """Format and filters of one export.

    ``include_ties`` / ``include_both_bad`` default per format (``None``): raw formats keep
    both, Pick-a-Pic keeps ties (labels 0.5/0.5) and drops both-bad, DPO drops both (a DPO row
    needs a chosen and a rejected image; asking DPO for ties is an error).
    """

    format: str
    aggregate: str = AGGREGATE_JUDGMENT
    criteria: tuple[str, ...] = ()  # empty: every criterion
    prompt_category: str = ""
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    include_ties: bool | None = None
    include_both_bad: bool | None = None
    min_gold_accuracy: float | None = None
    include_excluded: bool = False
    min_agreement: float | None = None
    include_metric_judges: bool = False
    include_gold: bool = False
    raw_usernames: bool = False
    image_bytes: bool = True  # Pick-a-Pic only: jpg_0/jpg_1 hold bytes, else references
    base_url: str = ""
    bundle: str = ""  # "", "zip" or "folder"
    batch_size: int = 10_000
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise UnknownFormat(f"Unknown export format {self.format!r}; "
                                f"expected one of {', '.join(FORMATS)}.")
        if self.aggregate not in AGGREGATES:
            raise EvalHubError(f"Unknown aggregation {self.aggregate!r}; "
                               f"expected one of {', '.join(AGGREGATES)}.")
        if self.aggregate == AGGREGATE_PAIR and self.format in RAW_FORMATS:
            raise EvalHubError("Raw exports have one row per judgment; aggregate by pair "
                               "with dpo-jsonl or pickapic-parquet.")
        unknown = [c for c in self.criteria if c not in Criterion.values]
        if unknown:
            raise EvalHubError(f"Unknown criteria {unknown}; expected some of "
                               f"{Criterion.values}.")
        if self.format == DPO_JSONL and (self.include_ties or self.include_both_bad):
            raise EvalHubError("DPO rows need a chosen and a rejected image: ties and both-bad "
                               "votes cannot be exported as DPO (use pickapic-parquet or raw).")
        for name in ("min_gold_accuracy", "min_agreement"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise EvalHubError(f"{name} must be between 0 and 1.")
        if self.since and self.until and self.since >= self.until:
            raise EvalHubError("since must be before until.")
        if self.bundle not in ("", *BUNDLES):
            raise EvalHubError(f"Unknown bundle {self.bundle!r}; expected zip or folder.")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise EvalHubError("base_url must be an absolute http(s) URL.")
        if not 1 <= self.batch_size <= 1_000_000:
            raise EvalHubError("batch_size must be between 1 and 1,000,000.")

    @property
    def keep_ties(self) -> bool:
        if self.include_ties is not None:
            return self.include_ties
        return self.format != DPO_JSONL

    @property
    def keep_both_bad(self) -> bool:
        if self.include_both_bad is not None:
            return self.include_both_bad
        return self.format in RAW_FORMATS

    def describe(self) -> dict:
        """The options as JSON-ready values, with the per-format defaults resolved."""
        data = asdict(self)
        data.pop("extra")
        data["include_ties"] = self.keep_ties
        data["include_both_bad"] = self.keep_both_bad
        for key in ("since", "until"):
            data[key] = data[key].isoformat() if data[key] else None
        data["criteria"] = list(self.criteria)
        return data


def pseudonym(*, campaign_id: int, user_id: int) -> str:
    """HMAC-SHA256(SECRET_KEY, "<campaign id>:<user id>"), first 16 hex characters.

    Stable within a campaign (the same annotator gets the same pseudonym in every export of
    it), unlinkable across campaigns, and not reversible without the server's SECRET_KEY.
    """
    digest = hmac.new(settings.SECRET_KEY.encode(), f"{campaign_id}:{user_id}".encode(),
                      hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_HEX_CHARS]
