"""The simple models of Section 5 (sanitylib.experiments.theory) against hand-known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sanitylib.experiments import theory
from sanitylib.experiments.runner import summarize_scores
from sanitylib.methods.saliency import explain


def test_the_linear_models_gradient_is_its_weight_row_whatever_the_input():
    model = theory.linear_model((1, 6, 6), num_classes=4, seed=2)
    weight = model[1].weight
    x = torch.rand(5, 1, 6, 6)
    for c in range(4):
        gradient = explain(model, x, "gradient", target=c)
        assert torch.allclose(gradient, weight[c].view(1, 1, 6, 6).expand_as(x))
        assert torch.allclose(explain(model, x, "gradient_x_input", target=c),
                              x * weight[c].view(1, 1, 6, 6))


def test_x_times_a_constant_gradient_ranks_exactly_like_x():
    x = torch.rand(4, 3, 16, 16)
    scores = theory.input_dominance(x, torch.full_like(x, 2.5), [0.0])
    product = scores[scores["map"] == "x ⊙ g"]
    assert np.allclose(product.value, 1.0)
    # The constant gradient alone has no ranking: its score is undefined, not a number.
    assert scores[scores["map"] == "g"].value.isna().all()


def test_pure_noise_leaves_no_signed_correlation_with_the_input():
    # Not torch's global generator: seeded alike, its uniforms would correlate with the noise.
    x = torch.from_numpy(np.random.default_rng(5).random((8, 1, 32, 32))).float() + 0.5
    scores = theory.input_dominance(x, torch.ones_like(x), [1e6], metrics=["spearman"])
    assert abs(scores[scores["map"] == "x ⊙ g"].value.mean()) < 0.05


def test_input_dominance_rejects_a_zero_gradient_and_mismatched_shapes():
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="zero everywhere"):
        theory.input_dominance(x, torch.zeros_like(x), [0.0])
    with pytest.raises(ValueError, match="one shape"):
        theory.input_dominance(x, torch.ones(2, 1, 4, 4), [0.0])


def _step_image(height: int = 24, width: int = 32) -> torch.Tensor:
    x = torch.full((1, 1, height, width), 0.2)
    x[..., width // 2:] = 0.9
    return x


def test_a_random_one_layer_conv_nets_gradient_is_flat_in_uniform_regions():
    # Section 5.2: inside a uniform region every patch has the same ReLU pattern, so the
    # gradient is one constant; it changes only where the patterns change, at the edge.
    net = theory.one_layer_conv(1, "random", n_filters=8, kernel_size=5, pool="sum", seed=1)
    x = _step_image()
    g = explain(net, x, "gradient", target=0)[0, 0]
    margin = 5  # kernel size: away from the borders and the step
    left, right = g[margin:-margin, margin:16 - margin], g[margin:-margin, 16 + margin:-margin]
    assert torch.allclose(left, left[0, 0]) and torch.allclose(right, right[0, 0])
    changes = theory.change_map(g[None, None])[0, 0]
    near_step = np.zeros(changes.shape, dtype=bool)
    near_step[:, 16 - margin:16 + margin] = True
    interior = np.zeros(changes.shape, dtype=bool)
    interior[margin:-margin, margin:-margin] = True
    assert np.allclose(changes[interior & ~near_step], 0.0)
    assert changes[interior & near_step].max() > 0


def test_a_sobel_one_layer_conv_net_has_no_gradient_inside_uniform_regions():
    net = theory.one_layer_conv(1, "sobel", pool="sum", seed=0)
    g = explain(net, _step_image(), "gradient", target=0)[0, 0]
    inner = g[3:-3]
    assert torch.all(inner[:, 3:13] == 0) and torch.all(inner[:, 19:-3] == 0)
    assert inner[:, 14:18].abs().max() > 0


def test_one_layer_conv_rejects_unknown_filters_and_pools():
    with pytest.raises(ValueError, match="random, sobel"):
        theory.one_layer_conv(filters="gabor")
    with pytest.raises(ValueError, match="max, sum"):
        theory.one_layer_conv(pool="mean")


def test_weight_deviation_is_the_largest_absolute_difference_per_image():
    w = torch.zeros(3, 1, 2, 2)
    g = w.clone()
    g[1, 0, 1, 0] = -2e-6
    g[2, 0, 0, 1] = 0.5
    assert np.allclose(theory.weight_deviation(g, w), [0.0, 2e-6, 0.5])


def test_deviation_claims_bound_every_image_and_seed_and_count_images_as_units():
    deviations = pd.DataFrame({"data": ["mnist"] * 6 + ["photographs"] * 2,
                               "seed": [0, 0, 0, 1, 1, 1, 0, 0], "image": [0, 1, 2, 0, 1, 2, 0, 1],
                               "value": [1e-7, 3e-7, 0.0, 2e-7, 0.0, 4e-7, 1e-3, 0.0]})
    claims = theory.deviation_claims(deviations, threshold=1e-5, chapter="06_theory")
    mnist, photos = claims.iloc[0], claims.iloc[1]
    assert mnist["verdict"] == "agrees" and mnist["estimate"] == pytest.approx(4e-7)
    assert mnist["n_images"] == 3 and mnist["n_seeds"] == 2
    assert photos["verdict"] == "inconclusive"  # 2 images: too few to decide anything


def test_linear_and_dominance_claims_read_the_input_dominance_rows():
    rng = np.random.default_rng(0)
    rows = []
    for image in range(5):
        for name, value in (("g", 0.01 * rng.standard_normal()), ("x ⊙ g", 0.9)):
            rows.append({"data": "mnist", "noise": 0.0, "map": name, "metric": "spearman_abs",
                         "image": image, "value": value})
            rows.append({"data": "mnist", "noise": 100.0, "map": name, "metric": "spearman_abs",
                         "image": image, "value": value - 0.05 * image})
    scores = pd.DataFrame(rows)
    floor = pd.DataFrame({"dataset": ["mnist"], "metric": ["spearman_abs"], "mean": [0.0],
                          "high": [0.07]})
    linear = theory.linear_claims(
        summarize_scores(scores[scores.noise == 0.0], ["data", "map", "metric"]), floor,
        chapter="06_theory").set_index("method")
    assert linear.loc["gradient", "verdict"] == "agrees"  # below the top of the random band
    assert linear.loc["gradient_x_input", "verdict"] == "agrees"
    assert (linear["model"] == "linear").all()
    dominance = theory.dominance_claims(
        summarize_scores(scores, ["data", "map", "metric", "noise"]), floor,
        {"mnist": "cnn"}, chapter="06_theory")
    assert len(dominance) == 1 and dominance["verdict"].iloc[0] == "agrees"
    assert dominance["estimate"].iloc[0] == pytest.approx(0.8)  # noise 100 only
    assert dominance["model"].iloc[0] == "cnn"
