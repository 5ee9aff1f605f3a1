"""The chapter "After the paper": summaries, the floor-to-ceiling scale, the recommendation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sanitylib.experiments.after_the_paper import (
    book_tests,
    final_scores,
    followup_summary,
    recommendation,
    recommendation_table,
    scaled_summary,
)


def scores() -> pd.DataFrame:
    rows = []
    for test in ("mprt_top_down", "mprt_bottom_up"):
        for step, value in ((0, 1.0), (1, 0.6), (2, 0.2)):
            rows.append({"model": "m", "dataset": "d", "test": test, "method": "gradient",
                         "metric": "spearman_abs", "image": 0, "seed": 0, "step": step,
                         "value": value})
    rows.append({"model": "m", "dataset": "d", "test": "input_invariance", "method": "gradient",
                 "metric": "pearson", "image": 0, "seed": 0, "step": np.nan, "value": 0.9})
    return pd.DataFrame(rows)


def test_top_down_reads_the_last_step_and_bottom_up_the_mean_of_its_randomized_steps():
    final = final_scores(scores()).set_index("test")["value"]
    assert final["mprt_top_down"] == pytest.approx(0.2)
    assert final["mprt_bottom_up"] == pytest.approx(0.4)  # (0.6 + 0.2) / 2, not the original
    assert final["input_invariance"] == pytest.approx(0.9)


def test_sanity_is_one_minus_the_position_where_maps_must_change():
    summary = followup_summary(scores())
    floor = pd.DataFrame({"model": "m", "metric": ["spearman_abs", "pearson"],
                          "mean": [0.0, 0.1]})
    ceiling = pd.DataFrame({"model": "m", "method": "gradient",
                            "metric": ["spearman_abs", "pearson"], "mean": [0.8, 1.0]})
    table = scaled_summary(summary, floor, ceiling).set_index("test")
    assert table.loc["mprt_top_down", "position"] == pytest.approx(0.25)
    assert table.loc["mprt_top_down", "sanity"] == pytest.approx(0.75)
    assert table.loc["input_invariance", "sanity"] == pytest.approx((0.9 - 0.1) / 0.9)


def test_book_tests_read_the_chapters_results_and_leave_out_missing_ones(tmp_path):
    (tmp_path / "cascading").mkdir()
    pd.DataFrame({"model": "cnn", "dataset": "mnist", "method": "gradient",
                  "metric": "spearman_abs", "block": ["logits", "conv1"], "step": [1, 2],
                  "mean": [0.5, 0.1]}).to_csv(tmp_path / "cascading" / "summary.csv", index=False)
    pd.DataFrame({"metric": ["spearman_abs"], "mean": [0.0], "model": [np.nan],
                  "dataset": [np.nan]}).to_csv(tmp_path / "cascading" / "baseline.csv",
                                               index=False)
    table = book_tests(tmp_path)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row.test, row.method, row["mean"], row.floor) == ("parameter_randomization",
                                                             "gradient", 0.1, 0.0)
    assert np.isnan(row.ceiling)  # the ceiling comes from the perturbation ceiling later
    assert book_tests(tmp_path / "nothing").empty


def test_the_recommendation_names_who_passes_and_who_fails():
    table = pd.DataFrame({"parameter_randomization": [0.9, 0.1], "random_logit": [0.95, 0.05],
                          "emprt": [0.3, -0.1]}, index=["gradient", "gradient_x_input"])
    text = recommendation(table)
    assert "every scaled test it ran (above 0.8 of the way from the failing reference to the " \
           "sound one): Gradient." in text
    assert "Failing at least two (below 0.2): Gradient ⊙ Input." in text


def test_recommendation_table_turns_the_book_tests_onto_the_scale():
    book = pd.DataFrame({"test": ["parameter_randomization", "infidelity"],
                         "method": ["gradient", "gradient"], "mean": [0.2, 0.7],
                         "floor": [0.0, np.nan], "ceiling": [np.nan, np.nan]})
    ceiling = pd.DataFrame({"model": "cnn", "method": "gradient", "metric": "spearman_abs",
                            "mean": [0.8]})
    table = recommendation_table(book, pd.DataFrame(columns=["model"]),
                                 pd.DataFrame(columns=["model", "test"]), ceiling, "cnn",
                                 ["gradient", "lrp"])
    assert table.loc["gradient", "parameter_randomization"] == pytest.approx(0.75)
    assert table.loc["gradient", "infidelity"] == pytest.approx(0.7)
    assert table.loc["lrp"].isna().all()


def test_emprt_reading_ranks_the_method_under_both_tests():
    from sanitylib.experiments.after_the_paper import emprt_reading

    summary = pd.DataFrame({"model": "cnn", "test": ["emprt"] * 3 + ["mprt_top_down"] * 3,
                            "method": ["gradient", "guided_backprop", "control_sobel"] * 2,
                            "mean": [0.1, 0.5, 0.0, -0.05, 0.4, 1.0]})
    text = emprt_reading(summary)
    assert "under eMPRT Guided BackProp ranks 1 of 2 (+0.50" in text
    assert "under top-down MPRT 2 of 2 (similarity 0.40" in text
