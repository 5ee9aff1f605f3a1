"""DeepLift, Gradient SHAP and LRP-epsilon against answers known by hand (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sanitylib.methods import attribution
from sanitylib.methods.attribution import (
    UnsupportedModelError,
    deeplift,
    gradient_shap,
    lrp,
    unsupported_layers,
)
from sanitylib.methods.registry import ALL_METHODS, LABELS, METHODS, options_for
from sanitylib.methods.saliency import explain
from sanitylib.models.zoo import build


@pytest.fixture
def linear():
    """One bias-free linear layer (behind a Flatten, as in the CNN), inputs and targets."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3, bias=False))
    x = torch.randn(4, 6)
    targets = torch.tensor([0, 2, 1, 2])
    return model, x, targets, model[1].weight.detach()[targets]


def relu_mlp(bias: bool = True) -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(nn.Linear(5, 16, bias=bias), nn.ReLU(), nn.Linear(16, 8, bias=bias),
                         nn.ReLU(), nn.Linear(8, 3, bias=bias))


def test_deeplift_on_a_linear_model_is_input_times_weight(linear):
    model, x, targets, w = linear
    assert torch.allclose(deeplift(model, x, targets), x * w, atol=1e-6)
    baseline = torch.randn(6)
    assert torch.allclose(deeplift(model, x, targets, baseline=baseline), (x - baseline) * w,
                          atol=1e-6)


def test_lrp_epsilon_on_a_linear_model_follows_the_epsilon_rule(linear):
    model, x, targets, w = linear
    z = (x * w).sum(1, keepdim=True)
    assert torch.allclose(lrp(model, x, targets, epsilon=1e-9), x * w, atol=1e-6)
    # R_i = x_i w_i z / (z + eps sign z): epsilon absorbs relevance.
    expected = x * w * z / (z + 0.5 * z.sign())
    assert torch.allclose(lrp(model, x, targets, epsilon=0.5), expected, atol=1e-6)


def test_gradient_shap_on_a_linear_model_is_exact(linear):
    model, x, targets, w = linear
    baseline = torch.randn(6)
    assert torch.allclose(gradient_shap(model, x, targets, baseline=baseline, samples=5),
                          (x - baseline) * w, atol=1e-6)


def test_gradient_shap_is_captums_estimator_given_the_same_draws(monkeypatch):
    """With one baseline and no noise only the alphas are random: fed ours, Captum's
    GradientShap returns our map on a nonlinear network."""
    from captum.attr import GradientShap
    from captum.attr._core import gradient_shap as captum_gs

    model = relu_mlp()
    x, targets, samples, seed = torch.randn(3, 5), torch.tensor([0, 1, 2]), 6, 11
    ours = gradient_shap(model, x, targets, samples=samples, seed=seed)
    alphas = torch.stack([torch.rand(samples, generator=torch.Generator().manual_seed(seed + i))
                          for i in range(len(x))])  # rows repeat_interleave'd: image-major
    monkeypatch.setattr(captum_gs.np.random, "uniform",
                        lambda low, high, size: alphas.flatten().numpy().astype(np.float64))
    theirs = GradientShap(model).attribute(x, baselines=torch.zeros(1, 5), target=targets,
                                           n_samples=samples)
    assert torch.allclose(ours, theirs.detach(), atol=1e-6)


def test_deeplift_sums_to_the_output_difference_and_lrp_conserves_relevance():
    model = relu_mlp()
    x, targets = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    baseline = torch.randn(5)
    with torch.no_grad():
        delta = (model(x) - model(baseline[None])).gather(1, targets[:, None])[:, 0]
    assert torch.allclose(deeplift(model, x, targets, baseline=baseline).sum(1), delta, atol=1e-5)
    free = relu_mlp(bias=False)  # without biases LRP-0 conserves the logit exactly
    with torch.no_grad():
        logit = free(x).gather(1, targets[:, None])[:, 0]
    assert torch.allclose(lrp(free, x, targets, epsilon=1e-9).sum(1), logit, atol=1e-4)
    assert (lrp(free, x, targets, epsilon=1.0).sum(1).abs() < logit.abs()).all()


@pytest.mark.parametrize("method", ["deeplift", "gradient_shap", "lrp"])
def test_the_mnist_cnn_runs_every_method_independently_of_chunking(method):
    model = build("cnn")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(5, 1, 28, 28)
    settings = options_for([method], samples=4, seed=3)[method]
    maps = explain(model, x, method, **settings)
    assert maps.shape == x.shape and torch.isfinite(maps).all() and maps.abs().sum() > 0
    assert torch.allclose(explain(model, x, method, **settings, max_rows=3), maps, atol=1e-5)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not hasattr(model.conv1[0], "rule")  # the LRP rules went on a copy


def test_gradient_shap_draws_are_seeded_per_image():
    model = build("cnn")
    x = torch.rand(3, 1, 28, 28)
    first = gradient_shap(model, x, torch.tensor([1, 2, 3]), samples=3, seed=5, stdev=0.1)
    alone = gradient_shap(model, x[2:], torch.tensor([3]), samples=3, seed=7, stdev=0.1)
    assert torch.allclose(first[2:], alone, atol=1e-6)  # image 2 of seed 5 = image 0 of seed 7
    other = gradient_shap(model, x, torch.tensor([1, 2, 3]), samples=3, seed=6, stdev=0.1)
    assert not torch.allclose(first, other)


class _Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.act, self.b = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.act(self.a(self.act(x))))


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.relu(self.a(x)))


@pytest.mark.parametrize("method", [deeplift, lrp])
def test_reused_and_functional_activations_are_refused_by_path(method):
    x, targets = torch.randn(2, 4), torch.tensor([0, 1])
    with pytest.raises(UnsupportedModelError, match=r"act \(ReLU\): called 2 times"):
        method(_Reused(), x, targets)
    with pytest.raises(UnsupportedModelError, match=r"<root> \(_Functional\): calls relu"):
        method(_Functional(), x, targets)
    assert unsupported_layers(_Reused(), x, "gradient_shap") == []


def test_efficientnet_refuses_deeplift_and_lrp_naming_its_layers():
    from sanitylib.models.efficientnet import untrained_efficientnet_lite0

    model = untrained_efficientnet_lite0()
    x = torch.randn(1, 3, 224, 224)
    with pytest.raises(UnsupportedModelError, match=r"bn1\.act \(ReLU6\): calls hardtanh"):
        explain(model, x, "deeplift", target=0)
    problems = unsupported_layers(model, x, "lrp")
    kinds = {p.split(" (")[1].split(")")[0] for p in problems}
    assert kinds == {"BatchNormAct2d", "ReLU6", "Conv2dSame", "InvertedResidual"}
    assert "blocks.1.1 (InvertedResidual): adds or subtracts two tensors (add:" \
        in "\n".join(problems)
    with pytest.raises(UnsupportedModelError, match=r"\.\.\. and \d+ more"):
        lrp(model, x, torch.tensor([0]))


def test_methods_are_wired_into_explain():
    assert ALL_METHODS[:len(METHODS)] == METHODS and set(attribution.RULED_METHODS) <= set(LABELS)
    with pytest.raises(ValueError, match="valid choices: deeplift, gradient_shap, lrp"):
        unsupported_layers(build("cnn"), torch.rand(1, 1, 28, 28), "occlusion")
    with pytest.raises(ValueError, match="samples must be at least 1"):
        explain(build("cnn"), torch.rand(1, 1, 28, 28), "gradient_shap", samples=0)
    with pytest.raises(ValueError, match="does not match inputs"):
        deeplift(build("cnn"), torch.rand(2, 1, 28, 28), torch.tensor([0, 1]),
                 baseline=torch.zeros(3, 3))
