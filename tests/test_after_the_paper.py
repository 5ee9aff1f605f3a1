"""The chapter "After the paper": summaries, the floor-to-ceiling scale, the recommendation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sanitylib.experiments.after_the_paper import (
    book_tests,
    final_scores,
    followup_summary,
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
    table = book_tests(root=tmp_path)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row.test, row.method, row["mean"], row.floor) == ("parameter_randomization",
                                                             "gradient", 0.1, 0.0)
    assert np.isnan(row.ceiling)  # the ceiling comes from the perturbation ceiling later
    assert book_tests(root=tmp_path / "nothing").empty


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


def followup_scores() -> pd.DataFrame:
    """Hand-made scores on 4 images x 2 seeds: Gradient changes under every test and depends on
    the class; Guided BackProp barely changes and ignores the class but tops eMPRT; input
    invariance holds for Gradient only."""
    values = {("mprt_top_down", "gradient"): 0.02, ("mprt_top_down", "guided_backprop"): 0.9,
              ("mprt_bottom_up", "gradient"): 0.03, ("mprt_bottom_up", "guided_backprop"): 0.8,
              ("random_logit", "gradient"): 0.01, ("random_logit", "guided_backprop"): 0.95,
              ("emprt", "gradient"): 0.1, ("emprt", "guided_backprop"): 0.5,
              ("input_invariance", "gradient"): 0.97,
              ("input_invariance", "gradient_x_input"): 0.3}
    metrics = {"mprt_top_down": "spearman_abs", "mprt_bottom_up": "spearman_abs",
               "random_logit": "ssim", "emprt": "entropy_ratio", "input_invariance": "pearson"}
    rows = []
    for (test, method), value in values.items():
        stepped = test.startswith("mprt")
        for image in range(4):
            for seed in (0, 1):
                for step in ((0, 1, 2) if stepped else (np.nan,)):
                    rows.append({"model": "cnn", "dataset": "mnist", "test": test,
                                 "method": method, "metric": metrics[test], "image": image,
                                 "seed": seed, "step": step,
                                 "value": 1.0 if step == 0 else value + 0.01 * image})
    return pd.DataFrame(rows)


def references() -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = ["spearman_abs", "ssim", "pearson"]
    floor = pd.DataFrame({"model": "cnn", "metric": metrics, "mean": 0.0, "high": 0.05})
    ceiling = pd.DataFrame([{"model": "cnn", "method": m, "metric": k, "mean": 0.99}
                            for m in ("gradient", "guided_backprop", "gradient_x_input")
                            for k in metrics])
    return floor, ceiling


def test_followup_claims_one_verdict_per_test_and_method():
    from sanitylib.experiments.followup_claims import followup_claims

    scores = followup_scores()
    claims = followup_claims(scores, followup_summary(scores), *references())
    verdicts = claims.set_index(["test", "method"])["verdict"].to_dict()
    assert verdicts == {
        ("Cascading randomization", "gradient"): "agrees",   # the paper: changes
        ("Cascading randomization", "guided_backprop"): "agrees",   # the paper: barely changes
        ("Bottom-up randomization", "gradient"): "agrees",
        ("Bottom-up randomization", "guided_backprop"): "differs",
        ("eMPRT", "guided_backprop"): "agrees",
        ("Random logit", "gradient"): "agrees",
        ("Random logit", "guided_backprop"): "differs",
        ("Input invariance", "gradient"): "agrees",
        ("Input invariance", "gradient_x_input"): "agrees"}
    assert set(claims[claims.test == "Cascading randomization"].setting) == {"class: fixed"}
    assert (claims.n_images == 4).all() and (claims.n_seeds == 2).all()
    emprt = claims[claims.test == "eMPRT"].iloc[0]
    assert emprt.estimate == pytest.approx(0.4) and "best other method, Gradient" in emprt.claim


def test_random_logit_reading_names_the_methods_that_ignore_the_class():
    from sanitylib.experiments.followup_claims import followup_claims, random_logit_reading

    scores = followup_scores()
    text = random_logit_reading(followup_claims(scores, followup_summary(scores), *references()))
    assert "differs for Guided BackProp 0.965" in text
    assert "Top-down MPRT (class: fixed) on the methods whose claim differs" in text
    assert "Guided BackProp: random logit 0.96 [0.94, 0.99] (claim: differs), top-down MPRT " \
           "0.92 [0.89, 0.94] (claim: agrees), rank 2 of the 2 methods with a top-down claim" in text


def test_class_reading_sets_the_recomputed_class_beside_the_fixed_one(tmp_path):
    from sanitylib.experiments.followup_claims import class_reading, followup_claims

    scores = followup_scores()
    claims = followup_claims(scores, followup_summary(scores), *references())
    assert "not in this results folder" in class_reading(claims, "cnn", "mnist", 4, [0], root=tmp_path)
    (tmp_path / "cascading").mkdir()
    pd.DataFrame({"model": "cnn", "dataset": "mnist", "order": "cascading",
                  "method": ["gradient", "guided_backprop"], "metric": "spearman_abs",
                  "mean": [0.05, 0.42], "n": 16, "n_seeds": 3}).to_csv(
        tmp_path / "cascading" / "verdict.csv", index=False)
    pd.DataFrame([{"model": "cnn", "dataset": "mnist", "order": "cascading", "method": m,
                   "metric": "spearman_abs", "step": 4, "seed": s, "image": i, "value": v}
                  for m, v in (("gradient", 0.04), ("guided_backprop", 0.4))
                  for s in (0, 1, 2) for i in range(16)]).to_csv(
        tmp_path / "cascading" / "scores.csv", index=False)
    text = class_reading(claims, "cnn", "mnist", 4, [0, 1], root=tmp_path)
    assert "ends at Gradient 0.05, Guided BackProp 0.42 (16 images × 3 seeds)" in text
    assert "On the same 4 images and seeds (0, 1) the cascading chapter's numbers are " \
           "Gradient 0.04, Guided BackProp 0.40" in text
