"""Findings at a glance: each claim of the two papers next to the number this book measured.

Everything here is read from the tidy CSV files the chapters wrote under ``results/``; no number
is typed. A claim whose chapter has not run is left out, never guessed. Where a chapter measured
a ceiling (:mod:`sanitylib.experiments.ceiling`), the claim is also read on the random-to-ceiling
scale (column ``on the scale``), beside the strict interval verdict.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sanitylib.methods import text
from sanitylib.methods.saliency import LABELS

__all__ = ["CHAPTERS", "findings_table"]

#: Results folder -> the chapter (executed notebook) that wrote it.
CHAPTERS = {"models": "01_models", "cascading": "02_cascading",
            "data_randomization": "04_data_randomization",
            "input_multiplier": "07_input_multiplier", "text": "08_text"}
#: The paper's verdict -> the verdict this book gives when it agrees.
EXPECTED = {"changes": "like random maps", "barely changes": "still similar",
            "keeps the input's structure": "still similar"}
#: The paper's verdict -> the random-to-ceiling scale's verdict when it agrees.
EXPECTED_ON_SCALE = {"changes": "changes", "barely changes": "still similar",
                     "keeps the input's structure": "still similar"}
#: Kokhlikyan et al. (Fig. 3, Section 3.2): token importances of both IG forms are unrelated to
#: the trained model's from the first randomized block (the classifier) on.
TEXT_METHODS = ("ig_global", "ig_local")


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


def _on_scale(position: float, verdict: str) -> str:
    return f"; {position:.0%} of the way from random maps to the ceiling: {verdict}"


def _verdict_rows(table: pd.DataFrame, test: str, folder: str) -> list[dict[str, object]]:
    rows = []
    for r in table[table.metric == "spearman_abs"].to_dict("records"):
        scaled = pd.notna(r.get("position"))
        rows.append({
            "claim": f"{test}: {LABELS.get(r['method'], r['method'])} {r['paper']} "
                     f"({r['model'].upper()} on {r['dataset']})",
            "measured": f"Spearman (abs.) {r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}] "
                        f"against random maps up to {r['random_high']:.2f}: {r['verdict']}"
                        + (_on_scale(r["position"], r["on the scale"]) if scaled else ""),
            "agrees": r["verdict"] == EXPECTED[r["paper"]],
            "on the scale": r["on the scale"] == EXPECTED_ON_SCALE[r["paper"]] if scaled else None,
            "folder": folder})
    return rows


def _text_rows(table: pd.DataFrame) -> list[dict[str, object]]:
    """The text claims, read on the scale only (the text chapter has no interval verdict)."""
    rows = []
    cosine = table[(table.metric == "cosine") & table.method.isin(TEXT_METHODS)
                   & (table.statistic == "median")]
    for which, step in (("the classifier", cosine.step.min()), ("every block", cosine.step.max())):
        for r in cosine[cosine.step == step].to_dict("records"):
            changes = r["verdict"] == "changes"
            rows.append({
                "claim": f"Text (Kokhlikyan et al., Fig. 3): {text.LABELS[r['method']]}'s token "
                         f"importance changes once {which} is randomized",
                "measured": f"median cosine {r['value']:.2f} (random maps {r['floor']:.2f}, ceiling "
                            f"{r['ceiling']:.2f})" + _on_scale(r["position"], r["verdict"]),
                "agrees": changes, "on the scale": changes, "folder": "text"})
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
    """One row per claim: the claim, what this book measured, whether they agree (by the
    chapter's own verdict, and on the random-to-ceiling scale where a ceiling was measured), and
    the chapter to read, from the CSV files under ``root`` (the ``results/`` folder)."""
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
    if (table := _read(root, "text", "scaled")) is not None:
        rows += _text_rows(table)
    result = pd.DataFrame(rows, columns=["claim", "measured", "agrees", "on the scale", "folder"])
    words = {True: "agrees", False: "differs"}
    result["agrees"] = result["agrees"].map(words)
    result["on the scale"] = result["on the scale"].map(words).fillna("no ceiling")
    result["chapter"] = result.pop("folder").map(CHAPTERS)
    return result
