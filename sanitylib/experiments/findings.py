"""Findings at a glance: each claim of the two papers next to the number this book measured.

Everything here is read from the tidy CSV files the chapters wrote under ``results/``; no number
is typed. A claim whose chapter has not run is left out, never guessed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sanitylib.methods.saliency import LABELS

__all__ = ["CHAPTERS", "findings_table"]

#: Results folder -> the chapter (executed notebook) that wrote it.
CHAPTERS = {"models": "01_models", "cascading": "02_cascading",
            "data_randomization": "04_data_randomization",
            "input_multiplier": "07_input_multiplier"}
#: The paper's verdict -> the verdict this book gives when it agrees.
EXPECTED = {"changes": "like random maps", "barely changes": "still similar",
            "keeps the input's structure": "still similar"}


def _read(root: Path, folder: str, name: str) -> pd.DataFrame | None:
    path = root / folder / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else None


def _accuracy_rows(table: pd.DataFrame) -> list[dict[str, object]]:
    rows = []
    for r in table.itertuples():
        where = f"{r.architecture.upper()} on {r.dataset}"
        if r.labels == "true" and pd.notna(r.paper_test_accuracy):
            paper = float(r.paper_test_accuracy)
            rows.append({"claim": f"{where} trained on true labels reaches {paper:.1%} test "
                         "accuracy", "measured": f"{r.test_accuracy:.1%} ({r.source})",
                         "agrees": r.test_accuracy >= paper - 0.01, "folder": "models"})
        elif r.labels == "permuted":
            rows.append({"claim": f"{where} memorises permuted labels (> 95 % training "
                         "accuracy) with test accuracy at chance",
                         "measured": f"training {r.train_accuracy:.1%}, test "
                         f"{r.test_accuracy:.1%}",
                         "agrees": r.train_accuracy > 0.95 and r.test_accuracy < 0.2,
                         "folder": "models"})
    return rows


def _verdict_rows(table: pd.DataFrame, test: str, folder: str) -> list[dict[str, object]]:
    rows = []
    for r in table[table.metric == "spearman_abs"].itertuples():
        rows.append({
            "claim": f"{test}: {LABELS.get(r.method, r.method)} {r.paper} "
                     f"({r.model.upper()} on {r.dataset})",
            "measured": f"Spearman (abs.) {r.mean:.2f} [{r.low:.2f}, {r.high:.2f}] against "
                        f"random maps up to {r.random_high:.2f}: {r.verdict}",
            "agrees": r.verdict == EXPECTED[r.paper], "folder": folder})
    return rows


def _multiplier_rows(table: pd.DataFrame) -> list[dict[str, object]]:
    rows = []
    for r in table[table.metric == "ssim"].itertuples():
        rows.append({"claim": f"Input multiplier: after randomization, {r[2]} (with the "
                     f"multiplier) stays more similar than {r[1]} (Kokhlikyan et al., Fig. 1)",
                     "measured": f"SSIM {r.global_mean:.2f} against {r.local_mean:.2f}",
                     "agrees": r.gap > 0, "folder": "input_multiplier"})
    return rows


def findings_table(root: Path) -> pd.DataFrame:
    """One row per claim: the claim, what this book measured, whether they agree, and the
    chapter to read, from the CSV files under ``root`` (the ``results/`` folder)."""
    rows: list[dict[str, object]] = []
    if (table := _read(root, "models", "accuracy")) is not None:
        rows += _accuracy_rows(table)
    if (table := _read(root, "cascading", "verdict")) is not None:
        rows += _verdict_rows(table[table.order == "cascading"], "Cascading randomization",
                              "cascading")
    if (table := _read(root, "data_randomization", "verdict")) is not None:
        rows += _verdict_rows(table, "Data randomization", "data_randomization")
    if (table := _read(root, "input_multiplier", "local_global_gap")) is not None:
        rows += _multiplier_rows(table)
    result = pd.DataFrame(rows, columns=["claim", "measured", "agrees", "folder"])
    result["agrees"] = result["agrees"].map({True: "agrees", False: "differs"})
    result["chapter"] = result.pop("folder").map(CHAPTERS)
    return result
