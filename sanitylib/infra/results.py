"""Where chapters write their numbers: the ``results/`` folder (its tables are declared in
:mod:`sanitylib.experiments.tables`)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["results_dir"]


def results_dir(chapter: str | None = None) -> Path:
    """Where chapters write their tidy CSV files: ``$SANITYLIB_RESULTS`` or ``./results``."""
    root = Path(os.environ.get("SANITYLIB_RESULTS") or "results")
    path = root / chapter if chapter else root
    path.mkdir(parents=True, exist_ok=True)
    return path
