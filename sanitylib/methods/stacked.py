"""Several copies of one architecture (say, every step of a randomization run) explained in one
vectorized call, so that a small model fills a large device (issue 15).

The copies' weights are stacked (``torch.func.stack_module_state``) and every pass evaluates
all of them on the same rows with ``vmap`` over ``functional_call``; ``torch.func.grad`` gives
each copy's gradient and, from the same forward pass, its predictions. The points a gradient
is taken at do not depend on the model for Gradient, Gradient ⊙ Input and Integrated Gradients
(:data:`STACKABLE`), so one batch of points serves every copy. Guided Backprop and GradCAM hook
into modules, and the noisy methods are left to :mod:`sanitylib.methods.saliency`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from sanitylib.infra.device import module_device
from sanitylib.methods.gradients import baseline_batch, times_input
from sanitylib.methods.registry import ALL_METHODS, method_spec
from sanitylib.methods.saliency import max_rows_per_pass

__all__ = ["STACKABLE", "stacked_explain"]

#: The methods :func:`stacked_explain` computes (each copy's maps equal its own ``explain``):
#: those whose spec is ``stackable``.
STACKABLE = tuple(m for m in ALL_METHODS if method_spec(m).stackable)


class _Stack:
    """The stacked weights of ``models`` and a weightless skeleton to call them through."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        if len({repr(m) for m in models}) != 1:
            raise ValueError("stacked_explain needs models of one architecture")
        self.params, self.buffers = stack_module_state(list(models))
        self.params = {k: v.detach() for k, v in self.params.items()}
        self.skeleton = copy.deepcopy(models[0]).to("meta").eval()

    def gradients(self, points: torch.Tensor, targets: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, R, ...) gradients of each copy's target logit at the same R points, and (K, R)
        predictions; ``targets`` (K, R), or None for each copy's own argmax."""
        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                chosen: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
            def selected(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                logits = functional_call(self.skeleton, (params, buffers), (x,))
                predicted = logits.argmax(1)
                rows = predicted if chosen is None else chosen
                return logits.gather(1, rows[:, None]).sum(), predicted
            return grad(selected, has_aux=True)(points)

        return vmap(one, in_dims=(0, 0, None if targets is None else 0))(
            self.params, self.buffers, targets)


def stacked_explain(models: Sequence[nn.Module], inputs: torch.Tensor, methods: Sequence[str],
                    target: torch.Tensor | None = None,
                    options: Mapping[str, Mapping[str, object]] | None = None
                    ) -> tuple[list[dict[str, torch.Tensor]], torch.Tensor]:
    """``explain_and_predict`` for every one of ``models`` at once: ``[{method: maps}]`` per
    model and the (K, B) predictions, all on the inputs' device.

    ``target``: None (each model's own argmax), (B,) for all models, or (K, B). Settings as in
    :func:`sanitylib.methods.saliency.explain`; ``max_rows`` bounds the rows of all copies
    together in one pass.
    """
    refused = [m for m in methods if m not in STACKABLE]
    if refused:
        raise ValueError(f"stacked_explain cannot compute {refused}; valid choices: "
                         f"{', '.join(STACKABLE)}")
    options = options or {}
    settings = {m: method_spec(m).resolve(options.get(m)) for m in methods}
    k = len(models)
    device = module_device(models[0])
    x = inputs.detach().to(device)
    rows = max_rows_per_pass(x, settings)
    per_pass = max(1, rows // k)  # points per pass: every copy sees each of them
    stack = _Stack(models)
    targets = None
    if target is not None:
        targets = torch.as_tensor(target).to(device).long().expand(k, len(x))
    grads, predictions = _chunked(stack, x, targets, per_pass)
    targets = predictions if targets is None else targets
    maps: dict[str, torch.Tensor] = {}
    for method in methods:
        if method == "gradient":
            maps[method] = grads
        elif method == "gradient_x_input":
            maps[method] = times_input(grads, x, settings[method]["baseline"])  # type: ignore[arg-type]
        else:
            maps[method] = _stacked_ig(stack, x, targets, settings[method], per_pass)
    return ([{m: v[i].to(inputs.device) for m, v in maps.items()} for i in range(k)],
            predictions.to(inputs.device))


def _chunked(stack: _Stack, x: torch.Tensor, targets: torch.Tensor | None, per_pass: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [stack.gradients(x[i:i + per_pass],
                             None if targets is None else targets[:, i:i + per_pass])
             for i in range(0, len(x), per_pass)]
    return torch.cat([g for g, _ in parts], 1), torch.cat([p for _, p in parts], 1)


def _stacked_ig(stack: _Stack, x: torch.Tensor, targets: torch.Tensor,
                settings: Mapping[str, object], per_pass: int) -> torch.Tensor:
    """Integrated Gradients of every copy, the path points shared: whole images per pass when
    their steps fit, else one image's steps in pieces (as ``explain`` does)."""
    steps, base = int(settings["steps"]), baseline_batch(settings["baseline"], x)
    alphas = torch.linspace(0.0, 1.0, steps, dtype=x.dtype).to(x.device)
    shape = (-1, *[1] * (x.ndim - 1))
    k = targets.shape[0]
    mean = torch.empty((k, *x.shape), dtype=x.dtype, device=x.device)
    images = max(1, per_pass // steps)
    for i in range(0, len(x), images):
        xi, bi = x[i:i + images], base[i:i + images]
        n = len(xi)
        total = torch.zeros((k, n, *x.shape[1:]), dtype=x.dtype, device=x.device)
        for s in range(0, steps, max(1, per_pass // n)):
            a = alphas[s:s + max(1, per_pass // n)]
            points = (bi.unsqueeze(1) + a.view(1, *shape) * (xi - bi).unsqueeze(1)).flatten(0, 1)
            chosen = targets[:, i:i + n].repeat_interleave(len(a), dim=1)
            grads, _ = stack.gradients(points, chosen)
            total += grads.view(k, n, len(a), *x.shape[1:]).sum(2)
        mean[:, i:i + n] = total / steps
    if settings["multiply_by_inputs"]:
        return mean * (x - base)
    return mean
