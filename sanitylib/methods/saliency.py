"""The saliency methods of Adebayo et al. (2018), Section 2, behind one call.

``explain(model, inputs, method)`` returns a map shaped like ``inputs`` for each of
:data:`METHODS`. Defaults follow the original code (the book's reference page): Integrated Gradients with 50
steps from a zero baseline along ``linspace(0, 1, 50)`` (both ends) times ``(x - baseline)``;
SmoothGrad and VarGrad with 50 noisy copies and sigma = 0.15 * (max - min) of each image; GradCAM
on the last conv block with a ReLU and bilinear upsampling. The class explained is by default the
argmax logit of the model being explained; pass ``target`` to fix it.

GradCAM comes from Captum; the plain gradient is taken here (the same forward, target
selection and ``autograd.grad`` as Captum's Saliency) because its forward pass also gives the
predictions, which Saliency does not return; Guided Backprop comes from
:mod:`sanitylib.methods.guided`, which guides every rectifier call (Captum hooks only ``nn.ReLU``
modules). The sampling around them is written
here because Captum lacks the original settings: its Riemann rules do not weigh
``linspace(0, 1, n)`` uniformly, and its NoiseTunnel takes one sigma for the whole batch where the
paper scales it per image. Interpolation steps, noise samples and images are evaluated together in
chunks of at most ``max_rows`` model inputs; :func:`explain_methods` makes the computations several
methods share once. Work follows the model's device (:mod:`sanitylib.infra.device`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from sanitylib.infra.device import module_device, randn
from sanitylib.methods.attribution import ATTRIBUTIONS, FOLLOWUP_LABELS, FOLLOWUP_METHODS
from sanitylib.methods.frozen import explaining, predicted_class
from sanitylib.methods.guided import guided_backprop
from sanitylib.models.under_test import ModelUnderTest, model_under_test, submodule

__all__ = ["ALL_METHODS", "DEFAULTS", "LABELS", "METHODS", "baseline_batch", "explain",
           "explain_and_predict", "explain_methods", "explaining", "max_rows_per_pass",
           "predicted_class"]

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

#: Every keyword setting of :func:`explain` with its default (:func:`explain_methods` takes them
#: per method).
DEFAULTS: dict[str, object] = {
    "steps": 50, "baseline": 0.0, "multiply_by_inputs": True, "samples": 50,
    "noise_level": 0.15, "seed": 0, "layer": None, "relu_attributions": True,
    "max_rows": None, "memory_mb": 2048.0}


# On a CPU, rows per pass are also capped: large batches run slower per row than small ones
# once their activations fall out of cache. Measured with 2 threads: the MNIST CNN gave 25
# explanations/s with 800-row passes and 38 with 128-256 rows; EfficientNet-Lite0 (224 x 224)
# ran 26-31 rows/s in passes of 6-15 rows and 14-17 rows/s in passes of 30. So a CPU pass holds
# at most 256 rows and at most 8 MB of input. A GPU takes as many rows as ``memory_mb`` allows.
_MAX_ROWS_PER_CPU_PASS = 256
_MAX_INPUT_BYTES_PER_CPU_PASS = 8 * 2**20


def _default_max_rows(inputs: torch.Tensor, memory_mb: float) -> int:
    row_bytes = inputs[0].numel() * inputs.element_size()
    rows = max(1, int(memory_mb * 2**20 // (row_bytes * _BYTES_PER_INPUT_BYTE)))
    if inputs.device.type != "cpu":
        return rows
    return max(1, min(rows, _MAX_ROWS_PER_CPU_PASS, _MAX_INPUT_BYTES_PER_CPU_PASS // row_bytes))


def max_rows_per_pass(x: torch.Tensor, settings: Mapping[str, Mapping[str, object]]) -> int:
    """The rows one forward-backward pass may hold when ``settings`` (method -> its settings,
    :data:`DEFAULTS` filled in) share passes over ``x`` (on the device the passes run on): the
    smallest ``max_rows``, where a method leaves it unset the rows that fit in its ``memory_mb``
    (on the CPU also at most 256 rows and 8 MB of input)."""
    return min((int(s["max_rows"] or _default_max_rows(x, float(s["memory_mb"])))
                for s in settings.values()), default=_default_max_rows(x, 2048.0))


def _resolve_target(model: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor | None,
                    max_rows: int) -> torch.Tensor:
    if target is None:
        return predicted_class(model, inputs, max_rows=max_rows)
    target = torch.as_tensor(target, dtype=torch.long).to(inputs.device)
    if target.ndim == 0:
        return target.expand(len(inputs)).clone()
    if target.shape != (len(inputs),):
        raise ValueError(f"target has shape {tuple(target.shape)}; expected an int or one label "
                         f"per input ({len(inputs)})")
    return target


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
        grads = _gradients(model, inputs, targets[images], rows)
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


def _noisy(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str,
           settings: Mapping[str, object], rows: int) -> torch.Tensor:
    """SmoothGrad (mean), or SmoothGrad and VarGrad (mean and variance, stacked on a new first
    dimension, from the same passes) for ``vargrad``, or IG-SmoothGrad (mean IG) over noisy
    copies, the (image, copy[, step]) rows in passes of ``rows``. VarGrad is E[g^2] - E[g]^2
    summed in float64, so the difference loses nothing at float32 precision."""
    samples, steps = int(settings["samples"]), int(settings["steps"])
    noise = _Noise(x, samples, float(settings["noise_level"]), int(settings["seed"]))
    shape = (-1, *[1] * (x.ndim - 1))
    if method != "ig_smoothgrad":
        def noisy(images: torch.Tensor, subs: torch.Tensor) -> tuple[torch.Tensor, None]:
            return x[images] + noise.rows(images, subs), None

        total, total_sq = _summed_gradients(model, x, targets, samples, rows, noisy,
                                            squares=method == "vargrad")
        if total_sq is None:
            return total / samples
        mean = total.double() / samples
        return torch.stack([total / samples,
                            (total_sq / samples - mean ** 2).clamp_min(0).to(x.dtype)])
    base = baseline_batch(settings["baseline"], x)
    alphas = torch.linspace(0.0, 1.0, steps, dtype=x.dtype).to(x.device)
    multiply = bool(settings["multiply_by_inputs"])

    def path(images: torch.Tensor, subs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        b = base[images]
        moved = x[images] + noise.rows(images, subs // steps) - b
        return b + alphas[subs % steps].view(shape) * moved, moved if multiply else None

    return _summed_gradients(model, x, targets, samples * steps, rows, path)[0] / (samples * steps)


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


def _check_settings(method: str, settings: Mapping[str, object]) -> dict[str, object]:
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} for {method}; valid choices: "
                         f"{', '.join(DEFAULTS)}")
    merged = {**DEFAULTS, **settings}
    if method in ("smoothgrad", "vargrad", "ig_smoothgrad") and int(merged["samples"]) < 1:
        raise ValueError(f"samples must be at least 1, got {merged['samples']}")
    if method in ("integrated_gradients", "ig_smoothgrad") and int(merged["steps"]) < 1:
        raise ValueError(f"steps must be at least 1, got {merged['steps']}")
    if merged["max_rows"] is not None and int(merged["max_rows"]) < 1:
        raise ValueError(f"max_rows must be positive, got {merged['max_rows']}")
    return merged


def _gradient_and_prediction(model: nn.Module, x: torch.Tensor, targets: torch.Tensor | None,
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


def _gradients(model: nn.Module, points: torch.Tensor, targets: torch.Tensor,
               max_rows: int) -> torch.Tensor:
    """d logit[target] / d input at every row of ``points``, in chunks of ``max_rows``."""
    return _gradient_and_prediction(model, points, targets, max_rows)[0]


class _Shared:
    """The computations methods share on one batch and target, each made once: the target and
    predictions (from the plain gradient's forward pass when a method needs that gradient; a
    prediction pass only when the target or the predictions are asked for and no such pass
    gives them), the plain gradient (Gradient, Gradient ⊙ Input), Guided Backprop (alone and in
    Guided GradCAM) and GradCAM per (layer, ReLU) (alone and in Guided GradCAM)."""

    def __init__(self, model: nn.Module, x: torch.Tensor, target: int | torch.Tensor | None,
                 needs_gradient: bool, rows: int) -> None:
        self.model, self.x, self.rows = model, x, rows
        self.done: dict[tuple[object, ...], torch.Tensor] = {}
        #: (method, samples, noise level, seed) -> SmoothGrad maps (1, B, ...), or SmoothGrad
        #: and VarGrad maps (2, B, ...) for ``vargrad``.
        self.noisy: dict[tuple[object, ...], torch.Tensor] = {}
        targets = None if target is None else _resolve_target(model, x, target, rows)
        self._predictions: torch.Tensor | None = None
        if needs_gradient:
            grads, self._predictions = _gradient_and_prediction(model, x, targets, rows)
            self.done[("gradient",)] = grads
        self.targets = self.predictions if targets is None else targets

    @property
    def predictions(self) -> torch.Tensor:
        """The model's predicted class per input; a prediction pass only the first time, and
        only when no gradient pass gave them."""
        if self._predictions is None:
            self._predictions = predicted_class(self.model, self.x, max_rows=self.rows)
        return self._predictions

    def get(self, key: tuple[object, ...], rows: int) -> torch.Tensor:
        if key not in self.done:
            if key[0] == "guided_backprop":
                self.done[key] = guided_backprop(self.model, self.x, self.targets, max_rows=rows)
            else:
                self.done[key] = _gradcam(self.model, self.x, self.targets, key[1], key[2], rows)
        return self.done[key]


def _one(subject: ModelUnderTest | nn.Module, shared: _Shared, method: str,
         settings: Mapping[str, object]) -> torch.Tensor:
    model, x, targets = shared.model, shared.x, shared.targets
    rows = max_rows_per_pass(x, {method: settings})
    if method in ("gradient", "gradient_x_input"):
        grads = shared.done[("gradient",)]
        if method == "gradient":
            return grads
        base = settings["baseline"]  # the input measured from the baseline (zero by default)
        return grads * x if isinstance(base, float) and base == 0.0 else \
            grads * (x - baseline_batch(base, x))
    if method in ATTRIBUTIONS:
        return ATTRIBUTIONS[method](model, x, targets, baseline=baseline_batch(settings["baseline"], x),
                                    samples=int(settings["samples"]), seed=int(settings["seed"]),
                                    max_rows=rows)
    if method == "integrated_gradients":
        base = baseline_batch(settings["baseline"], x)
        mean = _path_mean_gradient(model, x, targets, base, int(settings["steps"]), rows)
        return mean * (x - base) if settings["multiply_by_inputs"] else mean
    if method == "ig_smoothgrad":
        return _noisy(model, x, targets, method, settings, rows)
    if method in ("smoothgrad", "vargrad"):
        # the same noisy passes serve both: VarGrad's give SmoothGrad's mean too
        noise = tuple(settings[k] for k in ("samples", "noise_level", "seed"))
        both = shared.noisy.get(("vargrad", *noise))
        if both is None and method == "smoothgrad":
            both = shared.noisy.get(("smoothgrad", *noise))
        if both is None:
            computed = _noisy(model, x, targets, method, settings, rows)
            both = computed if method == "vargrad" else computed[None]
            shared.noisy[(method, *noise)] = both
        return both[0] if method == "smoothgrad" else both[1]
    maps = torch.ones_like(x)
    if method in ("guided_backprop", "guided_gradcam"):
        maps = shared.get(("guided_backprop",), rows)
    if method in ("gradcam", "guided_gradcam"):
        layer = _gradcam_layer(subject, settings["layer"])
        maps = maps * shared.get(("gradcam", layer, bool(settings["relu_attributions"])), rows)
    return maps


def explain_and_predict(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                        methods: Sequence[str], target: int | torch.Tensor | None = None,
                        options: Mapping[str, Mapping[str, object]] | None = None
                        ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """:func:`explain_methods` and the model's predicted class of every input, with no pass made
    twice: when a method needs the plain gradient, its forward pass gives the predictions (and
    the target, when ``target`` is None); otherwise one prediction pass does."""
    maps, shared = _explain_shared(model, inputs, methods, target, options)
    return maps, shared.predictions.to(inputs.device)


def _explain_shared(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                    methods: Sequence[str], target: int | torch.Tensor | None,
                    options: Mapping[str, Mapping[str, object]] | None
                    ) -> tuple[dict[str, torch.Tensor], _Shared]:
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid choices: {', '.join(ALL_METHODS)}")
    if inputs.ndim < 2:
        raise ValueError(f"inputs must be a batch (B, ...); got shape {tuple(inputs.shape)}")
    options = options or {}
    settings = {m: _check_settings(m, options.get(m, {})) for m in methods}
    module = model.module if isinstance(model, ModelUnderTest) else model
    x = inputs.detach().to(module_device(module))
    rows = max_rows_per_pass(x, settings)
    needs_gradient = any(m in ("gradient", "gradient_x_input") for m in methods)
    with explaining(module):
        shared = _Shared(module, x, target, needs_gradient, rows)
        # VarGrad first: its passes give SmoothGrad's maps too (same noise)
        made = {m: _one(model, shared, m, settings[m]).to(inputs.device).contiguous()
                for m in sorted(methods, key=lambda m: m != "vargrad")}
    maps = {m: made[m] for m in methods}
    return maps, shared


def explain_methods(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                    methods: Sequence[str], target: int | torch.Tensor | None = None,
                    options: Mapping[str, Mapping[str, object]] | None = None
                    ) -> dict[str, torch.Tensor]:
    """``{method: maps}`` for several methods on the same inputs and target, with per-method
    settings (the keywords of :func:`explain`), making every shared computation once: the
    target, one gradient for Gradient and Gradient ⊙ Input, one Guided Backprop and one GradCAM
    for Guided BackProp, GradCAM and Guided GradCAM."""
    return _explain_shared(model, inputs, methods, target, options)[0]


def explain(model: ModelUnderTest | nn.Module, inputs: torch.Tensor, method: str,
            target: int | torch.Tensor | None = None, *, steps: int = 50,
            baseline: torch.Tensor | float = 0.0, multiply_by_inputs: bool = True,
            samples: int = 50, noise_level: float = 0.15, seed: int = 0,
            layer: str | nn.Module | None = None, relu_attributions: bool = True,
            max_rows: int | None = None, memory_mb: float = 2048.0) -> torch.Tensor:
    """Explain ``model``'s logit for ``target`` at each of ``inputs`` with ``method``.

    The passes run on the model's device; the maps come back on the inputs' device.

    Args:
        model: a classifier returning logits (B, classes), or a :class:`ModelUnderTest` around
            one. It is not modified.
        inputs: a batch (B, C, H, W) or (B, features).
        method: one of :data:`ALL_METHODS`.
        target: None (each input's argmax logit under ``model``), one int, or one label per input.
        steps, baseline: Integrated Gradients' interpolation steps and baseline (a number, one
            input's shape, or one baseline per input (B, ...)); also for IG-SmoothGrad, and for
            Gradient ⊙ Input, which multiplies the gradient by ``inputs - baseline``.
        multiply_by_inputs: global IG (times x - baseline) or local IG (Kokhlikyan et al.), also
            for IG-SmoothGrad.
        samples, noise_level, seed: SmoothGrad / VarGrad / IG-SmoothGrad noise; sigma is
            ``noise_level * (max - min)`` of each image; image ``i`` draws from seed ``seed + i``.
            ``samples`` and ``seed`` (and ``baseline``) also serve Gradient SHAP, ``baseline``
            DeepLift.
        layer: GradCAM's layer (a module, as in Captum, or a submodule path); defaults to the
            model under test's ``gradcam_layer``.
        relu_attributions: GradCAM's ReLU on the map.
        max_rows, memory_mb: at most ``max_rows`` model inputs per forward pass and in flight
            (IG-SmoothGrad's samples x steps included); by default derived from ``memory_mb``,
            and on a CPU at most 256 rows and 8 MB of input.

    Returns:
        Attributions shaped like ``inputs`` (GradCAM's single map repeated over channels).
    """
    if method not in ALL_METHODS:
        raise ValueError(f"unknown method {method!r}; valid choices: {', '.join(ALL_METHODS)}")
    settings = {"steps": steps, "baseline": baseline, "multiply_by_inputs": multiply_by_inputs,
                "samples": samples, "noise_level": noise_level, "seed": seed, "layer": layer,
                "relu_attributions": relu_attributions, "max_rows": max_rows,
                "memory_mb": memory_mb}
    return explain_methods(model, inputs, [method], target, {method: settings})[method]
