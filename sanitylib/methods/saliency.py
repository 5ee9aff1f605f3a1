"""Explain a model with one or several methods: the dispatch over the method registry.

``explain(model, inputs, method)`` returns a map shaped like ``inputs`` for any method of
:mod:`sanitylib.methods.registry` (the paper's nine of Adebayo et al. 2018, Section 2, the
follow-ups' three, and any registered with :func:`~sanitylib.methods.registry.register_method`).
Defaults follow the original code: Integrated Gradients with 50 steps from a zero baseline along
``linspace(0, 1, 50)`` (both ends) times ``(x - baseline)``; SmoothGrad and VarGrad with 50 noisy
copies and sigma = 0.15 * (max - min) of each image; GradCAM on the model's conv layer with a
ReLU and bilinear upsampling. The class explained is by default the argmax logit of the model
being explained; pass ``target`` to fix it.

:func:`explain_methods` makes what several built-in methods share once (their specs'
``shares``): one
gradient pass, which also gives the predictions, for Gradient and Gradient ⊙ Input; the same
noisy passes for SmoothGrad and VarGrad; one Guided Backprop and one GradCAM for Guided BackProp,
GradCAM and Guided GradCAM. Passes hold at most ``max_rows`` model inputs and run on the model's
device (:mod:`sanitylib.infra.device`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from sanitylib.infra.device import module_device
from sanitylib.methods.frozen import explaining, predicted_class
from sanitylib.methods.gradients import (
    gradcam,
    gradient_and_prediction,
    noisy_gradients,
    times_input,
)
from sanitylib.methods.guided import guided_backprop
from sanitylib.methods.registry import (
    ALL_METHODS,
    LABELS,
    METHODS,
    MethodSpec,
    method_spec,
)
from sanitylib.models.under_test import ModelUnderTest, model_under_test, submodule

__all__ = ["ALL_METHODS", "LABELS", "METHODS", "explain", "explain_and_predict",
           "explain_methods", "explaining", "max_rows_per_pass", "predicted_class",
           "resolved_settings"]

#: Rough activation memory per byte of input for one forward and backward pass.
_BYTES_PER_INPUT_BYTE = 200

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
    defaults filled in) share passes over ``x`` (on the device the passes run on): the
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


class _Shared:
    """The computations methods share on one batch and target, each made once: the target and
    predictions (from the plain gradient's forward pass when a method needs that gradient; a
    prediction pass only when the target or the predictions are asked for and no such pass gives
    them), the plain gradient, the noisy gradients (SmoothGrad's mean and VarGrad's variance),
    Guided Backprop and GradCAM per (layer, ReLU)."""

    def __init__(self, model: nn.Module, x: torch.Tensor, target: int | torch.Tensor | None,
                 needs_gradient: bool, rows: int) -> None:
        self.model, self.x, self.rows = model, x, rows
        self.done: dict[tuple[object, ...], torch.Tensor] = {}
        #: (samples, noise level, seed) -> (mean, variance or None) of the noisy gradients.
        self.noisy: dict[tuple[object, ...], tuple[torch.Tensor, torch.Tensor | None]] = {}
        targets = None if target is None else _resolve_target(model, x, target, rows)
        self._predictions: torch.Tensor | None = None
        if needs_gradient:
            self.gradient, self._predictions = gradient_and_prediction(model, x, targets, rows)
        self.targets = self.predictions if targets is None else targets

    @property
    def predictions(self) -> torch.Tensor:
        """The model's predicted class per input; a prediction pass only the first time, and
        only when no gradient pass gave them."""
        if self._predictions is None:
            self._predictions = predicted_class(self.model, self.x, max_rows=self.rows)
        return self._predictions

    def noisy_gradients(self, settings: Mapping[str, object], rows: int, variance: bool
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = tuple(settings[k] for k in ("samples", "noise_level", "seed"))
        if key not in self.noisy or (variance and self.noisy[key][1] is None):
            self.noisy[key] = noisy_gradients(
                self.model, self.x, self.targets, samples=int(settings["samples"]),
                noise_level=float(settings["noise_level"]), seed=int(settings["seed"]),
                max_rows=rows, variance=variance)
        return self.noisy[key]

    def guided(self, rows: int) -> torch.Tensor:
        if ("guided",) not in self.done:
            self.done[("guided",)] = guided_backprop(self.model, self.x, self.targets,
                                                     max_rows=rows)
        return self.done[("guided",)]

    def gradcam(self, settings: Mapping[str, object], rows: int) -> torch.Tensor:
        key = ("gradcam", settings["layer"], bool(settings["relu_attributions"]))
        if key not in self.done:
            self.done[key] = gradcam(self.model, self.x, self.targets, layer=settings["layer"],
                                     relu_attributions=bool(settings["relu_attributions"]),
                                     max_rows=rows)
        return self.done[key]


#: How the built-in methods with shared computations read them from :class:`_Shared`: the same
#: functions as theirs in :mod:`sanitylib.methods.gradients`, with every shared pass made once.
_FROM_SHARED: dict[str, Callable[[_Shared, Mapping[str, object], int], torch.Tensor]] = {
    "gradient": lambda shared, s, rows: shared.gradient,
    "gradient_x_input": lambda shared, s, rows: times_input(shared.gradient, shared.x,
                                                            s["baseline"]),  # type: ignore[arg-type]
    "smoothgrad": lambda shared, s, rows: shared.noisy_gradients(s, rows, False)[0],
    "vargrad": lambda shared, s, rows: shared.noisy_gradients(s, rows, True)[1],  # type: ignore[misc]
    "guided_backprop": lambda shared, s, rows: shared.guided(rows),
    "gradcam": lambda shared, s, rows: shared.gradcam(s, rows),
    "guided_gradcam": lambda shared, s, rows: shared.guided(rows) * shared.gradcam(s, rows),
}


def _one(spec: MethodSpec, shared: _Shared, settings: Mapping[str, object]) -> torch.Tensor:
    rows = max_rows_per_pass(shared.x, {spec.name: settings})
    if spec.source != "registered" and spec.name in _FROM_SHARED:
        return _FROM_SHARED[spec.name](shared, settings, rows)
    maps = spec.call(shared.model, shared.x, shared.targets, settings, rows)
    if not isinstance(maps, torch.Tensor) or maps.shape != shared.x.shape:
        raise ValueError(f"{spec.name} returned {getattr(maps, 'shape', type(maps).__name__)}; "
                         f"a method must return maps shaped like its inputs {tuple(shared.x.shape)}")
    return maps


def resolved_settings(model: ModelUnderTest | nn.Module, methods: Sequence[str],
                      options: Mapping[str, Mapping[str, object]] | None
                      ) -> dict[str, dict[str, object]]:
    """Every method's settings checked against its spec and completed with the defaults; a
    method that needs a conv layer gets the model's (a module) unless ``layer`` names one."""
    options = options or {}
    settings = {}
    for method in methods:
        spec = method_spec(method)
        chosen = spec.resolve(options.get(method))
        if spec.needs_conv_layer:
            chosen["layer"] = _gradcam_layer(model, chosen.get("layer"))  # type: ignore[arg-type]
        settings[method] = chosen
    return settings


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
    specs = [method_spec(m) for m in methods]
    if inputs.ndim < 2:
        raise ValueError(f"inputs must be a batch (B, ...); got shape {tuple(inputs.shape)}")
    settings = resolved_settings(model, methods, options)
    module = model.module if isinstance(model, ModelUnderTest) else model
    x = inputs.detach().to(module_device(module))
    rows = max_rows_per_pass(x, settings)
    needs_gradient = any("gradient" in s.shares and s.source != "registered" for s in specs)
    with explaining(module):
        shared = _Shared(module, x, target, needs_gradient, rows)
        # VarGrad first: its passes give SmoothGrad's maps too (same noise)
        made = {s.name: _one(s, shared, settings[s.name]).to(inputs.device).contiguous()
                for s in sorted(specs, key=lambda s: s.name != "vargrad")}
    return {m: made[m] for m in methods}, shared


def explain_methods(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                    methods: Sequence[str], target: int | torch.Tensor | None = None,
                    options: Mapping[str, Mapping[str, object]] | None = None
                    ) -> dict[str, torch.Tensor]:
    """``{method: maps}`` for several methods on the same inputs and target, with per-method
    settings (``options[method]``, the settings of its spec), making every shared computation
    once: the target, one gradient for Gradient and Gradient ⊙ Input, one set of noisy passes for
    SmoothGrad and VarGrad, one Guided Backprop and one GradCAM for Guided BackProp, GradCAM and
    Guided GradCAM."""
    return _explain_shared(model, inputs, methods, target, options)[0]


def explain(model: ModelUnderTest | nn.Module, inputs: torch.Tensor, method: str,
            target: int | torch.Tensor | None = None, **settings: object) -> torch.Tensor:
    """Explain ``model``'s logit for ``target`` at each of ``inputs`` with ``method``.

    The passes run on the model's device; the maps come back on the inputs' device.

    Args:
        model: a classifier returning logits (B, classes), or a :class:`ModelUnderTest` around
            one. It is not modified.
        inputs: a batch (B, C, H, W) or (B, features).
        method: a registered method (:func:`sanitylib.methods.registry.method_names`).
        target: None (each input's argmax logit under ``model``), one int, or one label per input.
        settings: the method's own (its spec's ``settings``; a setting it does not take is
            refused, naming those it takes):

            - ``steps``, ``baseline``: Integrated Gradients' interpolation steps and baseline (a
              number, one input's shape, or one per input); also IG-SmoothGrad's; ``baseline``
              also for Gradient ⊙ Input (times ``inputs - baseline``), DeepLift, Gradient SHAP;
            - ``multiply_by_inputs``: global IG (times x - baseline) or local IG (Kokhlikyan et
              al.), also for IG-SmoothGrad;
            - ``samples``, ``noise_level``, ``seed``: SmoothGrad / VarGrad / IG-SmoothGrad noise,
              sigma ``noise_level * (max - min)`` of each image, image ``i`` drawing from seed
              ``seed + i``; ``samples`` and ``seed`` also Gradient SHAP's;
            - ``layer``, ``relu_attributions``: GradCAM's layer (a module, as in Captum, or a
              submodule path; default the model under test's ``gradcam_layer``) and its ReLU;
            - ``epsilon``: LRP's stabilizer;
            - for every method, ``max_rows`` and ``memory_mb``: at most ``max_rows`` model inputs
              per pass (IG-SmoothGrad's samples x steps included); by default derived from
              ``memory_mb``, and on a CPU at most 256 rows and 8 MB of input.

    Returns:
        Attributions shaped like ``inputs`` (GradCAM's single map repeated over channels).
    """
    method_spec(method)
    return explain_methods(model, inputs, [method], target, {method: settings})[method]
