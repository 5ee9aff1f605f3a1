"""Guided Backprop at every rectifier call site, checked against hand-computed answers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sanitylib.methods.guided import (
    UnguidedActivationError,
    activation_census,
    guided_backprop,
)

# y = W2 act(W1 x), no biases. W1 rows give, for x = (1, 2), z = W1 x = (-1, 2, 3, 7, 4):
# one unit below every lower bound, one above ReLU6's 6, the rest inside. The logit explained
# (class 0) has w2 = (1, 2, -1, 1, 3), so the gradient reaching unit 3 is negative.
# For x = (-1, 1), z = (1, -2, 0, -1, 2): unit 3 sits exactly at ReLU's 0 (not "inside").
W1 = torch.tensor([[-1.0, 0.0], [2.0, 0.0], [1.0, 1.0], [3.0, 2.0], [0.0, 2.0]])
W2 = torch.tensor([[1.0, 2.0, -1.0, 1.0, 3.0], [0.5, -1.0, 1.0, 2.0, -1.0]])
X = torch.tensor([[1.0, 2.0], [-1.0, 1.0]])
TARGET = torch.tensor([0, 0])
# Guided: W1^T (w2 where lo < z < hi and w2 > 0). Plain: W1^T (w2 where lo < z < hi).
# ReLU, row 1: kept units 2, 4, 5 -> 2 (2, 0) + 1 (3, 2) + 3 (0, 2) = (7, 8); plain adds
#   -1 (1, 1) -> (6, 7). Row 2: units 1, 5 -> (-1, 0) + 3 (0, 2) = (-1, 6), plain the same.
# ReLU6, row 1: unit 4 (z = 7) is above 6 -> 2 (2, 0) + 3 (0, 2) = (4, 6); plain (3, 5).
# hardtanh(2.5, 5), row 1: only unit 5 (z = 4) has w2 > 0 inside -> (0, 6); plain (-1, 5).
#   Row 2: no unit inside -> (0, 0).
EXPECTED = {"relu": ([[7.0, 8.0], [-1.0, 6.0]], [[6.0, 7.0], [-1.0, 6.0]]),
            "relu6": ([[4.0, 6.0], [-1.0, 6.0]], [[3.0, 5.0], [-1.0, 6.0]]),
            "hardtanh": ([[0.0, 6.0], [0.0, 0.0]], [[-1.0, 5.0], [0.0, 0.0]])}


def _returns_input(method: str):
    """``z.<method>()`` used for its side effect only, as in ``x.relu_(); return x``."""
    def act(m: nn.Module, z: torch.Tensor) -> torch.Tensor:
        getattr(z, method)()
        return z
    return act


# (family, how the activation is called, module it needs or None, how forward applies it)
VARIANTS = [
    ("relu", "module", nn.ReLU(), lambda m, z: m.act(z)),
    ("relu", "module inplace", nn.ReLU(inplace=True), lambda m, z: m.act(z)),
    ("relu", "F.relu", None, lambda m, z: F.relu(z)),
    ("relu", "torch.relu", None, lambda m, z: torch.relu(z)),
    ("relu", "Tensor.relu", None, lambda m, z: z.relu()),
    ("relu", "F.relu inplace", None, lambda m, z: F.relu(z, inplace=True)),
    ("relu", "F.relu_", None, lambda m, z: F.relu_(z)),
    ("relu", "x.relu_() unassigned", None, _returns_input("relu_")),
    ("relu", "module reused 3x", nn.ReLU(), lambda m, z: m.act(m.act(m.act(z)))),
    ("relu", "torch.ops.aten.relu", None, lambda m, z: torch.ops.aten.relu(z)),
    ("relu6", "module", nn.ReLU6(), lambda m, z: m.act(z)),
    ("relu6", "module inplace", nn.ReLU6(inplace=True), lambda m, z: m.act(z)),
    ("relu6", "F.relu6", None, lambda m, z: F.relu6(z)),
    ("relu6", "F.relu6 inplace", None, lambda m, z: F.relu6(z, inplace=True)),
    ("relu6", "module reused 3x", nn.ReLU6(), lambda m, z: m.act(m.act(m.act(z)))),
    ("hardtanh", "module", nn.Hardtanh(2.5, 5.0), lambda m, z: m.act(z)),
    ("hardtanh", "F.hardtanh", None, lambda m, z: F.hardtanh(z, 2.5, 5.0)),
    ("hardtanh", "F.hardtanh kwargs", None,
     lambda m, z: F.hardtanh(z, min_val=2.5, max_val=5.0)),
    ("hardtanh", "F.hardtanh inplace", None, lambda m, z: F.hardtanh(z, 2.5, 5.0, True)),
    ("hardtanh", "F.hardtanh_", None, lambda m, z: F.hardtanh_(z, 2.5, 5.0)),
    ("hardtanh", "module reused 3x", nn.Hardtanh(2.5, 5.0),
     lambda m, z: m.act(m.act(m.act(z)))),
]


class Tiny(nn.Module):
    def __init__(self, act_module: nn.Module | None, apply) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2, 5, bias=False), nn.Linear(5, 2, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(W1)
            self.fc2.weight.copy_(W2)
        if act_module is not None:
            self.act = act_module
        self.apply_act = apply

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.apply_act(self, self.fc1(x)))


def _gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    return torch.autograd.grad(model(x.clone()).gather(1, target[:, None]).sum(), x)[0]


@pytest.mark.parametrize(("family", "how", "module", "apply"), VARIANTS,
                         ids=[f"{f}-{h}" for f, h, _, _ in VARIANTS])
def test_guided_rule_matches_hand_computation(family, how, module, apply):
    model = Tiny(module, apply)
    guided, plain = (torch.tensor(v) for v in EXPECTED[family])
    assert torch.allclose(_gradient(model, X, TARGET), plain)  # the hand computation is right
    assert torch.allclose(guided_backprop(model, X, TARGET), guided)
    census = activation_census(model, X[:1])
    assert census and all(c.guided for c in census)
    if how == "module reused 3x":
        assert [c.site for c in census] == [f"act, call {k} of 3" for k in (1, 2, 3)]


def test_equals_captum_with_relu_modules():
    from captum.attr import GuidedBackprop

    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 2 * 2, 8), nn.ReLU(),
                        nn.Linear(8, 3))
    x, target = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 1])
    with pytest.warns(UserWarning):  # Captum warns that the input had no gradient
        expected = GuidedBackprop(net).attribute(x, target=target)
    result = guided_backprop(net, x, target)
    assert torch.allclose(result, expected, atol=1e-6)
    assert not torch.allclose(result, _gradient(net, x, target), atol=1e-6)


def test_inception_v3_functional_inplace_relus_are_all_guided():
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    model = inception_v3(weights=None, aux_logits=True, init_weights=True).eval()
    x, target = torch.randn(2, 3, 75, 75), torch.tensor([3, 7])
    census = activation_census(model, x[:1])
    assert len(census) == 94 and all(c.guided for c in census)  # one ReLU per BasicConv2d
    assert census[0].site == "Conv2d_1a_3x3: torch.nn.functional.relu"
    assert "Mixed_5b.branch1x1: torch.nn.functional.relu" in {c.site for c in census}
    guided, plain = guided_backprop(model, x, target), _gradient(model, x, target)
    assert guided.shape == x.shape and torch.isfinite(guided).all()
    assert (guided - plain).abs().mean() > 0.1 * plain.abs().mean()


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.fc(x))


@pytest.mark.parametrize(("model", "sites"), [
    (nn.Sequential(nn.Linear(3, 3), nn.LeakyReLU(), nn.Linear(3, 2)),
     ["1, call 1 of 1 (torch.nn.functional.leaky_relu)"]),
    (nn.Sequential(nn.Sequential(Block()), nn.ReLU(), nn.Linear(3, 2)),
     ["0.0: torch.nn.functional.gelu"]),
    (nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.SELU(), nn.ReLU(), nn.Linear(3, 2)),
     ["2, call 1 of 1 (torch.nn.functional.selu)"]),
], ids=["LeakyReLU", "F.gelu", "SELU"])
def test_guard_names_unguided_sites(model, sites):
    with pytest.raises(UnguidedActivationError) as err:
        guided_backprop(model, torch.randn(2, 3), torch.tensor([0, 1]))
    assert isinstance(err.value, RuntimeError)
    listed = str(err.value).splitlines()[1:]
    assert [line.strip() for line in listed] == sites
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


class Switching(nn.Module):
    """A ReLU network that turns to GELU once ``switched``: its structure does not change."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.out, self.switched = nn.Linear(3, 3), nn.Linear(3, 2), False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out((F.gelu if self.switched else F.relu)(self.fc(x)))


def test_census_is_taken_once_per_module_and_shape(monkeypatch):
    from sanitylib.methods import guided
    taken = []
    census = guided._census
    monkeypatch.setattr(guided, "_census", lambda m, x: taken.append(x.shape) or census(m, x))
    model, target = Switching(), torch.tensor([0, 1])
    first = guided_backprop(model, torch.randn(2, 3), target)
    with torch.no_grad():
        model.fc.weight.mul_(2)  # new weights, same module: no new census
    guided_backprop(model, torch.randn(2, 3), target)
    assert len(taken) == 1 and torch.isfinite(first).all()
    guided_backprop(nn.Sequential(model), torch.randn(2, 3), target)  # another module
    assert len(taken) == 2


def test_a_call_the_remembered_census_did_not_see_is_refused():
    model, target = Switching(), torch.tensor([0, 1])
    guided_backprop(model, torch.randn(2, 3), target)
    model.switched = True
    with pytest.raises(UnguidedActivationError, match=r"torch.nn.functional.gelu"):
        guided_backprop(model, torch.randn(2, 3), target)


def test_guard_sees_rectifiers_below_torch_function():
    # nn.RNN(nonlinearity="relu") applies aten.relu inside a C++ composite: no Python call.
    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.fc = nn.RNN(3, 4, nonlinearity="relu", batch_first=True), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.rnn(x)[0][:, -1])

    census = activation_census(Recurrent(), torch.randn(1, 2, 3))
    assert [c.site for c in census] == ["rnn, call 1 of 2", "rnn, call 2 of 2"]
    assert not any(c.guided for c in census) and "dispatcher" in census[0].function
    with pytest.raises(UnguidedActivationError, match="rnn, call 1 of 2"):
        guided_backprop(Recurrent(), torch.randn(2, 2, 3), torch.tensor([0, 1]))


def test_saturating_nonlinearities_pass_the_plain_gradient():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 5), nn.Sigmoid(),
                          nn.Linear(5, 3), nn.Softmax(dim=1))
    x, target = torch.randn(3, 4), torch.tensor([0, 2, 1])
    assert [c.rule for c in activation_census(model, x[:1])] == ["gradient"] * 3
    assert torch.allclose(guided_backprop(model, x, target), _gradient(model, x, target))


def _small_convnet() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU6(inplace=True),
                         nn.Dropout(0.5), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))


def test_chunking_does_not_change_the_result():
    model = _small_convnet()
    x, target = torch.randn(5, 1, 6, 6), torch.tensor([0, 1, 2, 3, 0])
    assert torch.allclose(guided_backprop(model, x, target, max_rows=1),
                          guided_backprop(model, x, target, max_rows=256), atol=1e-6)
    assert torch.allclose(guided_backprop(model, x, target, max_rows=2),
                          guided_backprop(model, x, target), atol=1e-6)


def test_model_is_left_as_it_was():
    model = _small_convnet().train()
    model[1].eval()  # mixed training flags must come back as they were
    model[0].bias.requires_grad_(False)
    with torch.no_grad():  # non-trivial running statistics, which eval mode must not update
        model[1].running_mean.uniform_(-1, 1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    x, target = torch.randn(3, 1, 6, 6), torch.tensor([1, 2, 3])
    x_before = x.clone()
    result = guided_backprop(model, x, target)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    for m in model.modules():
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                    or m._backward_pre_hooks or m._forward_hooks_always_called)
    assert torch.allclose(result, guided_backprop(model.eval(), x, target))  # eval: no dropout
    assert torch.equal(x, x_before) and not x.requires_grad


def test_rejects_bad_targets():
    model = _small_convnet()
    with pytest.raises(ValueError, match="target"):
        guided_backprop(model, torch.randn(2, 1, 6, 6), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="target"):
        guided_backprop(model, torch.randn(2, 1, 6, 6), torch.tensor([0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_result_is_on_the_device_of_the_inputs():
    model = _small_convnet()
    x, target = torch.randn(3, 1, 6, 6), torch.tensor([1, 2, 3])
    expected = guided_backprop(model, x, target)
    on_gpu = guided_backprop(model.cuda(), x, target)
    assert on_gpu.device == x.device and torch.allclose(on_gpu, expected, atol=1e-5)
    assert guided_backprop(model, x.cuda(), target.cuda()).is_cuda
