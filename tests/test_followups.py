"""The follow-up sanity checks (issue 16): sMPRT, eMPRT, random logit, input invariance, controls."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sanitylib.experiments import followup_suite
from sanitylib.experiments.followup_suite import CONTROLS, control_maps, run_followups
from sanitylib.experiments.followups import (
    TESTS,
    discrete_entropy,
    emprt,
    emprt_scores,
    freedman_diaconis_bins,
    fully_randomized,
    input_invariance,
    other_classes,
    random_logit,
    shift_compensated,
    smooth_inputs,
    smprt,
)
from sanitylib.experiments.runner import randomization_run
from sanitylib.methods.randomization import randomize
from sanitylib.methods.saliency import predicted_class
from sanitylib.models.under_test import model_under_test
from sanitylib.models.zoo import build


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    return build("cnn")


@pytest.fixture
def images():
    return torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_every_test_has_quantus_style_metadata():
    for test in TESTS.values():
        assert test.score_direction in ("lower is better", "higher is better")
        assert "et al." in test.reference and test.label
    assert TESTS["smprt"].defaults == {"samples": 50, "noise_level": 0.1, "order": "bottom_up",
                                       "metric": "spearman_abs"}
    assert TESTS["emprt"].score_direction == "higher is better"


def test_smooth_inputs_end_noise_free_and_are_seeded_per_image(images):
    noisy = smooth_inputs(images, samples=400, noise_level=0.1, seed=4).view(400, *images.shape)
    assert torch.equal(noisy[-1], images)
    spread = images.flatten(1).amax(1) - images.flatten(1).amin(1)
    sigma = (noisy[:-1] - images).flatten(2).std(dim=(0, 2))
    assert torch.allclose(sigma, 0.1 * spread, rtol=0.02)
    alone = smooth_inputs(images[2:], samples=400, noise_level=0.1, seed=6).view(400, 1, 1, 28, 28)
    assert torch.equal(alone[:, 0], noisy[:, 2])


def test_smprt_with_one_sample_is_bottom_up_mprt(cnn, images):
    labels = predicted_class(cnn, images)
    smooth = smprt(cnn, images, ["gradient"], samples=1, seed=2)
    plain = randomization_run(cnn, images, ["gradient"], order="bottom_up", seeds=[2],
                              metrics=["spearman_abs"], target=labels, verbose=False).scores
    assert list(smooth.block.unique()) == ["original", "conv1", "conv2", "fc1", "logits"]
    np.testing.assert_allclose(smooth.value.to_numpy(), plain.value.to_numpy(), atol=1e-12)
    assert (smooth[smooth.block == "original"].value.round(9) == 1).all()


def test_smprt_averaging_changes_the_maps(cnn, images):
    one = smprt(cnn, images, ["gradient"], samples=1, seed=2)
    many = smprt(cnn, images, ["gradient"], samples=6, seed=2)
    assert not np.allclose(one.value, many.value)


def test_freedman_diaconis_bins_follow_quantus():
    maps = np.arange(8.0).reshape(2, 1, 2, 2)  # IQR 5.25 - 1.75 = 3.5, n = maps[0].ndim = 3
    width = 2 * 3.5 / 3 ** (1 / 3)
    assert freedman_diaconis_bins(maps, min_bins=0) == int(7 / width) == 1
    assert freedman_diaconis_bins(maps) == 10  # clamped up
    spike = np.zeros((2, 1, 4, 4))
    spike[0, 0, 0, 0] = 1.0  # IQR 0: the 1e-6 minimum width, clamped down
    assert freedman_diaconis_bins(spike) == 200


def test_discrete_entropy_and_emprt_by_hand():
    spread = np.arange(10.0).reshape(1, 1, 2, 5)  # ten values in ten bins: log 10
    two = np.array([0.0] * 5 + [9.0] * 5).reshape(1, 1, 2, 5)  # two bins of five: log 2
    assert discrete_entropy(spread, 10)[0] == pytest.approx(math.log(10))
    assert discrete_entropy(two, 10)[0] == pytest.approx(math.log(2))
    table = emprt_scores({"m": torch.from_numpy(spread)}, {"m": torch.from_numpy(two)}, bins=10)
    assert table.value[0] == pytest.approx((math.log(2) - math.log(10)) / math.log(10))
    constant = emprt_scores({"m": torch.ones(1, 1, 2, 5)}, {"m": torch.from_numpy(two)}, bins=10)
    assert np.isnan(constant.value[0])  # H_orig = 0: undefined, not divided
    with pytest.raises(ValueError, match="valid choices: an int, freedman_diaconis"):
        emprt_scores({"m": torch.ones(1, 1, 2, 5)}, {"m": torch.ones(1, 1, 2, 5)}, bins="sturges")


def test_emprt_uses_the_fully_randomized_model(cnn, images):
    last = list(randomize(cnn, order="cascading", seed=3))[-1][1]
    full = fully_randomized(cnn, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(last.parameters(), full.parameters()))
    table = emprt(cnn, images, ["gradient", "gradient_x_input"], seed=3)
    assert len(table) == 6 and np.isfinite(table.value).all()
    assert (table.bins >= 10).all() and (table.bins <= 200).all()


def test_other_classes_are_seeded_and_never_the_label():
    labels = torch.tensor([0, 3, 9] * 200)
    other = other_classes(labels, 10, seed=5)
    assert (other != labels).all() and other.min() >= 0 and other.max() <= 9
    assert set(other[labels == 0].tolist()) == set(range(1, 10))
    assert torch.equal(other_classes(labels[7:8], 10, seed=12), other[7:8])


def test_random_logit_is_one_when_classes_share_their_weights_and_lower_otherwise():
    x = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    shared = nn.Sequential(nn.Flatten(), nn.Linear(36, 5, bias=False))
    with torch.no_grad():
        shared[1].weight.copy_(torch.randn(1, 36).repeat(5, 1) * torch.arange(1.0, 6.0)[:, None])
    same = random_logit(model_under_test(shared, blocks=["1"]), x, ["gradient"],
                        target=torch.zeros(4, dtype=torch.long))
    assert np.allclose(same.value, 1.0) and (same.other != 0).all()
    torch.manual_seed(3)
    distinct = nn.Sequential(nn.Flatten(), nn.Linear(36, 5, bias=False))
    subject = model_under_test(distinct, blocks=["1"])
    assert (random_logit(subject, x, ["gradient"], seed=1).value < 0.9).all()


def test_shift_compensation_is_exact_at_zero_padded_borders(cnn, images):
    shifted = shift_compensated(cnn, -1.0, images)
    with torch.no_grad():
        assert torch.allclose(shifted.module(images - 1.0), cnn(images), atol=1e-5)
        naive = build("cnn")
        naive.load_state_dict(cnn.state_dict())
        conv = naive.conv1[0]
        conv.bias += conv.weight.sum(dim=(1, 2, 3))  # a scalar bias change: wrong at the borders
        assert not torch.allclose(naive(images - 1.0), cnn(images), atol=1e-3)
    assert torch.equal(cnn.conv1[0].weight, shifted.module.conv1[0].layer.weight)


def test_input_invariance_passes_gradient_and_fails_input_multipliers(cnn, images):
    table = input_invariance(cnn, images, ["gradient", "gradient_x_input",
                                           "integrated_gradients", "smoothgrad"],
                             options={"integrated_gradients": {"steps": 8},
                                      "smoothgrad": {"samples": 3}}).groupby("method").value
    assert (table.min()[["gradient", "smoothgrad"]] > 1 - 1e-5).all()
    assert (table.max()[["gradient_x_input", "integrated_gradients"]] < 0.99).all()


def test_exact_max_pool_ties_on_constant_backgrounds_cost_the_gradient_its_exact_pass(cnn):
    digits = torch.zeros(3, 1, 28, 28)  # a constant background, as MNIST's
    digits[:, :, 8:20, 8:20] = torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(5))
    tied = input_invariance(cnn, digits, ["gradient"]).value
    dither = 1e-3 * torch.rand(digits.shape, generator=torch.Generator().manual_seed(6))
    untied = input_invariance(cnn, digits + dither, ["gradient"]).value
    assert (tied < 0.99).all() and (untied > 0.999).all()


def test_input_invariance_records_lrp_refused_on_the_compensated_model(cnn, images):
    table = input_invariance(cnn, images, ["deeplift", "lrp"]).set_index("method")
    assert (table.loc["deeplift", "value"] < 0.99).all()  # a zero baseline: not invariant
    assert table.loc["lrp", "value"].isna().all()
    assert "conv1.0 (ShiftCompensated): adds or subtracts" in table.loc["lrp", "note"].iloc[0]


def test_shift_compensation_on_efficientnet_same_padding():
    from sanitylib.models.efficientnet import untrained_efficientnet_lite0

    model = untrained_efficientnet_lite0()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    shifted = shift_compensated(model, 0.5, x)
    with torch.no_grad():
        assert torch.allclose(shifted.module(x + 0.5), model(x), atol=1e-4)


def test_first_layer_must_see_the_input_unchanged():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(2 * x)

    with pytest.raises(ValueError, match="fc does not"):
        shift_compensated(model_under_test(Scaled(), blocks=["fc"]), 1.0, torch.rand(2, 4))


def test_controls_have_no_covariance_with_the_model(cnn, images):
    randomized = fully_randomized(cnn, seed=1)
    fresh = [control_maps(m, images, "random_per_model", 0) for m in (cnn, randomized)]
    assert torch.equal(fresh[0], control_maps(cnn, images, "random_per_model", 0))
    assert not torch.equal(fresh[0], fresh[1])
    assert torch.equal(control_maps(cnn, images, "random_fixed", 0),
                       control_maps(randomized, images, "random_fixed", 0))
    assert control_maps(cnn, images, "sobel").shape == images.shape
    with pytest.raises(ValueError, match="valid choices: random_per_model"):
        control_maps(cnn, images, "noise")


def test_run_followups_gives_one_tidy_table_and_caches_it(cnn, images, monkeypatch):
    options = {"integrated_gradients": {"steps": 4}, "gradient_shap": {"samples": 3}}
    settings = {"smprt": {"samples": 3}}
    table = run_followups(cnn, images, ["gradient", "gradient_shap"], seeds=[0, 1],
                          settings=settings, options=options, labels={"dataset": "mnist"})
    assert list(table.columns[:10]) == ["model", "dataset", "test", "method", "block", "step",
                                        "metric", "image", "seed", "value"]
    assert set(table.test) == set(TESTS) and set(table.seed) == {0, 1}
    assert (table.model == "cnn").all() and (table.dataset == "mnist").all()
    controls = {f"control_{c}" for c in CONTROLS}
    for test in ("mprt_top_down", "mprt_bottom_up", "emprt"):
        assert controls <= set(table[table.test == test].method)
    last = table[(table.test == "mprt_top_down") & (table.block == "conv1")]
    by = last.groupby("method").value.mean()
    assert by["control_random_fixed"] == pytest.approx(1) and by["control_sobel"] == pytest.approx(1)
    assert abs(by["control_random_per_model"]) < 0.2  # "passes" like the best method
    originals = table[table.block == "original"]
    assert np.allclose(originals.value, 1.0)
    # The second call comes from the cache: no explanation is computed again.
    monkeypatch.setattr(followup_suite, "_one_test", lambda *a, **k: pytest.fail("recomputed"))
    again = run_followups(cnn, images, ["gradient", "gradient_shap"], seeds=[0, 1],
                          settings=settings, options=options, labels={"dataset": "mnist"})
    pd.testing.assert_frame_equal(table, again)
    with pytest.raises(ValueError, match="valid choices: mprt_top_down"):
        run_followups(cnn, images, ["gradient"], tests=["roar"])


def test_randomization_run_takes_given_labels(cnn, images):
    labels = torch.tensor([1, 2, 3])
    run = randomization_run(cnn, images, ["gradient"], target=labels, metrics=["spearman"],
                            verbose=False)
    assert (run.scores.target == "given").all()
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        randomization_run(cnn, images, ["gradient"], target=torch.tensor([1, 2]), verbose=False)


def test_quantus_init_reseeds_every_layer():
    model = build("cnn")
    randomized = list(randomize(model, init="quantus", seed=42))[-1][1]
    torch.manual_seed(43)
    fresh = nn.Conv2d(1, 32, 5, padding=2)
    assert torch.equal(randomized.conv1[0].weight, fresh.weight)
    torch.manual_seed(43)
    fresh = nn.Linear(1024, 10)
    assert torch.equal(randomized.logits.weight, fresh.weight)
