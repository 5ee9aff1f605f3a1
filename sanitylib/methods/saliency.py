"""The saliency methods of Adebayo et al. (2018), Section 2, behind one call.

``explain(model, inputs, method)`` returns a map shaped like ``inputs`` for each of
:data:`METHODS`. Defaults follow the original code (the book's reference page): Integrated Gradients with 50
steps from a zero baseline along ``linspace(0, 1, 50)`` (both ends) times ``(x - baseline)``;
SmoothGrad and VarGrad with 50 noisy copies and sigma = 0.15 * (max - min) of each image; GradCAM
on the last conv block with a ReLU and bilinear upsampling. The class explained is by default the
argmax logit of the model being explained; pass ``target`` to fix it.

Single gradients and GradCAM come from Captum; Guided Backprop from
:mod:`sanitylib.methods.guided`, which guides every rectifier call (Captum hooks only ``nn.ReLU``
modules). The sampling around them is written
here because Captum lacks the original settings: its Riemann rules do not weigh
``linspace(0, 1, n)`` uniformly, and its NoiseTunnel takes one sigma for the whole batch where the
paper scales it per image. Interpolation steps, noise samples and images are evaluated together in
chunks of at most ``max_rows`` model inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from captum.attr import LayerAttribution, LayerGradCam, Saliency
from torch import nn

from sanitylib.methods.attribution import ATTRIBUTIONS, FOLLOWUP_LABELS, FOLLOWUP_METHODS
from sanitylib.methods.guided import guided_backprop
from sanitylib.models.under_test import ModelUnderTest, model_under_test, submodule

__all__ = ["ALL_METHODS", "LABELS", "METHODS", "explain", "explaining", "predicted_class"]

METHODS = ("gradient", "gradient_x_input", "integrated_gradients", "smoothgrad",
           "ig_smoothgrad", "vargrad", "guided_backprop", "gradcam", "guided_gradcam")

LABELS = {"gradient": "Gradient", "gradient_x_input": "Gradient ⊙ Input",
          "integrated_gradients": "Integrated Gradients", "smoothgrad": "SmoothGrad",
          "ig_smoothgrad": "IG-SmoothGrad", "vargrad": "VarGrad",
          "guided_backprop": "Guided BackProp", "gradcam": "GradCAM",
          "guided_gradcam": "Guided GradCAM", **FOLLOWUP_LABELS}
#: The paper's methods and the follow-ups' (:mod:`sanitylib.methods.attribution`).
ALL_METHODS = METHODS + FOLLOWUP_METHODS

#: Rough activation memory per byte of input for one forward and backward pass.
_BYTES_PER_INPUT_BYTE = 200


@contextmanager
def explaining(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients while explaining; restores both afterwards."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


# Rows per pass are also capped: on a CPU, batches of thousands of small images run slower per
# row than batches of a few hundred (activations fall out of cache); measured on the MNIST CNN
# with 2 threads, 800-row passes gave 25 explanations/s and 128-256-row passes 38.
_MAX_ROWS_PER_PASS = 256


def _default_max_rows(inputs: torch.Tensor, memory_mb: float) -> int:
    per_row = inputs[0].numel() * inputs.element_size() * _BYTES_PER_INPUT_BYTE
    return max(1, min(_MAX_ROWS_PER_PASS, int(memory_mb * 2**20 // per_row)))


@torch.no_grad()
def predicted_class(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                    *forward_args: torch.Tensor, max_rows: int = 256) -> torch.Tensor:
    """The argmax logit of ``model`` for each input, in chunks of ``max_rows``.

    ``forward_args`` are further per-row model arguments (a text model's attention mask).
    """
    module = model.module if isinstance(model, ModelUnderTest) else model
    with explaining(module):
        return torch.cat([module(inputs[i:i + max_rows], *(a[i:i + max_rows] for a in forward_args))
                          .argmax(1) for i in range(0, len(inputs), max_rows)])


def _resolve_target(model: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor | None,
                    max_rows: int) -> torch.Tensor:
    if target is None:
        return predicted_class(model, inputs, max_rows=max_rows)
    target = torch.as_tensor(target, dtype=torch.long)
    if target.ndim == 0:
        return target.expand(len(inputs)).clone()
    if target.shape != (len(inputs),):
        raise ValueError(f"target has shape {tuple(target.shape)}; expected an int or one label "
                         f"per input ({len(inputs)})")
    return target


def _row_gradients(model: nn.Module, points: torch.Tensor, targets: torch.Tensor,
                   max_rows: int) -> torch.Tensor:
    """d logit[target] / d input at every row of ``points``, in chunks (Captum's Saliency)."""
    saliency = Saliency(model)
    return torch.cat([saliency.attribute(points[i:i + max_rows].clone().requires_grad_(),
                                         target=targets[i:i + max_rows], abs=False).detach()
                      for i in range(0, len(points), max_rows)])


def _integrated_gradients(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, steps: int,
                          baseline: torch.Tensor, multiply_by_inputs: bool,
                          max_rows: int) -> torch.Tensor:
    """Mean gradient over ``linspace(0, 1, steps)`` (both ends), times (x - baseline) if global."""
    alphas = torch.linspace(0.0, 1.0, steps, dtype=x.dtype).view(steps, 1, *[1] * (x.ndim - 1))
    points = (baseline + alphas * (x - baseline)).reshape(steps * len(x), *x.shape[1:])
    grads = _row_gradients(model, points, targets.repeat(steps), max_rows)
    mean = grads.view(steps, *x.shape).mean(0)
    return mean * (x - baseline) if multiply_by_inputs else mean


def _noise(x: torch.Tensor, samples: int, noise_level: float, seed: int,
           first_index: int) -> torch.Tensor:
    """(samples, B, ...) Gaussian noise, sigma = noise_level * (max - min) of each image.

    Image ``i`` of the whole call always gets the noise of generator ``seed + i``, so results do not
    depend on how images are chunked.
    """
    spread = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(1, -1, *[1] * (x.ndim - 1))
    noise = torch.stack([torch.randn((samples, *x.shape[1:]), dtype=x.dtype,
                                     generator=torch.Generator().manual_seed(seed + first_index + i))
                         for i in range(len(x))], dim=1)
    return noise * noise_level * spread


def _gradcam(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, layer: nn.Module,
             relu: bool, max_rows: int) -> torch.Tensor:
    cam = LayerGradCam(model, layer)
    maps = torch.cat([cam.attribute(x[i:i + max_rows].clone().requires_grad_(),
                                    target=targets[i:i + max_rows],
                                    relu_attributions=relu).detach()
                      for i in range(0, len(x), max_rows)])
    maps = LayerAttribution.interpolate(maps, tuple(x.shape[2:]), interpolate_mode="bilinear")
    return maps.expand_as(x).contiguous()


def _gradcam_layer(model: ModelUnderTest | nn.Module, layer: str | nn.Module | None
                   ) -> nn.Module:
    """GradCAM's layer: ``layer`` (a module or submodule path), else the model's own."""
    module = model.module if isinstance(model, ModelUnderTest) else model
    if isinstance(layer, nn.Module):
        return layer
    if layer is None:
        subject = model_under_test(model)
        if subject.gradcam_layer is None:
            raise ValueError(f"GradCAM needs a conv layer and {subject.name} names none; pass "
                             "layer= (a module or submodule path)")
        layer = subject.gradcam_layer
    return submodule(module, layer)


def explain(model: ModelUnderTest | nn.Module, inputs: torch.Tensor, method: str,
            target: int | torch.Tensor | None = None, *, steps: int = 50,
            baseline: torch.Tensor | float = 0.0, multiply_by_inputs: bool = True,
            samples: int = 50, noise_level: float = 0.15, seed: int = 0,
            layer: str | nn.Module | None = None, relu_attributions: bool = True,
            max_rows: int | None = None, memory_mb: float = 2048.0) -> torch.Tensor:
    """Explain ``model``'s logit for ``target`` at each of ``inputs`` with ``method``.

    Args:
        model: a classifier returning logits (B, classes), or a :class:`ModelUnderTest` around
            one. It is not modified.
        inputs: a batch (B, C, H, W) or (B, features).
        method: one of :data:`ALL_METHODS`.
        target: None (each input's argmax logit under ``model``), one int, or one label per input.
        steps, baseline: Integrated Gradients' interpolation steps and baseline.
        multiply_by_inputs: global IG (times x - baseline) or local IG (Kokhlikyan et al.), also
            for IG-SmoothGrad.
        samples, noise_level, seed: SmoothGrad / VarGrad / IG-SmoothGrad noise; sigma is
            ``noise_level * (max - min)`` of each image. ``samples`` and ``seed`` (and
            ``baseline``) also serve Gradient SHAP, ``baseline`` DeepLift.
        layer: GradCAM's layer (a module, as in Captum, or a submodule path); defaults to the
            model under test's ``gradcam_layer``.
        relu_attributions: GradCAM's ReLU on the map.
        max_rows, memory_mb: at most ``max_rows`` inputs per forward pass; by default derived
            from ``memory_mb``, and at most 256.

    Returns:
        Attributions shaped like ``inputs`` (GradCAM's single map repeated over channels).
    """
    if method not in ALL_METHODS:
        raise ValueError(f"unknown method {method!r}; valid choices: {', '.join(ALL_METHODS)}")
    if inputs.ndim < 2:
        raise ValueError(f"inputs must be a batch (B, ...); got shape {tuple(inputs.shape)}")
    if method in ("smoothgrad", "vargrad", "ig_smoothgrad") and samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    rows = max_rows or _default_max_rows(inputs, memory_mb)
    cam_layer = _gradcam_layer(model, layer) if method in ("gradcam", "guided_gradcam") else None
    model = model.module if isinstance(model, ModelUnderTest) else model
    x = inputs.detach()
    base = torch.as_tensor(baseline, dtype=x.dtype).expand_as(x[:1]).expand_as(x)
    with explaining(model):
        targets = _resolve_target(model, x, target, rows)
        if method in ATTRIBUTIONS:
            return ATTRIBUTIONS[method](model, x, targets, baseline=base, samples=samples,
                                        seed=seed, max_rows=rows)
        if method in ("gradient", "gradient_x_input"):
            grads = _row_gradients(model, x, targets, rows)
            return grads * x if method == "gradient_x_input" else grads
        if method == "integrated_gradients":
            chunk = max(1, rows // steps)
            return torch.cat([_integrated_gradients(model, x[i:i + chunk], targets[i:i + chunk],
                                                    steps, base[i:i + chunk], multiply_by_inputs,
                                                    rows) for i in range(0, len(x), chunk)])
        if method in ("smoothgrad", "vargrad", "ig_smoothgrad"):
            return _noisy(model, x, targets, method, samples, noise_level, seed, steps, base,
                          multiply_by_inputs, rows)
        if method == "gradcam":
            return _gradcam(model, x, targets, cam_layer, relu_attributions, rows)
        gbp = guided_backprop(model, x, targets, max_rows=rows)
        if method == "guided_backprop":
            return gbp
        return gbp * _gradcam(model, x, targets, cam_layer, relu_attributions, rows)


def _noisy(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str, samples: int,
           noise_level: float, seed: int, steps: int, base: torch.Tensor,
           multiply_by_inputs: bool, rows: int) -> torch.Tensor:
    """SmoothGrad (mean), VarGrad (variance) or IG-SmoothGrad (mean IG) over noisy copies."""
    per_image = samples * (steps if method == "ig_smoothgrad" else 1)
    chunk = max(1, rows // per_image)
    out = []
    for i in range(0, len(x), chunk):
        xi, ti = x[i:i + chunk], targets[i:i + chunk]
        noisy = (xi.unsqueeze(0) + _noise(xi, samples, noise_level, seed, i)).flatten(0, 1)
        rep_t = ti.repeat(samples)
        if method == "ig_smoothgrad":
            rep_b = base[i:i + chunk].repeat(samples, *[1] * (x.ndim - 1))
            maps = _integrated_gradients(model, noisy, rep_t, steps, rep_b, multiply_by_inputs,
                                         rows)
        else:
            maps = _row_gradients(model, noisy, rep_t, rows)
        maps = maps.view(samples, *xi.shape)
        out.append(maps.var(0, unbiased=False) if method == "vargrad" else maps.mean(0))
    return torch.cat(out)
