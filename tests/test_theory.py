"""The simple models of Section 5 (sanitylib.experiments.theory) against hand-known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sanitylib.experiments import theory
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
