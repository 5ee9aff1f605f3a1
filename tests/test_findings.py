"""Findings at a glance: claims read from the chapters' CSV files, with the scale beside the
strict verdict."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sanitylib.experiments.findings import findings_table


def write(root: Path, folder: str, name: str, rows: list[dict[str, object]]) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / folder / f"{name}.csv", index=False)


def verdict(method: str, paper: str, verdict: str, **scale: object) -> dict[str, object]:
    return {"model": "cnn", "dataset": "mnist", "order": "cascading", "method": method,
            "metric": "spearman_abs", "mean": 0.5, "low": 0.4, "high": 0.6, "random_high": 0.1,
            "verdict": verdict, "paper": paper, **scale}


def test_no_results_gives_no_claims(tmp_path):
    table = findings_table(tmp_path)
    assert table.empty
    assert list(table.columns) == ["claim", "measured", "agrees", "on the scale", "chapter"]


def test_strict_and_scale_verdicts_are_read_side_by_side(tmp_path):
    write(tmp_path, "cascading", "verdict", [
        verdict("gradient", "changes", "like random maps", position=0.1, **{"on the scale": "changes"}),
        verdict("guided_backprop", "barely changes", "partly", position=0.9,
                **{"on the scale": "still similar"}),
        {**verdict("gradient", "changes", "partly"), "metric": "ssim"},  # not the claim's metric
    ])
    table = findings_table(tmp_path).set_index("claim")
    assert len(table) == 2
    first = table.loc["Cascading randomization: Gradient changes (CNN on mnist)"]
    assert (first.agrees, first["on the scale"]) == ("agrees", "agrees")
    assert "10% of the way from random maps to the ceiling: changes" in first.measured
    second = table.loc["Cascading randomization: Guided BackProp barely changes (CNN on mnist)"]
    assert (second.agrees, second["on the scale"]) == ("differs", "agrees")
    assert set(table.chapter) == {"02_cascading"}


def test_verdicts_without_a_ceiling_say_so(tmp_path):
    write(tmp_path, "data_randomization", "verdict", [verdict("gradient", "changes", "partly")])
    row = findings_table(tmp_path).iloc[0]
    assert (row.agrees, row["on the scale"]) == ("differs", "no ceiling")
    assert "ceiling" not in row.measured


def test_text_claims_after_the_first_and_the_last_block(tmp_path):
    rows = [{"step": step, "block": block, "method": method, "metric": metric,
             "statistic": statistic, "value": value, "floor": 0.0, "ceiling": 1.0,
             "position": value, "verdict": v}
            for step, block, value, v in ((1, "classifier", 0.8, "still similar"),
                                          (2, "embeddings", 0.05, "changes"))
            for method in ("ig_global", "ig_local", "gradient") for metric in ("cosine", "spearman")
            for statistic in ("median", "mean")]
    write(tmp_path, "text", "scaled", rows)
    table = findings_table(tmp_path)
    assert len(table) == 4  # two IG forms x (first block, every block); cosine medians only
    assert set(table.chapter) == {"08_text"}
    first = table[table.claim.str.contains("the classifier")]
    last = table[table.claim.str.contains("every block")]
    assert set(first.agrees) == {"differs"} and set(last.agrees) == {"agrees"}
    assert last.measured.str.contains("median cosine 0.05 \\(random maps 0.00, ceiling 1.00\\)").all()
