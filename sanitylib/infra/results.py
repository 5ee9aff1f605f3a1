"""Where chapters write their numbers: tidy CSV files under ``results/``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

__all__ = ["results_dir", "write_table"]


def results_dir(chapter: str | None = None) -> Path:
    """Where chapters write their tidy CSV files: ``$SANITYLIB_RESULTS`` or ``./results``."""
    root = Path(os.environ.get("SANITYLIB_RESULTS") or "results")
    path = root / chapter if chapter else root
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_table(table: pd.DataFrame, chapter: str, name: str) -> Path:
    """Write ``table`` as ``results/<chapter>/<name>.csv`` (one header row, no index)."""
    path = results_dir(chapter) / f"{name}.csv"
    table.to_csv(path, index=False)
    return path
