"""The parameter randomization chapters' helpers (issue 4)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from sanitylib.experiments.parameter_randomization import (
    EXPECTATIONS,
    PAPER_FINDINGS,
    method_options,
    methods_for,
    run_models,
    step_claims,
    verdict_changes,
    verdict_counts,
    verdict_table,
)
from sanitylib.experiments.runner import baseline_table, randomization_run
from sanitylib.methods.saliency import METHODS
from sanitylib.models.inception import untrained_inception_v3
from sanitylib.models.zoo import build


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


def final_scores(values: dict[str, float], n_images: int = 20) -> pd.DataFrame:
    """Tidy scores of a two-step run: step 1 (logits) and step 2 (conv1, the last), per method."""
    rows = []
    for method, value in values.items():
        for image in range(n_images):
            noise = 0.01 * ((image % 5) - 2)
            for step, block, shift in ((1, "logits", 0.05), (2, "conv1", 0.0)):
                rows.append({"model": "cnn", "dataset": "mnist", "order": "cascading",
                             "method": method, "metric": "spearman_abs", "step": step,
                             "block": block, "seed": 0, "image": image,
                             "value": value + noise + shift})
    return pd.DataFrame(rows)


BASELINE = pd.DataFrame([{"metric": "spearman_abs", "mean": 0.0, "low": -0.07, "high": 0.07,
                          "n": 100}])


def test_verdict_separates_a_method_that_changes_from_one_that_does_not():
    verdicts = verdict_table(final_scores({"gradient": 0.0, "guided_backprop": 0.9}),
                             BASELINE).set_index("method")
    assert verdicts.loc["gradient", "verdict"] == "like random maps"
    assert verdicts.loc["guided_backprop", "verdict"] == "still similar"


def test_step_claims_judge_the_last_or_a_given_step_against_the_paper():
    assert EXPECTATIONS["gradient"] == "changes" and EXPECTATIONS["guided_backprop"] == "remains"
    assert EXPECTATIONS["gradient_x_input"] == "remains"
    scores = final_scores({"gradient": 0.0, "guided_backprop": 0.9, "gradcam": 0.9})
    ceiling = pd.DataFrame({"model": "cnn", "dataset": "mnist",
                            "method": ["gradient", "guided_backprop", "gradcam"],
                            "metric": "spearman_abs", "mean": 1.0})
    claims = step_claims(scores, BASELINE, ceiling, chapter="02_cascading",
                         test="Cascading randomization", statistic="after every block",
                         statement="{model} on {dataset}: {method} maps {expectation}")
    by_method = claims.set_index("method")
    assert by_method["verdict"].to_dict() == {"gradient": "agrees", "guided_backprop": "agrees",
                                              "gradcam": "differs"}
    assert by_method.loc["gradient", "claim"] == \
        "CNN on MNIST: Gradient maps become like random maps"
    assert by_method.loc["gradient", "estimate"] == pytest.approx(0.0, abs=1e-9)
    assert by_method.loc["gradient", "boundary"] == pytest.approx(0.2)  # a fifth of the scale
    first = step_claims(scores, BASELINE, None, step=1, chapter="03_independent",
                        test="Bottom-up randomization", statistic="after the first block",
                        statement="{method}", expectations={"gradient": "changes"})
    assert first["method"].tolist() == ["gradient"]
    assert first.loc[0, "estimate"] == pytest.approx(0.05)
    few = step_claims(final_scores({"gradient": 0.0}, n_images=2), BASELINE, None,
                      chapter="02_cascading", test="t", statistic="s", statement="{method}")
    assert few.loc[0, "verdict"] == "inconclusive" and few.loc[0, "n_images"] == 2


def test_verdict_counts_and_changes_between_two_settings():
    claims = pd.DataFrame({"test": "t", "model": "cnn", "dataset": "mnist", "metric": "m",
                           "method": ["gradient", "gradcam", "gradient", "gradcam"],
                           "init": ["uniform", "uniform", "xavier", "xavier"],
                           "verdict": ["agrees", "agrees", "agrees", "inconclusive"]})
    counts = verdict_counts(claims, "init")
    assert counts.loc["GradCAM", "xavier"] == "inconclusive: 1"
    assert list(counts.index) == ["Gradient", "GradCAM"]
    assert verdict_changes(claims, "init", "uniform", "xavier") == [
        "GradCAM (CNN on MNIST: agrees under uniform, inconclusive under xavier)"]


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

    real_compare_to = experiments.compare_to

    def counting_compare_to(*args, **kwargs):
        calls.append(1)
        return real_compare_to(*args, **kwargs)

    monkeypatch.setattr(experiments, "compare_to", counting_compare_to)
    model = build("mlp")
    inputs = torch.rand(2, 1, 28, 28, generator=generator)
    calls.clear()
    run = randomization_run(model, inputs, ["gradient"], metrics=["spearman"], verbose=False)
    computed = len(calls)
    rerun = randomization_run(model, inputs, ["gradient"], metrics=["spearman"], verbose=False)
    assert computed > 0 and len(calls) == computed
    pd.testing.assert_frame_equal(run.scores, rerun.scores)
    assert list(run.scores.columns) == ["method", "order", "init", "batchnorm", "target",
                                        "block", "step", "metric", "seed", "image", "value"]


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
