r"""DeepLift, Gradient SHAP and LRP-epsilon: the follow-up literature's attribution methods.

The NeurIPS reviewers of Adebayo et al. (2018) asked for LRP and DeepLift; Kokhlikyan et al.
(2021, https://arxiv.org/abs/2106.07475) ran DeepLift and Gradient SHAP, Hedström et al. (2023,
https://arxiv.org/abs/2401.06465) and Sixt et al. (2020, https://arxiv.org/abs/1912.09818) LRP.

- :func:`deeplift`: DeepLift's Rescale rule (Shrikumar et al., 2017, "Learning Important Features
  Through Propagating Activation Differences", https://arxiv.org/abs/1704.02685), Captum's
  ``DeepLift`` (multipliers times ``x - baseline``).
- :func:`gradient_shap`: Gradient SHAP (Lundberg & Lee, 2017, "A Unified Approach to Interpreting
  Model Predictions", https://arxiv.org/abs/1705.07874), the estimator of Captum's
  ``GradientShap``: per sample a baseline drawn from the baselines given, an input with optional
  Gaussian noise, a point ``b + alpha (x' - b)`` with ``alpha ~ U(0, 1)``; the mean of
  ``grad(point) * (x' - b)``. Captum draws from NumPy's and torch's global generators, so its
  maps depend on the batch; here image ``i`` of a call draws from ``torch.Generator(seed + i)``
  and the gradients come from Captum's ``Saliency``: results do not depend on chunking.
- :func:`lrp`: LRP with the epsilon rule (Bach et al., 2015, "On Pixel-Wise Explanations for
  Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLoS ONE 10(7)), Captum's
  ``LRP`` with ``EpsilonRule(epsilon)`` on every conv, linear, batch-norm and pooling layer.
  Shape-only layers (``nn.Flatten``, ``nn.Identity``) get ``EpsilonRule(1e-9)``: through a reshape
  it passes relevance on unchanged (z / (z + 1e-9 sign z)), where Captum itself has no rule for them.

Nothing runs under a method's name that is not that method. Captum's DeepLift applies its rules
to modules of the types in ``captum.attr._core.deep_lift.SUPPORTED_NON_LINEAR`` and passes the
plain gradient through any other nonlinearity (``nn.ReLU6``, ``nn.SiLU``, ``F.relu``); its LRP
gives no rule to the computations of a module that has children. Both keep one input and output
per module, so a module called twice per forward pass breaks them. :func:`unsupported_layers`
finds all of these in one forward pass of one row; the methods raise
:class:`UnsupportedModelError` naming each layer (submodule path and type). Nonlinearities built
from elementary ops (``x.clamp(min=0)``, ``x * x.sigmoid()``) are not seen.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from contextlib import ExitStack
from typing import Any

import torch
import torch.nn.functional as F
from captum.attr import LRP, DeepLift, Saliency
from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR
from captum.attr._core.lrp import SUPPORTED_NON_LINEAR_LAYERS
from captum.attr._utils.lrp_rules import EpsilonRule
from torch import nn
from torch.overrides import TorchFunctionMode

from sanitylib.methods.frozen import explaining

__all__ = ["RULED_METHODS", "UnsupportedModelError", "deeplift", "gradient_shap", "lrp",
           "unsupported_layers"]

#: The methods whose rules :func:`unsupported_layers` checks.
RULED_METHODS = ("deeplift", "gradient_shap", "lrp")

#: Layers that get ``EpsilonRule(epsilon)`` in :func:`lrp` (exact types: a subclass may compute
#: more in its own forward, like timm's ``Conv2dSame`` padding or ``BatchNormAct2d``).
_LRP_RULED = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
              nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_LRP_SHAPE_ONLY = (nn.Flatten, nn.Identity)

_F, _T = F, torch.Tensor
#: Function calls that are nonlinear in the input (batch norm in eval mode is affine, so absent).
_NONLINEAR = {f: f.__name__ for f in (
    _F.relu, _F.relu_, torch.relu, torch.relu_, _T.relu, _T.relu_, _F.relu6, _F.hardtanh,
    _F.hardtanh_, _F.elu, _F.elu_, _F.leaky_relu, _F.leaky_relu_, _F.prelu, _F.rrelu, _F.selu,
    _F.celu, _F.gelu, _F.silu, _F.mish, _F.softplus, _F.hardswish, _F.hardsigmoid, _F.logsigmoid,
    _F.glu, _F.threshold, torch.sigmoid, _T.sigmoid, _F.sigmoid, torch.tanh, _T.tanh, _F.tanh,
    _F.softmax, torch.softmax, _T.softmax, _F.log_softmax, torch.log_softmax, _T.log_softmax,
    _F.max_pool1d, _F.max_pool2d, _F.max_pool3d, _F.adaptive_max_pool2d, _F.layer_norm,
    _F.group_norm, _F.instance_norm, _F.normalize)}
#: Linear calls that LRP must see as a ruled layer.
_LINEAR = {f: f.__name__ for f in (_F.conv1d, _F.conv2d, _F.conv3d, _F.linear, _F.batch_norm,
                                   _F.avg_pool2d, _F.adaptive_avg_pool2d, torch.conv2d)}
_SUMS = {f: f.__name__ for f in (torch.add, _T.add, _T.__add__, _T.__radd__, _T.__iadd__,
                                  _T.add_, torch.sub, _T.sub, _T.__sub__, _T.__rsub__,
                                  _T.__isub__, _T.sub_)}


_SHOWN = 10  # layers named in an error message; unsupported_layers lists them all


class UnsupportedModelError(ValueError):
    """The method has no rule for some layer of the model; the message names each one."""


class _Census(TorchFunctionMode):
    """Records, for one forward pass, every module call and every nonlinear, linear or tensor-sum
    call with the innermost module running it."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.module_calls: Counter[str] = Counter()
        self.calls: list[tuple[str, str, str]] = []  # (module path, function, kind)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        where = self.stack[-1] if self.stack else ""
        try:
            if func in _NONLINEAR:
                self.calls.append((where, _NONLINEAR[func], "nonlinear"))
            elif func in _LINEAR:
                self.calls.append((where, _LINEAR[func], "linear"))
            elif func in _SUMS and len(args) > 1 and all(
                    isinstance(a, torch.Tensor) and a.ndim > 0 for a in args[:2]):
                self.calls.append((where, _SUMS[func], "sum"))
        except TypeError:  # an unhashable callable
            pass
        return func(*args, **(kwargs or {}))


def _census(model: nn.Module, example: torch.Tensor) -> _Census:
    census = _Census()
    with ExitStack() as hooks:
        for name, module in model.named_modules():
            if isinstance(module, torch.jit.ScriptModule):
                continue

            def enter(*_: Any, name: str = name) -> None:
                census.stack.append(name)
                census.module_calls[name] += 1

            def leave(*_: Any) -> None:
                census.stack.pop()

            hooks.callback(module.register_forward_pre_hook(enter).remove)
            hooks.callback(module.register_forward_hook(leave, always_call=True).remove)
        with torch.no_grad(), census:
            model(example)
    return census


def _describe(modules: dict[str, nn.Module], path: str) -> str:
    return f"{path or '<root>'} ({type(modules[path]).__name__})"


def unsupported_layers(model: nn.Module, example: torch.Tensor, method: str) -> list[str]:
    """Every layer of ``model`` that ``method`` (one of :data:`RULED_METHODS`) has no correct
    rule for, as ``"path (Type): why"``, from one forward pass on ``example`` (one row suffices).

    Gradient SHAP needs only gradients: it has none.
    """
    if method not in RULED_METHODS:
        raise ValueError(f"unknown method {method!r}; valid choices: {', '.join(RULED_METHODS)}")
    if method == "gradient_shap":
        return []
    modules = dict(model.named_modules())
    if isinstance(model, torch.jit.ScriptModule):
        return [f"<root> ({type(model).__name__}): a TorchScript model takes no hooks"]
    with explaining(model):
        census = _census(model, example)
    leaf = {p: next(m.children(), None) is None for p, m in modules.items()}
    problems: dict[str, str] = {}
    for path, function, kind in census.calls:
        module = modules[path]
        if method == "deeplift" and kind == "nonlinear" and not (
                leaf[path] and type(module) in SUPPORTED_NON_LINEAR):
            problems.setdefault(path, f"calls {function}, which Captum's DeepLift has no rule for "
                                      "here (it would pass the plain gradient)")
        if method == "lrp" and not leaf[path] and kind == "sum":
            problems.setdefault(path, f"adds or subtracts two tensors ({function}: a skip "
                                      "connection, a bias map) in its own forward; Captum's LRP "
                                      "rules sums only in its Addition_Module")
        elif method == "lrp" and not leaf[path]:
            problems.setdefault(path, f"calls {function} in its own forward, outside any layer "
                                      "that LRP gives a rule")
    for path, count in census.module_calls.items():
        module = modules[path]
        hooked = (type(module) in SUPPORTED_NON_LINEAR if method == "deeplift"
                  else leaf[path] and path != "")
        if method == "lrp" and leaf[path] and type(module) not in (
                *_LRP_RULED, *_LRP_SHAPE_ONLY, *SUPPORTED_NON_LINEAR_LAYERS):
            problems.setdefault(path, "no LRP rule for this layer type (rules: "
                                + ", ".join(t.__name__ for t in (*_LRP_RULED, *_LRP_SHAPE_ONLY,
                                                                 *SUPPORTED_NON_LINEAR_LAYERS))
                                + ")")
        if hooked and count > 1:
            problems.setdefault(path, f"called {count} times per forward pass; Captum keeps one "
                                      "input and output per module")
    return [f"{_describe(modules, p)}: {why}" for p, why in problems.items()]


def _refuse_unsupported(model: nn.Module, x: torch.Tensor, method: str) -> None:
    problems = unsupported_layers(model, x[:1], method)
    if problems:
        more = len(problems) - _SHOWN
        shown = problems[:_SHOWN] + [f"... and {more} more (all: unsupported_layers)"] * (more > 0)
        raise UnsupportedModelError(
            f"{method} cannot run on {type(model).__name__}: {len(problems)} "
            "layer(s) without a correct rule:\n  " + "\n  ".join(shown))


def _check(x: torch.Tensor, targets: torch.Tensor, max_rows: int) -> None:
    if targets.shape != (len(x),) or targets.is_floating_point():
        raise ValueError(f"targets must be an integer tensor of shape ({len(x)},), got "
                         f"{tuple(targets.shape)} {targets.dtype}")
    if max_rows < 1:
        raise ValueError(f"max_rows must be positive, got {max_rows}")


def _baseline_like(baseline: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """One baseline per row: a scalar, one input (..) or a batch like ``x``."""
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if base.shape == x.shape:
        return base
    try:
        return base.expand_as(x[:1]).expand_as(x)
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(base.shape)} does not match inputs of shape "
                         f"{tuple(x.shape)}; pass a scalar, one input or one per input") from None


def deeplift(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *,
             baseline: torch.Tensor | float = 0.0, max_rows: int = 256,
             eps: float = 1e-10) -> torch.Tensor:
    r"""DeepLift (Rescale rule) attributions of ``logit[target]``, Captum's ``DeepLift``.

    Args:
        model (nn.Module): A classifier returning logits (B, classes); not modified.
        x (Tensor): Inputs (B, ...).
        targets (Tensor): Class per row, integer tensor of shape (B,).
        baseline (Tensor or float, optional): Reference input: a scalar, one input, or one per row.
        max_rows (int, optional): At most this many model rows per pass (DeepLift runs the input
                    and its baseline together, so ``max_rows // 2`` inputs).
        eps (float, optional): Captum's threshold below which a multiplier falls back to the
                    gradient.

    Returns:
        Tensor: Attributions shaped like ``x``; on a linear model with zero bias and a zero
        baseline they are ``x * w[target]``.

    Raises:
        UnsupportedModelError: naming every layer DeepLift has no rule for.
    """
    _check(x, targets, max_rows)
    _refuse_unsupported(model, x, "deeplift")
    base = _baseline_like(baseline, x)
    chunk = max(1, max_rows // 2)
    with explaining(model), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
        method = DeepLift(model, eps=eps)
        return torch.cat([method.attribute(x[i:i + chunk].clone().requires_grad_(),
                                           baselines=base[i:i + chunk],
                                           target=targets[i:i + chunk]).detach()
                          for i in range(0, len(x), chunk)])


def _shap_draws(x: torch.Tensor, n_baselines: int, samples: int, stdev: float, seed: int,
                first_index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image ``i`` from ``torch.Generator(seed + first_index + i)``: ``samples`` alphas
    (U(0, 1)), baseline indices and standard normal noise times ``stdev``; each (samples, B, ...)."""
    alphas, picks, noises = [], [], []
    for i in range(len(x)):
        generator = torch.Generator().manual_seed(seed + first_index + i)
        alphas.append(torch.rand(samples, generator=generator, dtype=x.dtype))
        picks.append(torch.randint(n_baselines, (samples,), generator=generator))
        noises.append(torch.randn((samples, *x.shape[1:]), generator=generator, dtype=x.dtype)
                      if stdev > 0 else torch.zeros((samples, *x.shape[1:]), dtype=x.dtype))
    return (torch.stack(alphas, 1).to(x.device), torch.stack(picks, 1).to(x.device),
            torch.stack(noises, 1).to(x.device) * stdev)


def gradient_shap(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *,
                  baseline: torch.Tensor | float = 0.0, samples: int = 50, stdev: float = 0.0,
                  seed: int = 0, max_rows: int = 256) -> torch.Tensor:
    r"""Gradient SHAP attributions of ``logit[target]``: Captum's ``GradientShap`` estimator with
    per-image seeded draws.

    Args:
        model (nn.Module): A classifier returning logits (B, classes); not modified.
        x (Tensor): Inputs (B, ...).
        targets (Tensor): Class per row, integer tensor of shape (B,).
        baseline (Tensor or float, optional): The baseline distribution: a scalar or one input
                    (a single baseline), or a batch (K, ...) drawn from uniformly.
        samples (int, optional): Draws per image (Captum's ``n_samples``).
        stdev (float, optional): Standard deviation of the Gaussian noise on the input (Captum's
                    ``stdevs``, default 0 as in Captum).
        seed (int, optional): Image ``i`` draws from ``torch.Generator(seed + i)``.
        max_rows (int, optional): At most this many model rows per pass.

    Returns:
        Tensor: Attributions shaped like ``x``. On a linear model the gradient is constant, so with
        ``stdev=0`` and one baseline they are exactly ``(x - baseline) * w[target]``.
    """
    _check(x, targets, max_rows)
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if base.ndim == x.ndim and base.shape[1:] == x.shape[1:]:
        distribution = base
    else:
        distribution = _baseline_like(base, x[:1])
    saliency = Saliency(model)
    chunk = max(1, max_rows // samples)
    out = []
    with explaining(model):
        for i in range(0, len(x), chunk):
            xi, ti = x[i:i + chunk].detach(), targets[i:i + chunk]
            alphas, picks, noise = _shap_draws(xi, len(distribution), samples, stdev, seed, i)
            noisy = xi.unsqueeze(0) + noise
            drawn = distribution[picks]
            shape = (samples, len(xi), *[1] * (x.ndim - 1))
            points = (drawn + alphas.view(shape) * (noisy - drawn)).flatten(0, 1)
            rows = ti.repeat(samples)
            grads = torch.cat([saliency.attribute(points[j:j + max_rows].clone().requires_grad_(),
                                                  target=rows[j:j + max_rows], abs=False).detach()
                               for j in range(0, len(points), max_rows)])
            out.append((grads.view(noisy.shape) * (noisy - drawn)).mean(0))
    return torch.cat(out)


def _attach_rules(ruled: nn.Module, epsilon: float) -> None:
    """An LRP rule on every leaf layer of ``ruled`` that needs one (again before every call:
    Captum's ``LRP.attribute`` removes the rules when it returns)."""
    for module in ruled.modules():
        if type(module) in _LRP_RULED:
            module.rule = EpsilonRule(epsilon)
        elif type(module) in _LRP_SHAPE_ONLY:
            module.rule = EpsilonRule()  # Captum's 1e-9: passes relevance through a reshape


def lrp(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *, epsilon: float = 0.25,
        max_rows: int = 256) -> torch.Tensor:
    r"""LRP-epsilon relevance of ``logit[target]``, Captum's ``LRP`` with ``EpsilonRule``.

    Args:
        model (nn.Module): A classifier returning logits (B, classes); not modified (the rules go
                    on a copy).
        x (Tensor): Inputs (B, ...).
        targets (Tensor): Class per row, integer tensor of shape (B,).
        epsilon (float, optional): The stabilizer added to every pre-activation z (with z's sign)
                    of conv, linear, batch-norm and pooling layers; 0.25 follows Montavon et al.
                    (2019, "Layer-Wise Relevance Propagation: An Overview") for middle layers of
                    networks with activations of order one. Relevance absorbed by epsilon is lost.
        max_rows (int, optional): At most this many rows per pass.

    Returns:
        Tensor: Relevances shaped like ``x``; for one linear layer ``z = w x`` (no bias) they are
        ``x * w[target] * z / (z + epsilon sign z)``.

    Raises:
        UnsupportedModelError: naming every layer without an LRP rule.
    """
    _check(x, targets, max_rows)
    if epsilon < 0:
        raise ValueError(f"epsilon must be non-negative, got {epsilon}")
    _refuse_unsupported(model, x, "lrp")
    # A copy (the rules are attributes of its layers) in an nn.Sequential: Captum's LRP looks for
    # layers among the children, and a bare layer has none.
    ruled = nn.Sequential(copy.deepcopy(model))
    method = LRP(ruled)
    maps = []
    with explaining(ruled):
        for i in range(0, len(x), max_rows):
            _attach_rules(ruled, epsilon)
            maps.append(method.attribute(x[i:i + max_rows].clone().requires_grad_(),
                                         target=targets[i:i + max_rows]).detach())
    return torch.cat(maps)
