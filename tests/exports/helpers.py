"""Run an export into a temporary folder and read it back."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from evalhub.exports.options import ExportOptions, pseudonym
from evalhub.exports.services import ExportSummary, export_to_path


def export(world, tmp_path: Path, fmt: str, name: str | None = None, **options
           ) -> tuple[Path, ExportSummary]:
    suffix = {"dpo-jsonl": "jsonl", "raw-csv": "csv"}.get(fmt, "parquet")
    if options.get("bundle") == "zip":
        suffix = "zip"
    path = tmp_path / (name or f"out.{suffix}")
    summary = export_to_path(campaign=world.campaign, options=ExportOptions(format=fmt, **options),
                             output=path)
    return path, summary


def read(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "dpo-jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        return pd.DataFrame([json.loads(line) for line in lines])
    if fmt == "raw-csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


def alias(world, user) -> str:
    return pseudonym(campaign_id=world.campaign.pk, user_id=user.pk)
