"""Findings at a glance: the matrix, its meaning and the chapters' claims, from hand-made claims."""

from __future__ import annotations

import json

from sanitylib.experiments.claims import claims_frame
from sanitylib.experiments.findings import (
    chapter_titles,
    matrix_html,
    meaning,
    missing_claims,
    verdict_matrix,
)


def claim(chapter: str, model: str, method: str, verdict: str, test: str = "Cascading randomization",
          setting: str = "class: recomputed", estimate: float = 0.1) -> dict[str, object]:
    return {"claim": f"{method} on {model}", "source": "paper", "chapter": chapter, "test": test,
            "model": model, "dataset": "mnist", "method": method, "metric": "spearman_abs",
            "setting": setting, "statistic": "final", "n_images": 16, "n_seeds": 3,
            "estimate": estimate, "low": estimate - 0.05, "high": estimate + 0.05,
            "boundary": 0.1, "expected": "changes", "verdict": verdict, "reason": ""}


CLAIMS = claims_frame([
    claim("02_cascading", "cnn", "gradient", "agrees"),
    claim("02_cascading", "mlp", "gradient", "differs"),
    claim("02_cascading", "cnn", "guided_backprop", "inconclusive"),
    claim("11_after_the_paper", "cnn", "gradient", "differs", setting="class: fixed",
          estimate=0.4),
    {**claim("01_models", "cnn", "", "agrees", test="Training"), "metric": "accuracy"},
])


def test_matrix_one_cell_per_method_and_test() -> None:
    matrix = verdict_matrix(CLAIMS)
    assert len(matrix) == 3  # accuracy claims have no method; two settings share a cell
    cell = matrix[(matrix.model == "cnn") & (matrix.method == "gradient")].iloc[0]
    assert cell.verdict == "mixed" and cell.detail == "1 agrees, 1 differs"
    assert cell.chapters == ["02_cascading", "11_after_the_paper"]
    assert cell.n == "16 images × 3 seeds"


def test_matrix_html_colours_and_links() -> None:
    page = matrix_html(CLAIMS, {"02_cascading": "Cascading randomization"}, {"gradient": "Gradient"})
    assert page.count("<table") == 2 and "<h3>CNN on MNIST</h3>" in page
    assert "href='02_cascading.html'" in page and "#e6e6e6" in page and "#fbeab0" in page


def test_meaning_is_computed_from_the_claims() -> None:
    text = meaning(CLAIMS, {"gradient": "Gradient"})
    assert ("**5 claims** on 2 model and dataset pairs: 2 agree, 2 differ, 1 is inconclusive."
            in text)
    assert "**Gradient** (paper: changes): agrees on CNN on MNIST; differs on MLP on MNIST." in text
    assert "no two claims" in text  # the fixed-class claim is a named setting, not a contradiction


def test_meaning_names_contradictions() -> None:
    clash = claims_frame([claim("02_cascading", "cnn", "gradient", "agrees"),
                          claim("08_text", "cnn", "gradient", "differs")])
    assert "1 pair of claims contradict each other" in meaning(clash, {})


def test_chapter_titles_and_missing_claims(tmp_path) -> None:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "02_cascading.ipynb").write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "source": ["# Cascading randomization\n", "text"]}]}))
    assert chapter_titles(notebooks) == {"02_cascading": "Cascading randomization"}
    results = tmp_path / "results"
    for folder in ("cascading", "edges", "findings", "check", "smoothness"):
        (results / folder).mkdir(parents=True)
        (results / folder / "summary.csv").write_text("mean\n")
    (results / "cascading" / "claims.csv").write_text("claim\n")
    (results / "input_multiplier").mkdir()
    (results / "input_multiplier" / "claims.csv").write_text("claim\n")
    assert missing_claims(results) == ["edges"]
