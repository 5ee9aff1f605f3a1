"""The parameter randomization chapters' helpers (issue 4)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from sanitylib.experiments.parameter_randomization import (
    PAPER_FINDINGS,
    agreement,
    describe_agreement,
    method_options,
    methods_for,
    run_models,
    verdict_table,
)
from sanitylib.experiments.runner import baseline_table, randomization_run
from sanitylib.methods.saliency import METHODS
from sanitylib.models.inception import untrained_inception_v3
from sanitylib.models.mnist import build


def test_every_method_has_a_paper_finding_and_the_mlp_has_no_gradcam():
    assert set(PAPER_FINDINGS) == set(METHODS)
    assert "gradcam" not in methods_for(build("mlp")) and len(methods_for(build("cnn"))) == 9


def test_method_options_set_steps_and_samples():
    options = method_options(ig_steps=7, samples=3)
    assert options["integrated_gradients"] == {"steps": 7}
    assert options["ig_smoothgrad"] == {"samples": 3, "seed": 0, "steps": 7}


def test_run_models_gives_tidy_rows_for_every_step_seed_method_metric_and_image():
    torch.manual_seed(0)
    models = {("cnn", "mnist"): build("cnn")}
    inputs = {"mnist": torch.rand(3, 1, 28, 28)}
    scores, runs = run_models(models, inputs, seeds=[0, 1], methods=["gradient", "gradcam"],
                              metrics=["spearman_abs", "ssim"], keep_maps=1, verbose=False)
    assert len(scores) == 2 * 5 * 2 * 2 * 3  # seeds x steps x methods x metrics x images
    for column in ("model", "dataset", "method", "order", "block", "metric", "seed", "image", "value"):
        assert column in scores
    original = scores[scores.block == "original"]
    assert (original.value.round(6) == 1.0).all()
    assert runs["cnn", "mnist"].maps[0]["conv1"]["gradient"].shape == (1, 1, 28, 28)


def test_verdict_separates_a_method_that_changes_from_one_that_does_not():
    rows = []
    for method, value in (("gradient", 0.0), ("guided_backprop", 0.9)):
        for image in range(20):
            noise = 0.01 * ((image % 5) - 2)
            rows.append({"model": "cnn", "dataset": "mnist", "order": "cascading",
                         "method": method, "metric": "spearman_abs", "step": 4, "block": "conv1",
                         "seed": 0, "image": image, "value": value + noise})
    baseline = pd.DataFrame([{"metric": "spearman_abs", "mean": 0.0, "low": -0.07, "high": 0.07,
                              "n": 100}])
    verdicts = verdict_table(pd.DataFrame(rows), baseline).set_index("method")
    assert verdicts.loc["gradient", "verdict"] == "like random maps"
    assert verdicts.loc["guided_backprop", "verdict"] == "still similar"
    table = agreement(verdicts.reset_index())
    assert (table["agrees with paper"] == "yes").all()
    assert "2 of 2 methods agree" in describe_agreement(table)
    table.loc[table.method == "gradient", "agrees with paper"] = "no"
    assert "not: gradient (like random maps" in describe_agreement(table)
    assert describe_agreement(table, model_labels={"cnn": "The CNN"}).startswith("* **The CNN on")


def test_inception_mechanics_run_on_two_blocks():
    # Random weights only exercise the mechanics here; the chapters use pretrained weights.
    model = untrained_inception_v3(seed=0)
    run = randomization_run(model, torch.randn(1, 3, 299, 299), ["gradient"],
                            blocks=["Logits", "Mixed_7c"], metrics=["spearman_abs"], verbose=False)
    assert run.steps == ["original", "Logits", "Mixed_7c"] and len(run.scores) == 3


def test_unknown_target_mode_is_rejected():
    with pytest.raises(ValueError, match="valid choices: recompute, fixed"):
        randomization_run(build("cnn"), torch.rand(1, 1, 28, 28), ["gradient"], target="label")


def test_baseline_band_brackets_its_mean():
    table = baseline_table(["spearman_abs", "hog"], (1, 28, 28), n=40).set_index("metric")
    assert (table["low"] < table["mean"]).all() and (table["mean"] < table["high"]).all()


def test_score_tables_are_cached_and_keyed_by_the_maps(monkeypatch):
    from sanitylib.experiments import runner as experiments

    calls = []
    real_compare = experiments.compare

    def counting_compare(*args, **kwargs):
        calls.append(1)
        return real_compare(*args, **kwargs)

    monkeypatch.setattr(experiments, "compare", counting_compare)
    generator = torch.Generator().manual_seed(0)
    a = {"gradient": torch.rand(3, 1, 8, 8, generator=generator)}
    b = {"gradient": torch.rand(3, 1, 8, 8, generator=generator)}
    first = experiments.pair_scores(a, b, ["spearman"])
    assert len(calls) == 1
    again = experiments.pair_scores(a, b, ["spearman"])
    assert len(calls) == 1, "the second call must come from the cache"
    pd.testing.assert_frame_equal(first, again)
    other = experiments.pair_scores(a, {"gradient": b["gradient"].flip(-1)}, ["spearman"])
    assert len(calls) == 2, "other maps must not hit the first table's entry"
    assert not first["value"].equals(other["value"])

    model = build("mlp")
    inputs = torch.rand(2, 1, 28, 28, generator=generator)
    calls.clear()
    run = randomization_run(model, inputs, ["gradient"], metrics=["spearman"], verbose=False)
    computed = len(calls)
    rerun = randomization_run(model, inputs, ["gradient"], metrics=["spearman"], verbose=False)
    assert computed > 0 and len(calls) == computed
    pd.testing.assert_frame_equal(run.scores, rerun.scores)
    assert list(run.scores.columns) == ["method", "order", "init", "target", "block", "step",
                                        "metric", "seed", "image", "value"]


def test_with_ceiling_places_each_verdict_between_floor_and_ceiling():
    from sanitylib.experiments.parameter_randomization import with_ceiling

    verdicts = pd.DataFrame({"model": "cnn", "dataset": "mnist", "method": ["gradient", "gradcam"],
                             "metric": "spearman_abs", "mean": [0.09, 0.5], "random_mean": 0.0})
    ceilings = pd.DataFrame({"model": "cnn", "dataset": "mnist", "method": ["gradient", "gradcam"],
                             "metric": "spearman_abs", "mean": [0.9, 0.5]})
    table = with_ceiling(verdicts, ceilings).set_index("method")
    assert table.loc["gradient", "position"] == pytest.approx(0.1)
    assert table.loc["gradient", "on the scale"] == "changes"
    assert table.loc["gradcam", "on the scale"] == "still similar"  # at its ceiling
