r"""Guided Backpropagation that applies its rule at every rectifier call, or refuses to run.

Computes attribution using guided backpropagation (Springenberg et al., 2015, "Striving for
Simplicity", https://arxiv.org/abs/1412.6806), as tested by Adebayo et al. (2018), "Sanity Checks
for Saliency Maps", https://arxiv.org/abs/1810.03292: the gradient of ``logit[target]`` with
respect to the input, except that the backward pass of every clamping activation
``y = clamp(x, lo, hi)`` (ReLU: 0, inf; ReLU6: 0, 6; hardtanh: ``min_val``, ``max_val``) passes
the incoming gradient only where ``lo < x < hi`` and the gradient is positive. Forward is unchanged.

Why not Captum: its ``GuidedBackprop`` hooks ``nn.ReLU`` modules only, and silently returns the
plain gradient through ``nn.ReLU6``, ``F.relu`` / ``torch.relu`` / ``Tensor.relu``, ``F.relu6``,
``F.hardtanh``, in-place calls and modules called several times per forward (EfficientNet-Lite
reuses one ``nn.ReLU6`` per block). Here a :class:`torch.overrides.TorchFunctionMode`, active
during the forward pass only, replaces every call of the rectifier family (module, functional,
method or ``torch.ops.aten`` call) with a :class:`torch.autograd.Function` applying the guided
rule: no model conversion or copy. In-place calls stay in place (``mark_dirty``) rather than
becoming out-of-place, so ``x.relu_(); return x`` keeps its meaning; the rule needs only the
output, since ``lo < x < hi`` iff ``lo < y < hi``.

Nothing falls back silently. :func:`guided_backprop` first takes the :func:`activation_census` of
one row and raises :class:`UnguidedActivationError` naming every rectifier-like call without a
guided rule (leaky_relu, prelu, rrelu, elu, selu, celu, gelu, silu, mish, hardswish,
hardsigmoid, softplus, threshold, ...). The census is taken once per module, structure and input
shape (a randomization run re-explains the same module with new weights); every pass also
records its own rectifier calls and refuses one without a rule, so a census taken earlier cannot
hide a call the pass makes. A dispatcher-level ``TorchDispatchMode`` also reports
rectifier ops that never surfaced as a Python call (``nn.RNN(nonlinearity="relu")``, TorchScript).
Saturating output and attention nonlinearities (sigmoid, tanh, softmax, log_softmax) pass their
gradient unchanged, as in the original method and in Captum (census rule ``"gradient"``).
Activations built from elementary ops (``x.clamp(min=0)``, ``x * x.sigmoid()``) are not seen.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from sanitylib.methods.frozen import explaining

__all__ = ["ActivationCall", "UnguidedActivationError", "activation_census", "clamp_call",
           "guided_backprop"]

# family -> (parameter names, default lo, default hi); hardtanh's bounds come from its arguments.
_FAMILIES = {"relu": (("input", "inplace"), 0.0, math.inf),
             "relu6": (("input", "inplace"), 0.0, 6.0),
             "hardtanh": (("input", "min_val", "max_val", "inplace"), -1.0, 1.0)}
_UNGUIDED = ("leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "gelu", "silu", "mish",
             "hardswish", "hardsigmoid", "softplus", "threshold", "glu", "logsigmoid",
             "log_sigmoid", "hardshrink", "softshrink", "_prelu_kernel", "rrelu_with_noise")
_SATURATING = ("sigmoid", "tanh", "softmax", "log_softmax", "softmin", "_softmax", "_log_softmax")
_NAMESPACES = (("torch.nn.functional", F), ("torch", torch), ("torch.Tensor", torch.Tensor),
               ("torch._C._nn", torch._C._nn), ("torch.special", torch.special))


def _rules() -> dict[Any, tuple[str, str]]:
    """Function object or aten op name -> (display name, guided family | "unguided" | "gradient")."""
    kinds = {**{n: n for n in _FAMILIES}, **dict.fromkeys(_UNGUIDED, "unguided"),
             **dict.fromkeys(_SATURATING, "gradient"), "expit": "gradient"}
    kinds.update({f"{n}_": k for n, k in list(kinds.items())})
    table: dict[Any, tuple[str, str]] = {}
    for prefix, space in _NAMESPACES:
        for name, kind in kinds.items():
            if callable(fn := getattr(space, name, None)):
                table.setdefault(fn, (f"{prefix}.{name}", kind))
    table.update({f"aten.{n}": (f"aten.{n}", k) for n, k in kinds.items()})
    return table


_RULES = _rules()
_OPS = (torch._ops.OpOverload, torch._ops.OpOverloadPacket)


def _rule(func: Any) -> tuple[str, str] | None:
    if isinstance(func, _OPS):
        return _RULES.get(str(getattr(func, "overloadpacket", func)))
    try:
        return _RULES.get(func)
    except TypeError:  # unhashable callable
        return None


def clamp_call(func: Any, args: tuple, kwargs: dict) -> tuple[torch.Tensor, float, float] | None:
    """The input and clamp bounds ``(x, lo, hi)`` of a call of the rectifier family (ReLU,
    ReLU6, hardtanh: module, functional, method or aten call, as a ``TorchFunctionMode`` sees
    it); None for any other call."""
    found = _rule(func)
    if found is None or found[1] not in _FAMILIES:
        return None
    names, lo, hi = _FAMILIES[found[1]]
    bound = {**dict(zip(names, args)), **kwargs}
    x = bound.get("input")
    if not isinstance(x, torch.Tensor):
        return None
    return x, float(bound.get("min_val", lo)), float(bound.get("max_val", hi))


@dataclass(frozen=True)
class ActivationCall:
    """One activation call: ``rule`` is ``"guided"``, ``"gradient"`` (saturating, passed
    unchanged on purpose) or ``"unguided"`` (rectifier-like without a guided rule)."""

    site: str
    function: str
    rule: str

    @property
    def guided(self) -> bool:
        return self.rule == "guided"


class UnguidedActivationError(RuntimeError):
    """A rectifier-like activation without a guided rule: Guided Backprop would be the gradient."""


class _GuidedClamp(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, call: Callable[[torch.Tensor], torch.Tensor],
                lo: float, hi: float, inplace: bool) -> torch.Tensor:
        y = call(x)
        if inplace:
            ctx.mark_dirty(x)
        ctx.keep = (y > lo) & (y < hi)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return torch.where(ctx.keep & (grad > 0), grad, 0.0), None, None, None, None


class _GuidedMode(TorchFunctionMode):
    """Applies the guided rule to rectifier calls; with ``log``, records every activation call."""

    def __init__(self, log: Callable[[str, str], None] | None = None) -> None:
        super().__init__()
        self.log, self.depth = log, 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                         kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        found = _rule(func)
        if found is None:
            return func(*args, **kwargs)
        name, kind = found
        if self.log is not None:
            self.log(name, "guided" if kind in _FAMILIES else kind)
        names, lo, hi = _FAMILIES.get(kind, ((), 0.0, 0.0))
        bound = {**dict(zip(names, args)), **kwargs}
        x, self.depth = bound.get("input"), self.depth + 1
        try:
            if kind not in _FAMILIES or not isinstance(x, torch.Tensor):
                return func(*args, **kwargs)

            def call(t: torch.Tensor) -> torch.Tensor:  # the original call on t
                return func(t, *args[1:], **kwargs) if args else func(**{**kwargs, "input": t})

            inplace = name.endswith("_") or bool(bound.get("inplace", False))
            lo, hi = bound.get("min_val", lo), bound.get("max_val", hi)
            return _GuidedClamp.apply(x, call, lo, hi, inplace)
        finally:
            self.depth -= 1


class _Dispatcher(TorchDispatchMode):
    """Records rectifier-like aten ops run outside any call the function mode saw."""

    def __init__(self, above: _GuidedMode) -> None:
        super().__init__()
        self.above = above

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (),
                         kwargs: dict | None = None) -> Any:
        found = _rule(func)
        if found is not None and found[1] != "gradient" and self.above.depth == 0:
            self.above.log(f"{found[0]} (seen only by the dispatcher)", "unguided")
        return func(*args, **(kwargs or {}))


def _census(model: nn.Module, example: torch.Tensor) -> list[ActivationCall]:
    stack: list[str] = []
    leaf = {name or "<root>": next(m.children(), None) is None
            for name, m in model.named_modules()}
    raw: list[tuple[str, str, str]] = []  # (module, function, rule)
    mode = _GuidedMode(lambda fn, rule: raw.append((stack[-1] if stack else "<root>", fn, rule)))
    with ExitStack() as hooks:
        for name, m in model.named_modules():
            if isinstance(m, torch.jit.ScriptModule):  # no hooks there: its parent names it
                continue
            label = name or "<root>"
            hooks.callback(m.register_forward_pre_hook(
                lambda *_, label=label: stack.append(label)).remove)
            hooks.callback(m.register_forward_hook(
                lambda *_: stack.pop() and None, always_call=True).remove)
        with torch.no_grad(), mode, _Dispatcher(mode):
            model(example)
    # A leaf module's calls are named by the module, other calls by module and function.
    keys = [mod if leaf.get(mod) else f"{mod}: {fn}" for mod, fn, _ in raw]
    totals, seen, calls = Counter(keys), Counter(), []
    for key, (mod, fn, rule) in zip(keys, raw):
        seen[key] += 1
        nth = f", call {seen[key]} of {totals[key]}" if key == mod or totals[key] > 1 else ""
        calls.append(ActivationCall(key + nth, fn, rule))
    return calls


#: module -> ((structure, input shape, dtype, device), its census): the latest census per module.
_CENSUSES: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, list[ActivationCall]]] = \
    weakref.WeakKeyDictionary()


def _census_once(model: nn.Module, example: torch.Tensor) -> list[ActivationCall]:
    """:func:`_census`, remembered for this module while its structure (every submodule's name
    and type), the input's shape past the batch, its dtype and its device stay the same."""
    key = (tuple((name, type(m)) for name, m in model.named_modules()),
           tuple(example.shape[1:]), example.dtype, example.device)
    remembered = _CENSUSES.get(model)
    if remembered is None or remembered[0] != key:
        remembered = _CENSUSES[model] = (key, _census(model, example))
    return remembered[1]


def _refuse(calls: list[ActivationCall]) -> None:
    bad = [c for c in calls if c.rule == "unguided"]
    if bad:
        sites = "\n".join(f"  {c.site}" + ("" if c.function in c.site else f" ({c.function})")
                          for c in bad)
        raise UnguidedActivationError(
            f"{len(bad)} of {len(calls)} activation calls have no guided rule; Guided "
            f"Backprop would pass their plain gradient:\n{sites}")


def activation_census(model: nn.Module, example: torch.Tensor) -> list[ActivationCall]:
    r"""Every activation call of one forward pass of ``model`` on ``example``, in call order.

    Args:

        model (nn.Module): Run once in eval mode (restored afterwards) with temporary hooks.
        example (Tensor): A model input, typically one row.

    Returns:
        list[ActivationCall]: Calls by a leaf module are named by its qualified name and count
        (``_blocks.3._relu, call 2 of 3``), other calls by the innermost module running and the
        function (``Mixed_5b.branch1x1: torch.nn.functional.relu``, counted when repeated).
    """
    with explaining(model):
        return _census(model, example)


def guided_backprop(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor,
                    max_rows: int = 256) -> torch.Tensor:
    r"""Guided Backprop maps: d logit[target] / d input with the guided rule at every rectifier.

    Args:

        model (nn.Module): Maps a batch to logits (B, classes). It is not modified: eval mode and
                    frozen parameters during the call, every flag restored afterwards.
        inputs (Tensor): Batch (B, ...). The result is on its device.
        target (Tensor): Class per row, integer tensor of shape (B,).
        max_rows (int, optional): At most this many rows per forward/backward pass.

    Returns:
        Tensor: Attributions shaped like ``inputs``.

    Raises:
        UnguidedActivationError: if the census of the first row finds an activation without a
                    guided rule; the message lists the call sites.
    """
    if target.shape != (len(inputs),) or target.is_floating_point():
        raise ValueError(f"target must be an integer tensor of shape ({len(inputs)},), got "
                         f"{tuple(target.shape)} {target.dtype}")
    if max_rows < 1:
        raise ValueError(f"max_rows must be positive, got {max_rows}")
    if len(inputs) == 0:
        return torch.zeros_like(inputs)
    device = next(iter(model.parameters()), inputs).device
    maps = []
    with explaining(model):
        _refuse(_census_once(model, inputs[:1].to(device)))
        unguided: list[str] = []  # what the passes call without a rule (the census saw none)

        def note(function: str, rule: str) -> None:
            if rule == "unguided":
                unguided.append(function)

        for start in range(0, len(inputs), max_rows):
            x = inputs[start:start + max_rows].detach().to(device).requires_grad_(True)
            rows = target[start:start + max_rows].to(device=device, dtype=torch.long)
            with torch.enable_grad(), _GuidedMode(note):
                logits = model(x.clone())  # the clone lets a first in-place op run
            if unguided:  # a call the remembered census did not see: name it from a new one
                _CENSUSES.pop(model, None)
                _refuse(_census(model, x[:1].detach()))
                raise UnguidedActivationError(f"activation calls without a guided rule: "
                                              f"{', '.join(unguided)}")
            if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
                raise TypeError("guided_backprop needs a model returning logits (B, classes)")
            (grad,) = torch.autograd.grad(logits.gather(1, rows[:, None]).sum(), x)
            maps.append(grad.to(inputs.device))
    return torch.cat(maps)
