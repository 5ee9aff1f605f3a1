"""Findings at a glance: every claim the chapters tested, per network a method x test matrix.

Everything here is read from the claims the chapters wrote (``results/<folder>/claims.csv``,
:mod:`sanitylib.experiments.claims`); no number or verdict is typed. A chapter that has not run
contributes nothing, and nothing is guessed for it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from sanitylib.experiments.claims import (
    DATASET_LABELS,
    MODEL_LABELS,
    VERDICTS,
    contradictions,
    count_verdicts,
    describe_n,
    without_map_settings,
)
from sanitylib.experiments.tables import result_tables

__all__ = ["COLOURS", "FINDINGS_CHAPTER", "TESTS_PER_TABLE", "chapter_titles", "matrix_html",
           "meaning", "missing_claims", "verdict_matrix"]

#: Background of each verdict in the matrix ("mixed": the cell's claims disagree).
COLOURS = {"agrees": "#d8efd3", "differs": "#f6cfc9", "inconclusive": "#e6e6e6",
           "mixed": "#fbeab0"}
#: The findings page: it collects the other chapters' claims.
FINDINGS_CHAPTER = "09_findings"


#: The book's notebooks (beside the library in a checkout).
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def chapter_titles(notebooks: Path = NOTEBOOKS) -> dict[str, str]:
    """Chapter id (notebook name) -> its title, the first ``# `` heading of the notebook."""
    titles = {}
    for path in sorted(Path(notebooks).glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            text = "".join(cell["source"])
            if cell["cell_type"] == "markdown" and text.startswith("# "):
                titles[path.stem] = text.splitlines()[0][2:].strip()
                break
    return titles


def missing_claims(root: Path | None = None) -> list[str]:
    """Chapters that wrote results under ``root`` (default: the results folder) but no claims
    table, by that table's folder (every chapter with results must state what they show)."""
    tables = [t for t in result_tables() if t.chapter != FINDINGS_CHAPTER]
    claims = {t.chapter: t for t in tables if t.name == "claims"}
    ran = {t.chapter for t in tables if t.path(root).exists()}
    return sorted(claims[c].folder if c in claims else c for c in ran
                  if c not in claims or not claims[c].path(root).exists())


def _cell(group: pd.DataFrame) -> dict[str, object]:
    verdicts = group["verdict"].value_counts()
    verdict = verdicts.index[0] if len(verdicts) == 1 else "mixed"
    counts = ", ".join(f"{verdicts[v]} {v}" for v in VERDICTS if v in verdicts)
    n = describe_n(int(group["n_images"].min()), int(group["n_seeds"].min()))
    return {"verdict": verdict, "detail": counts, "n": n,
            "chapters": list(dict.fromkeys(group["chapter"])),
            "claims": list(group["claim"])}


def verdict_matrix(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, dataset, method, test) with method-level claims: the verdict ("mixed"
    where the cell's claims disagree, e.g. under two settings), the counts, the smallest n, the
    chapters and the claims' words."""
    rows = claims[claims["method"].astype(str) != ""]
    cells = [{"model": m, "dataset": d, "method": method, "test": t, **_cell(g)}
             for (m, d, method, t), g in rows.groupby(["model", "dataset", "method", "test"],
                                                      sort=False)]
    return pd.DataFrame(cells, columns=["model", "dataset", "method", "test", "verdict",
                                        "detail", "n", "chapters", "claims"])


#: Test columns per table (with the method column, at most six columns on the page).
TESTS_PER_TABLE = 5


def _cell_html(cell: pd.Series, titles: Mapping[str, str]) -> str:
    links = " ".join(f"<a href='{ch}.html' title='{html.escape(titles.get(ch, ch))}'>"
                     f"{html.escape(ch.split('_')[0])}</a>" for ch in cell["chapters"])
    detail = "" if cell["verdict"] != "mixed" else f"<br>{cell['detail']}"
    return (f"<td style='background:{COLOURS[cell['verdict']]}' "
            f"title='{html.escape(' | '.join(cell['claims']))}'><b>{cell['verdict']}</b>{detail}"
            f"<br>{cell['n']} · {links}</td>")


def matrix_html(claims: pd.DataFrame, titles: Mapping[str, str],
                method_labels: Mapping[str, str]) -> str:
    """Per network, HTML tables of methods (rows) against tests (columns, at most
    :data:`TESTS_PER_TABLE` a table), each cell coloured by its verdict, with its n and links to
    the chapters that tested it."""
    matrix = verdict_matrix(claims)
    parts = []
    for (model, dataset), part in matrix.groupby(["model", "dataset"], sort=False):
        tests = list(dict.fromkeys(part["test"]))
        name = f"{MODEL_LABELS.get(model, model)} on {DATASET_LABELS.get(dataset, dataset)}"
        parts.append(f"<h3>{html.escape(name)}</h3>")
        for start in range(0, len(tests), TESTS_PER_TABLE):
            chunk = tests[start:start + TESTS_PER_TABLE]
            rows = part[part.test.isin(chunk)]
            head = "".join(f"<th>{html.escape(t)}</th>" for t in chunk)
            body = []
            for method in dict.fromkeys(rows["method"]):
                cells = []
                for test in chunk:
                    hit = rows[(rows.method == method) & (rows.test == test)]
                    cells.append("<td></td>" if hit.empty else _cell_html(hit.iloc[0], titles))
                body.append(f"<tr><th>{html.escape(method_labels.get(method, method))}</th>"
                            + "".join(cells) + "</tr>")
            parts.append("<table class='findings-matrix' style='table-layout:fixed;width:100%;"
                         "font-size:0.8em'>"
                         f"<tr><th>method</th>{head}</tr>{''.join(body)}</table>")
    return "\n".join(parts)


def meaning(claims: pd.DataFrame, method_labels: Mapping[str, str]) -> str:
    """What the claims mean, computed: the counts, per method where the paper's cascading
    verdict holds and where it does not (its own setting: the class recomputed after every step,
    each layer's initializer), and the cross-chapter consistency."""
    if claims.empty:
        return "No chapter has written claims yet."
    counts = claims["verdict"].value_counts()
    networks = claims[["model", "dataset"]].drop_duplicates()
    total = f"* **{len(claims)} claims** on {len(networks)} model and dataset pairs"
    lines = [f"{total}: {count_verdicts(counts)}."]
    # The paper's own setting: the class recomputed after every step, each layer's initializer.
    paper_setting = claims.setting.fillna("").astype(str).map(without_map_settings)
    central = claims[(claims.test == "Cascading randomization")
                     & (paper_setting == "class: recomputed")]
    for method, group in central.groupby("method", sort=False):
        by = {v: ", ".join(f"{MODEL_LABELS.get(m, m)} on {DATASET_LABELS.get(d, d)}"
                           for m, d in zip(group[group.verdict == v].model,
                                           group[group.verdict == v].dataset))
              for v in VERDICTS}
        said = "; ".join(f"{v} on {by[v]}" for v in VERDICTS if by[v])
        lines.append(f"* Cascading randomization, **{method_labels.get(method, method)}** "
                     f"(paper: {group['expected'].iloc[0]}): {said}.")
    clashes = contradictions(claims)
    lines.append("* Across chapters, " + (
        "no two claims about the same test, network, method, statistic and setting contradict "
        "each other." if clashes.empty else
        f"{len(clashes)} pair{'s' * (len(clashes) != 1)} of claims contradict each other: "
        + "; ".join(
            f"{r.test}, {r.model}, {method_labels.get(r.method, r.method)}: {r.chapter_a} "
            f"{r.estimate_a:.2f} ({r.verdict_a}) against {r.chapter_b} {r.estimate_b:.2f} "
            f"({r.verdict_b}), {r.why}" for r in clashes.itertuples()) + "."))
    return "\n".join(lines)
