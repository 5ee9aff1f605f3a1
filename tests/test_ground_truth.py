"""Planted evidence, localization, deletion and the recommendation, against hand-known answers
and against Quantus (the peer implementation: relevance mass and rank accuracy, pixel
flipping)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sanitylib.data.images import ImageDataset
from sanitylib.data.planted import (
    BLOCK,
    MIN_DISTANCE,
    PATCH,
    class_patterns,
    null_block,
    planted_dataset,
)
from sanitylib.experiments.claims import claims_frame, write_claims
from sanitylib.experiments.ground_truth import (
    accuracy_rows,
    control_claims,
    control_reading,
    correctness_claims,
    deletion_scores,
    faithfulness_claims,
    localization_scores,
    localization_summary,
    planted_models,
)
from sanitylib.experiments.recommendation import (
    criterion_readings,
    recommend,
    recommendation_table,
    recommendation_text,
)
from sanitylib.methods.deletion import curve_area, deletion_curves, deletion_order, random_order
from sanitylib.methods.localization import chance, mass_accuracy, rank_accuracy


@pytest.fixture(scope="module")
def base() -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (60,), generator=generator)
    return ImageDataset("mnist", x[:40], y[:40], x[40:], y[40:], "random test images")


# --- planted evidence ------------------------------------------------------------------------

def test_class_codes_are_framed_and_far_apart():
    patterns = class_patterns()
    assert patterns.shape == (10, PATCH, PATCH)
    assert bool((patterns[:, 0] == 1).all() and (patterns[:, :, -1] == 1).all())
    codes = patterns[:, 1:-1, 1:-1].reshape(10, -1)
    distances = (codes[:, None] != codes[None]).sum(-1)
    assert int(distances[~torch.eye(10, dtype=torch.bool)].min()) >= MIN_DISTANCE


def test_planted_patch_pastes_the_code_of_the_label_inside_the_mask(base):
    data = planted_dataset(base, "patch")
    patterns = class_patterns()
    assert data.masks_train.shape == data.x_train.shape
    assert bool((data.masks_train.sum(dim=(1, 2, 3)) == PATCH * PATCH).all())
    for i in range(len(data.y_train)):
        inside = data.x_train[i, 0][data.masks_train[i, 0]].view(PATCH, PATCH)
        assert torch.equal(inside, patterns[data.y_train[i]])
        outside = ~data.masks_train[i, 0]
        assert torch.equal(data.x_train[i, 0][outside], base.x_train[i, 0][outside])
    assert chance(data.masks_test) == pytest.approx(np.full(20, PATCH * PATCH / 784))


def test_the_control_keeps_the_images_and_masks_and_the_base_labels(base):
    planted, control = planted_dataset(base, "patch"), planted_dataset(base, "patch", False)
    assert torch.equal(planted.x_test, control.x_test)
    assert torch.equal(planted.masks_test, control.masks_test)
    assert torch.equal(control.y_train, base.y_train)
    assert not torch.equal(planted.y_train, base.y_train)
    assert planted.source != control.source  # a model trained on either is cached apart
    assert control.classes == base.classes and planted.classes[0] == "code 0"


def test_block_puts_the_shrunk_image_in_its_half_and_the_null_block_in_the_other(base):
    data = planted_dataset(base, "block")
    left = (28 - BLOCK) // 2
    small = torch.nn.functional.avg_pool2d(base.x_test, 2)
    for i in range(len(data.y_test)):
        top = bool(data.masks_test[i, 0, 0, 0])
        signal, null = (slice(0, 14), slice(14, 28)) if top else (slice(14, 28), slice(0, 14))
        assert bool(data.masks_test[i, 0, signal].all()) and not data.masks_test[i, 0, null].any()
        assert torch.equal(data.x_test[i, 0, signal, left:left + BLOCK], small[i, 0])
        assert torch.equal(data.x_test[i, 0, null, left:left + BLOCK], null_block())
    assert torch.equal(data.y_test, base.y_test)


def test_bad_constructions_are_refused_with_the_choices(base):
    with pytest.raises(ValueError, match="valid choices: patch, block"):
        planted_dataset(base, "stripes")
    with pytest.raises(ValueError, match="no uninformative control"):
        planted_dataset(base, "block", informative=False)


def test_planted_models_are_trained_and_scored_with_the_controls(base):
    models, data = planted_models(base, ["patch", "patch_control"], ["cnn"],
                                  {"train_size": 40, "epochs": 1, "lr": 1e-3})
    accuracy = accuracy_rows(models, data).set_index("dataset")
    assert accuracy.loc["patch", "n_test"] == 20 and accuracy.loc["patch", "chance"] == 0.1
    assert accuracy.loc["patch", "low"] <= accuracy.loc["patch", "test_accuracy"] \
        <= accuracy.loc["patch", "high"]
    scores, maps = localization_scores(models, data, 4, ["gradient", "gradcam"], {})
    assert set(maps["cnn", "patch"]) == {"gradient", "gradcam", "control_random_per_model",
                                         "control_sobel"}
    assert len(scores) == 2 * 4 * 2 * 4  # cases x methods and controls x metrics x images
    np.testing.assert_allclose(scores["chance"], PATCH * PATCH / 784)
    np.testing.assert_allclose(scores["scaled"],
                               (scores["value"] - scores["chance"]) / (1 - scores["chance"]))
    with pytest.raises(ValueError, match="valid choices: patch, patch_control, block"):
        planted_models(base, ["stripes"], ["cnn"], {})


def test_a_control_is_placed_among_the_methods():
    summary = pd.DataFrame({"dataset": ["patch"] * 3, "method": ["a", "b", "control_sobel"],
                            "mean": [0.5, 0.0, 0.2], "low": [0.4, -0.1, 0.15],
                            "high": [0.6, 0.1, 0.25], "n": [8, 8, 8]})
    text = control_reading(summary, "control_sobel", {"control_sobel": "Sobel"})
    assert "**planted patch**: Sobel 0.20 [0.15, 0.25] (8 images); of 2 methods, 1 lie above it " \
           "and 1 below" in text
    assert control_reading(summary[summary.method != "control_sobel"], "control_sobel", {}) == ""


# --- localization ----------------------------------------------------------------------------

def _mask() -> torch.Tensor:
    mask = torch.zeros(2, 1, 6, 6, dtype=torch.bool)
    mask[:, :, 1:3, 1:3] = True
    return mask


def test_a_map_equal_to_the_mask_scores_one_and_a_constant_map_is_undefined():
    mask = _mask()
    maps = mask.float().clone()
    maps[1] = 0.5  # constant: ranks nothing
    assert mass_accuracy(maps, mask)[0] == 1.0 and rank_accuracy(maps, mask)[0] == 1.0
    assert math.isnan(mass_accuracy(maps, mask)[1]) and math.isnan(rank_accuracy(maps, mask)[1])
    empty = torch.zeros_like(mask)
    assert np.isnan(mass_accuracy(torch.rand(2, 1, 6, 6), empty)).all()


def test_mass_is_read_from_the_magnitude_over_channels():
    mask = _mask()[:1]
    maps = torch.zeros(1, 3, 6, 6)
    maps[0, 0, 1, 1] = -3.0  # inside, negative: counts as 3
    maps[0, 2, 5, 5] = 1.0   # outside
    assert mass_accuracy(maps, mask)[0] == pytest.approx(0.75)


def test_tied_pixels_count_by_their_expected_share():
    mask = _mask()[:1]  # 4 pixels
    maps = torch.zeros(1, 1, 6, 6)
    maps[0, 0, 1, 1] = 2.0               # inside, above the tie
    maps[0, 0, 1, 2] = maps[0, 0, 0, 0] = maps[0, 0, 5, 5] = maps[0, 0, 4, 4] = 1.0  # 1 in, 3 out
    # top 4: the 2.0 pixel, then 3 of the 4 tied pixels, each inside with probability 1/4
    assert rank_accuracy(maps, mask)[0] == pytest.approx((1 + 3 * 1 / 4) / 4)


def test_localization_matches_quantus():
    quantus = pytest.importorskip("quantus", reason="quantus (test-only) is not installed")
    generator = np.random.default_rng(1)
    x = generator.random((6, 1, 10, 10)).astype(np.float32)
    maps = generator.normal(size=(6, 1, 10, 10)).astype(np.float32)
    masks = np.zeros((6, 1, 10, 10), dtype=bool)
    for i in range(6):
        masks[i, 0, i:i + 3, 2:2 + i + 1] = True
    model = nn.Sequential(nn.Flatten(), nn.Linear(100, 3)).eval()
    kwargs = {"model": model, "x_batch": x, "y_batch": np.zeros(6, int), "a_batch": maps,
              "s_batch": masks}
    theirs_mass = quantus.RelevanceMassAccuracy(abs=True, normalise=False,
                                                disable_warnings=True)(**kwargs)
    theirs_rank = quantus.RelevanceRankAccuracy(abs=True, normalise=False,
                                                disable_warnings=True)(**kwargs)
    np.testing.assert_allclose(mass_accuracy(maps, masks), theirs_mass, atol=1e-6)
    np.testing.assert_allclose(rank_accuracy(maps, masks), theirs_rank, atol=1e-12)


# --- deletion --------------------------------------------------------------------------------

class _Sum(nn.Module):
    """Two logits: the sum of the pixels and 0, so the class-0 probability is sigmoid(sum)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.flatten(1).sum(1)
        return torch.stack([total, torch.zeros_like(total)], dim=1)


def test_deletion_removes_the_most_relevant_regions_first():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0], x[0, 0, 3, 3] = 3.0, 1.0
    maps = x.clone()
    order = deletion_order(maps, region=2)
    assert order[0, 0] == 0 and order[0, 1] == 3  # the 2x2 squares holding 3, then 1
    curve = deletion_curves(_Sum(), x, order, torch.tensor([0]), [0.0, 0.25, 0.5], region=2)
    expected = torch.sigmoid(torch.tensor([4.0, 1.0, 0.0])).double().numpy()
    np.testing.assert_allclose(curve[0], expected, atol=1e-6)
    assert curve_area(curve, [0.0, 0.25, 0.5])[0] == pytest.approx(
        np.trapezoid(expected, [0.0, 0.25, 0.5]))


def test_a_constant_map_has_no_order_and_a_random_order_is_a_permutation():
    order = deletion_order(torch.ones(2, 1, 4, 4))
    assert (order == -1).all()
    curve = deletion_curves(_Sum(), torch.rand(2, 1, 4, 4), order, torch.tensor([0, 0]))
    assert np.isnan(curve).all()
    shuffled = random_order(3, 16, seed=0)
    assert (np.sort(shuffled, axis=1) == np.arange(16)).all()
    with pytest.raises(ValueError, match="does not divide"):
        deletion_order(torch.rand(1, 1, 5, 5), region=2)


def test_deletion_matches_quantus_pixel_flipping():
    quantus = pytest.importorskip("quantus", reason="quantus (test-only) is not installed")
    generator = np.random.default_rng(2)
    x = generator.random((4, 1, 8, 8)).astype(np.float32)
    x[:, 0, 0, 0] = 0.0  # Quantus's "black" is the input's minimum: 0, the book's baseline
    maps = generator.random((4, 1, 8, 8)).astype(np.float32)  # no ties
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    y = np.array([0, 1, 2, 0])
    theirs = np.array(quantus.PixelFlipping(features_in_step=8, perturb_baseline="black",
                                            abs=True, normalise=False, disable_warnings=True)(
        model=model, x_batch=x, y_batch=y, a_batch=maps, softmax=True))
    fractions = [k / 8 for k in range(1, 9)]
    ours = deletion_curves(model, torch.from_numpy(x), deletion_order(maps), torch.from_numpy(y),
                           fractions)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_deletion_gain_is_positive_for_the_map_of_the_model_and_zero_for_random():
    torch.manual_seed(0)
    x = torch.rand(5, 1, 4, 4)
    gradient = torch.ones_like(x)  # d sum / dx: uninformative, constant, hence undefined
    own = x.clone()  # the pixels' contributions to the sum
    curves, gains = deletion_scores(_Sum(), x, {"gradient": gradient, "contribution": own},
                                    torch.zeros(5, dtype=torch.long), [0, 1],
                                    {"model": "sum", "dataset": "random"}, region=1)
    assert set(curves.method) == {"gradient", "contribution", "random"}
    by_method = gains.groupby("method")["value"]
    assert by_method.apply(lambda v: v.isna().all())["gradient"]
    assert (gains[gains.method == "contribution"]["value"] > 0).all()
    claims = faithfulness_claims(gains, {"contribution": "Contribution"})
    row = claims.set_index("method").loc["contribution"]
    assert row.verdict == "agrees" and row.n_images == 5 and row.boundary == 0


# --- claims and the recommendation -----------------------------------------------------------

def _scores(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = []
    for (dataset, method), vals in values.items():
        for image, value in enumerate(vals):
            rows.append({"model": "cnn", "dataset": dataset, "method": method,
                         "metric": "mass_accuracy", "image": image, "value": value,
                         "chance": 0.1, "scaled": (value - 0.1) / 0.9})
    return pd.DataFrame(rows)


def test_correctness_and_control_claims_follow_the_decision_rule():
    scores = _scores({("patch", "good"): [0.8, 0.82, 0.79, 0.81],
                      ("patch", "poor"): [0.1, 0.12, 0.09, 0.11],
                      ("patch", "control_sobel"): [0.9, 0.9, 0.9, 0.9],
                      ("patch_control", "good"): [0.2, 0.21, 0.19, 0.2],
                      ("patch_control", "poor"): [0.1, 0.13, 0.08, 0.11]})
    summary = localization_summary(scores)
    claims = correctness_claims(summary, {})
    assert set(claims.method) == {"good", "poor"}  # no controls, no uninformative case
    verdicts = claims.set_index("method")["verdict"]
    assert verdicts["good"] == "agrees" and verdicts["poor"] == "differs"
    pairs = control_claims(scores, {}).set_index("method")["verdict"]
    assert pairs["good"] == "agrees" and pairs["poor"] == "inconclusive"


def _claim(test: str, method: str, verdict: str, expected: str, dataset: str = "mnist",
           metric: str = "spearman_abs") -> dict[str, object]:
    return {"claim": f"{test} {method}", "test": test, "model": "cnn", "dataset": dataset,
            "method": method, "metric": metric, "n_images": 16, "n_seeds": 1, "expected": expected,
            "verdict": verdict}


def test_the_recommendation_asks_every_criterion_to_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("SANITYLIB_RESULTS", str(tmp_path))
    write_claims(claims_frame([
        _claim("Cascading randomization", "a", "agrees", "changes"),
        _claim("Cascading randomization", "b", "differs", "changes"),   # still similar: fails
        _claim("Cascading randomization", "c", "differs", "remains"),   # changed: passes
    ]), "cascading")
    write_claims(claims_frame([
        _claim("Data randomization", m, "agrees", "changes") for m in "abc"]), "data_randomization")
    write_claims(claims_frame([
        _claim("Relevance mass accuracy", m, "agrees", "above 0.2", "patch", "mass_accuracy")
        for m in "abc"] + [
        _claim("Relevance mass accuracy", "c", "inconclusive", "above 0.2", "block",
               "mass_accuracy"),
        *(_claim("Deletion", m, "agrees", "above 0", "mnist", "deletion_gain") for m in "abc"),
    ]), "ground_truth")
    readings = criterion_readings("cnn", "mnist")
    table = recommendation_table(readings, ["a", "b", "c", "d"])
    assert table.loc["a"].tolist() == ["passes"] * 4 + ["yes"]
    assert table.loc["b", "parameter_randomization"] == "fails" and table.loc["b", "recommended"] == "no"
    assert table.loc["c", "correctness"] == "cannot tell"  # one construction undecided
    assert table.loc["c", "recommended"] == "cannot tell"
    assert table.loc["d"].iloc[:4].isna().all() and table.loc["d", "recommended"] == "cannot tell"
    text = recommendation_text(table, "CNN", {"a": "A"})
    assert text.startswith("On the CNN, A pass every test of the table. The others: b: fail "
                           "param. rand.")
    assert recommend({}) == "cannot tell"
    nothing = recommendation_table(criterion_readings("cnn", "mnist", root=tmp_path / "none"),
                                   ["a"])
    assert "no method passes" in recommendation_text(nothing, "CNN", {})
