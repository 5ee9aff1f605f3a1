"""The gradient-based maps of Adebayo et al. (2018), Section 2, one function per method.

Each takes ``(model, x, targets, *, max_rows, **settings)`` and returns maps shaped like ``x``
(the call convention of :mod:`sanitylib.methods.registry`):

- :func:`gradient`: d logit[target] / d input (Simonyan et al. 2014,
  https://arxiv.org/abs/1312.6034);
- :func:`gradient_x_input`: the gradient times ``x - baseline`` (Shrikumar et al. 2016,
  https://arxiv.org/abs/1605.01713);
- :func:`integrated_gradients`: the mean gradient along ``linspace(0, 1, steps)`` (both ends) from
  the baseline, times ``x - baseline`` (Sundararajan et al. 2017, https://arxiv.org/abs/1703.01365);
  Captum's Riemann rules do not weigh those points uniformly, so the sum is written here;
- :func:`smoothgrad`, :func:`vargrad`, :func:`ig_smoothgrad`: the mean, the variance and the mean
  IG over noisy copies with sigma = ``noise_level * (max - min)`` of each image (Smilkov et al.
  2017, https://arxiv.org/abs/1706.03825; Adebayo et al. 2018); Captum's NoiseTunnel takes one
  sigma per batch, so the sampling is written here;
- :func:`gradcam` (Captum's ``LayerGradCam``, bilinearly upsampled; Selvaraju et al. 2017,
  https://arxiv.org/abs/1610.02391) and :func:`guided_gradcam` (times
  :func:`sanitylib.methods.guided.guided_backprop`).

Interpolation steps, noise samples and images are evaluated together in passes of at most
``max_rows`` model inputs; a sum over an image's rows never depends on how they were chunked.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from sanitylib.infra.device import randn
from sanitylib.methods.guided import guided_backprop
from sanitylib.models.under_test import submodule

__all__ = ["baseline_batch", "gradcam", "gradient", "gradient_and_prediction", "gradient_x_input",
           "guided_gradcam", "ig_smoothgrad", "integrated_gradients", "noisy_gradients",
           "smoothgrad", "times_input", "vargrad"]


def baseline_batch(baseline: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """``baseline`` as a (B, ...) view on ``x``'s device: a number, one input's shape, or one per
    input; any other shape is refused with the valid ones."""
    base = torch.as_tensor(baseline, dtype=x.dtype).to(x.device)
    if base.shape == x.shape:
        return base
    if base.ndim < x.ndim or (base.ndim == x.ndim and base.shape[0] == 1):
        try:
            return torch.broadcast_to(base, x.shape)
        except RuntimeError:
            pass
    raise ValueError(f"baseline has shape {tuple(base.shape)}; expected a number, one input's "
                     f"shape {tuple(x.shape[1:])} or one per input {tuple(x.shape)}")


def _add_segment_sums(total: torch.Tensor, values: torch.Tensor, start: int,
                      per_image: int) -> None:
    """Add to ``total[i]`` the sum of the rows of ``values`` that belong to image ``i``, where
    ``values`` holds the flat rows ``start ...`` of an image-major layout with ``per_image``
    rows per image: a partial first image, whole images, a partial last image (three sums, in a
    fixed order, so the result does not depend on the device's scheduling)."""
    first = start // per_image
    head = min(len(values), (first + 1) * per_image - start)
    total[first] += values[:head].sum(0)
    whole = (len(values) - head) // per_image
    if whole:
        middle = values[head:head + whole * per_image]
        total[first + 1:first + 1 + whole] += middle.view(whole, per_image,
                                                          *values.shape[1:]).sum(1)
    rest = head + whole * per_image
    if rest < len(values):
        total[first + 1 + whole] += values[rest:].sum(0)


class _Noise:
    """Gaussian noise of sigma ``noise_level * (max - min)`` of each image: image ``i`` of the
    call always draws its ``samples`` copies from the CPU generator ``seed + i`` (so results
    depend neither on chunking nor on the device), drawn when a pass first needs them."""

    def __init__(self, x: torch.Tensor, samples: int, noise_level: float, seed: int) -> None:
        self.x, self.samples, self.seed = x, samples, seed
        flat = x.flatten(1)
        self.sigma = (flat.amax(1) - flat.amin(1)) * noise_level
        self.drawn: dict[int, torch.Tensor] = {}

    def rows(self, images: torch.Tensor, copies: torch.Tensor) -> torch.Tensor:
        """The noise of copy ``copies[r]`` of image ``images[r]``, for every row ``r``."""
        first, last = int(images[0]), int(images[-1])
        for i in [i for i in self.drawn if i < first]:
            del self.drawn[i]
        for i in range(first, last + 1):
            if i not in self.drawn:
                draw = randn((self.samples, *self.x.shape[1:]), self.seed + i, dtype=self.x.dtype)
                self.drawn[i] = draw.to(self.x.device) * self.sigma[i]
        block = torch.stack([self.drawn[i] for i in range(first, last + 1)])
        return block[images - first, copies]


def _summed_gradients(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, per_image: int,
                      rows: int, points: Callable[[torch.Tensor, torch.Tensor],
                                                  tuple[torch.Tensor, torch.Tensor | None]],
                      squares: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per image, the sum over its ``per_image`` rows of ``factor * gradient`` (and of the
    squared gradient in float64 when ``squares``), every pass but the last exactly ``rows``
    rows: ``points(images, subs)`` gives the model inputs of the rows (image index, row within
    the image) and a factor (or None)."""
    total = torch.zeros_like(x)
    total_sq = torch.zeros(x.shape, dtype=torch.float64, device=x.device) if squares else None
    n = len(x) * per_image
    for start in range(0, n, rows):
        flat = torch.arange(start, min(start + rows, n), device=x.device)
        images, subs = flat // per_image, flat % per_image
        inputs, factor = points(images, subs)
        grads = _gradients_at(model, inputs, targets[images], rows)
        _add_segment_sums(total, grads if factor is None else grads * factor, start, per_image)
        if total_sq is not None:
            _add_segment_sums(total_sq, grads.double() ** 2, start, per_image)
    return total, total_sq


def _path_mean_gradient(model: nn.Module, x: torch.Tensor, targets: torch.Tensor,
                        base: torch.Tensor, steps: int, rows: int) -> torch.Tensor:
    """Mean gradient over ``base + a (x - base)``, ``a`` in ``linspace(0, 1, steps)`` (both
    ends), the (image, step) rows in passes of ``rows``."""
    alphas = torch.linspace(0.0, 1.0, steps, dtype=x.dtype).to(x.device)
    shape = (-1, *[1] * (x.ndim - 1))

    def points(images: torch.Tensor, subs: torch.Tensor) -> tuple[torch.Tensor, None]:
        b = base[images]
        return b + alphas[subs].view(shape) * (x[images] - b), None

    return _summed_gradients(model, x, targets, steps, rows, points)[0] / steps


def noisy_gradients(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *,
                    samples: int, noise_level: float, seed: int, max_rows: int,
                    variance: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The mean gradient over ``samples`` noisy copies of every image (SmoothGrad) and, with
    ``variance``, its variance from the same passes (VarGrad): E[g^2] - E[g]^2 summed in float64,
    so the difference loses nothing at float32 precision."""
    noise = _Noise(x, samples, noise_level, seed)

    def noisy(images: torch.Tensor, subs: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x[images] + noise.rows(images, subs), None

    total, total_sq = _summed_gradients(model, x, targets, samples, max_rows, noisy,
                                        squares=variance)
    if total_sq is None:
        return total / samples, None
    mean = total.double() / samples
    return total / samples, (total_sq / samples - mean ** 2).clamp_min(0).to(x.dtype)


def times_input(gradients: torch.Tensor, x: torch.Tensor,
                baseline: torch.Tensor | float = 0.0) -> torch.Tensor:
    """``gradients * (x - baseline)``: the input measured from the baseline."""
    if isinstance(baseline, float) and baseline == 0.0:
        return gradients * x
    return gradients * (x - baseline_batch(baseline, x))


def gradient(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *,
             max_rows: int = 256) -> torch.Tensor:
    """d logit[target] / d input (the paper's "Gradient")."""
    return gradient_and_prediction(model, x, targets, max_rows)[0]


def gradient_x_input(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *,
                     baseline: torch.Tensor | float = 0.0, max_rows: int = 256) -> torch.Tensor:
    """The gradient times ``x - baseline`` (zero by default: times the input)."""
    return times_input(gradient(model, x, targets, max_rows=max_rows), x, baseline)


def integrated_gradients(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *,
                         steps: int = 50, baseline: torch.Tensor | float = 0.0,
                         multiply_by_inputs: bool = True, max_rows: int = 256) -> torch.Tensor:
    """The mean gradient over ``baseline + a (x - baseline)``, ``a`` in ``linspace(0, 1, steps)``,
    times ``x - baseline`` (global IG) or not (``multiply_by_inputs=False``: local IG, Kokhlikyan
    et al. 2021)."""
    base = baseline_batch(baseline, x)
    mean = _path_mean_gradient(model, x, targets, base, steps, max_rows)
    return mean * (x - base) if multiply_by_inputs else mean


def smoothgrad(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *, samples: int = 50,
               noise_level: float = 0.15, seed: int = 0, max_rows: int = 256) -> torch.Tensor:
    """The mean gradient over noisy copies; image ``i`` draws from seed ``seed + i``."""
    return noisy_gradients(model, x, targets, samples=samples, noise_level=noise_level,
                           seed=seed, max_rows=max_rows)[0]


def vargrad(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *, samples: int = 50,
            noise_level: float = 0.15, seed: int = 0, max_rows: int = 256) -> torch.Tensor:
    """The variance of the gradient over noisy copies (Adebayo et al. 2018)."""
    variance = noisy_gradients(model, x, targets, samples=samples, noise_level=noise_level,
                               seed=seed, max_rows=max_rows, variance=True)[1]
    assert variance is not None
    return variance


def ig_smoothgrad(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *, steps: int = 50,
                  baseline: torch.Tensor | float = 0.0, multiply_by_inputs: bool = True,
                  samples: int = 50, noise_level: float = 0.15, seed: int = 0,
                  max_rows: int = 256) -> torch.Tensor:
    """Integrated Gradients averaged over noisy copies: the (image, copy, step) rows together."""
    noise = _Noise(x, samples, noise_level, seed)
    shape = (-1, *[1] * (x.ndim - 1))
    base = baseline_batch(baseline, x)
    alphas = torch.linspace(0.0, 1.0, steps, dtype=x.dtype).to(x.device)

    def path(images: torch.Tensor, subs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        b = base[images]
        moved = x[images] + noise.rows(images, subs // steps) - b
        return b + alphas[subs % steps].view(shape) * moved, moved if multiply_by_inputs else None

    total = _summed_gradients(model, x, targets, samples * steps, max_rows, path)[0]
    return total / (samples * steps)


def gradcam(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *,
            layer: nn.Module | str, relu_attributions: bool = True,
            max_rows: int = 256) -> torch.Tensor:
    """Captum's GradCAM on ``layer`` (a module or a submodule path of ``model``), bilinearly
    upsampled to the input and repeated over its channels."""
    layer = layer if isinstance(layer, nn.Module) else submodule(model, layer)
    cam = LayerGradCam(model, layer)
    maps = torch.cat([cam.attribute(x[i:i + max_rows].clone().requires_grad_(),
                                    target=targets[i:i + max_rows],
                                    relu_attributions=relu_attributions).detach()
                      for i in range(0, len(x), max_rows)])
    maps = LayerAttribution.interpolate(maps, tuple(x.shape[2:]), interpolate_mode="bilinear")
    return maps.expand_as(x).contiguous()


def guided_gradcam(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *,
                   layer: nn.Module | str, relu_attributions: bool = True,
                   max_rows: int = 256) -> torch.Tensor:
    """Guided Backprop times GradCAM (Selvaraju et al. 2017)."""
    return guided_backprop(model, x, targets, max_rows=max_rows) * gradcam(
        model, x, targets, layer=layer, relu_attributions=relu_attributions, max_rows=max_rows)


def gradient_and_prediction(model: nn.Module, x: torch.Tensor, targets: torch.Tensor | None,
                             rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """d logit[target] / d input and the argmax logit of every row, from the same forward pass
    (``targets`` None: each row's own argmax). Written here rather than through Captum's
    Saliency, which computes the same gradient but does not return the forward's logits, so
    the prediction would cost a second pass."""
    grads, predictions = [], []
    for i in range(0, len(x), rows):
        xi = x[i:i + rows].clone().requires_grad_()
        with torch.enable_grad():
            logits = model(xi)
            if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
                raise TypeError("explain needs a model returning logits (B, classes)")
            predicted = logits.detach().argmax(1)
            chosen = predicted if targets is None else targets[i:i + rows]
            (grad,) = torch.autograd.grad(logits.gather(1, chosen[:, None]).sum(), xi)
        grads.append(grad)
        predictions.append(predicted)
    return torch.cat(grads), torch.cat(predictions)


def _gradients_at(model: nn.Module, points: torch.Tensor, targets: torch.Tensor,
               max_rows: int) -> torch.Tensor:
    """d logit[target] / d input at every row of ``points``, in chunks of ``max_rows``."""
    return gradient_and_prediction(model, points, targets, max_rows)[0]
