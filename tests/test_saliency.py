"""Saliency methods against answers known by hand (issue 3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sanitylib.methods.guided import activation_census
from sanitylib.methods.registry import options_for
from sanitylib.methods.saliency import METHODS, explain, predicted_class
from sanitylib.models.inception import untrained_inception_v3
from sanitylib.models.zoo import build


def linear_model() -> nn.Linear:
    torch.manual_seed(1)
    return nn.Linear(6, 3)


def test_linear_gradient_is_weight_row_and_gxi_is_w_times_x():
    model = linear_model()
    x = torch.randn(4, 6)
    target = torch.tensor([0, 2, 1, 2])
    grads = explain(model, x, "gradient", target=target)
    assert torch.allclose(grads, model.weight[target].detach())
    assert torch.allclose(explain(model, x, "gradient_x_input", target=target),
                          model.weight[target].detach() * x)


def test_integrated_gradients_completeness_on_small_mlp():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 16), nn.Softplus(), nn.Linear(16, 16), nn.Softplus(),
                          nn.Linear(16, 3))
    x = torch.randn(7, 5)
    attributions = explain(model, x, "integrated_gradients", target=1, steps=400)
    with torch.no_grad():
        difference = model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]
    # The uniform mean over linspace(0, 1, n) has O(1/n) error: 1e-2 is ample for n = 400.
    assert torch.allclose(attributions.sum(1), difference, atol=1e-2)


def test_local_ig_is_global_ig_without_the_multiplier():
    model = build("mlp")
    x = torch.rand(3, 1, 28, 28)
    local = explain(model, x, "integrated_gradients", steps=8, multiply_by_inputs=False)
    global_ = explain(model, x, "integrated_gradients", steps=8)
    assert torch.allclose(local * x, global_, atol=1e-6)


def test_guided_backprop_equals_gradient_without_relu():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    x = torch.randn(4, 5)
    assert torch.allclose(explain(model, x, "guided_backprop", target=0),
                          explain(model, x, "gradient", target=0), atol=1e-6)


def test_guided_backprop_matches_hand_computation():
    # h = relu(W1 x), y = w2 h. At x = (1, 1): W1 x = (1 - 0.5, 2 + 1) = (0.5, 3), both active.
    # Upstream gradient at h is w2 = (1, -2); guided ReLU keeps only positive gradients where
    # h > 0: (1, 0). Input attribution: W1^T (1, 0) = (1, -0.5). The plain gradient is
    # W1^T (1, -2) = (1 - 4, -0.5 - 2) = (-3, -2.5).
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -0.5], [2.0, 1.0]]))
        model[2].weight.copy_(torch.tensor([[1.0, -2.0]]))
    x = torch.tensor([[1.0, 1.0]])
    assert torch.allclose(explain(model, x, "guided_backprop", target=0), torch.tensor([[1.0, -0.5]]))
    assert torch.allclose(explain(model, x, "gradient", target=0), torch.tensor([[-3.0, -2.5]]))


def test_guided_backprop_on_inception_hooks_every_relu_and_differs_from_gradient():
    model = untrained_inception_v3(seed=0)
    x = torch.randn(1, 3, 299, 299)
    calls = activation_census(model, x)
    assert len(calls) > 90 and all(c.guided for c in calls)  # functional in-place ReLUs
    gbp = explain(model, x, "guided_backprop")
    grad = explain(model, x, "gradient")
    assert not torch.allclose(gbp, grad, atol=1e-6)
    assert (gbp - grad).abs().mean() > 0.1 * grad.abs().mean()


def test_gradcam_is_nonnegative_with_input_size():
    model = build("cnn")
    x = torch.rand(5, 1, 28, 28)
    cam = explain(model, x, "gradcam")
    assert cam.shape == x.shape and (cam >= 0).all() and cam.sum() > 0


def test_gradcam_needs_a_layer_on_the_mlp():
    with pytest.raises(ValueError, match="layer="):
        explain(build("mlp"), torch.rand(2, 1, 28, 28), "gradcam")


def test_smoothgrad_with_zero_noise_equals_gradient():
    model = build("cnn")
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(explain(model, x, "smoothgrad", noise_level=0.0, samples=4),
                          explain(model, x, "gradient"), atol=1e-6)
    assert torch.allclose(explain(model, x, "vargrad", noise_level=0.0, samples=4),
                          torch.zeros_like(x), atol=1e-10)


def test_results_do_not_depend_on_chunking():
    model = build("cnn")
    x = torch.rand(5, 1, 28, 28)
    for method in ("integrated_gradients", "smoothgrad", "ig_smoothgrad"):
        options = options_for([method], steps=4, samples=3, seed=7)[method]
        small = explain(model, x, method, max_rows=5, **options)
        large = explain(model, x, method, **options)
        assert torch.allclose(small, large, atol=1e-5), method


def test_every_method_keeps_shape_and_leaves_the_model_alone():
    model = build("cnn")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 1, 28, 28)
    for method in METHODS:
        maps = explain(model, x, method, **options_for([method], steps=3, samples=2)[method])
        assert maps.shape == x.shape and torch.isfinite(maps).all(), method
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_default_target_is_the_argmax_and_a_fixed_label_is_honoured():
    model = build("cnn")
    x = torch.rand(4, 1, 28, 28)
    predicted = predicted_class(model, x)
    assert torch.equal(explain(model, x, "gradient"), explain(model, x, "gradient", target=predicted))
    other = (predicted + 1) % 10
    assert not torch.allclose(explain(model, x, "gradient", target=other),
                              explain(model, x, "gradient"))


def test_bad_inputs_raise_clear_errors():
    model = build("cnn")
    with pytest.raises(ValueError, match="valid choices: gradient"):
        explain(model, torch.rand(1, 1, 28, 28), "occlusion")
    with pytest.raises(ValueError, match="one label per input"):
        explain(model, torch.rand(3, 1, 28, 28), "gradient", target=torch.tensor([1, 2]))
