"""The sanity checks that came after the paper: sMPRT, eMPRT, random logit, input invariance.

Each test takes a model, inputs and method names, explains through
:func:`sanitylib.methods.saliency.explain` (maps cached by the runner), and returns a tidy table
with one row per method, image (and randomization step or metric) and a ``value``. Its metadata,
Quantus-style, is in :data:`TESTS`. Every draw is seeded; the class explained is fixed to the
trained model's predicted class unless ``target`` gives labels (as Quantus takes ``y_batch``).

- **sMPRT** (Hedström et al. 2023, "Sanity Checks Revisited: An Exploration to Repair the Model
  Parameter Randomisation Test", https://arxiv.org/abs/2401.06465): MPRT on maps averaged over
  ``samples`` noisy copies of the input (noise ``noise_level * (max - min)`` of each image, the
  last copy noise-free), bottom-up; similarity Spearman of the absolute maps; lower is better.
- **eMPRT** (ibid.): ``(H_rand - H_orig) / H_orig`` with ``H`` the discrete entropy of each map's
  histogram, original against fully randomized model; higher is better. No abs, no normalisation.
- **Random logit** (Sixt et al. 2020, "When Explanations Lie", https://arxiv.org/abs/1912.09818):
  SSIM between the map of the predicted class and of a random other class; lower is better.
- **Input invariance** (Kindermans et al. 2017, "The (Un)reliability of Saliency Methods",
  https://arxiv.org/abs/1711.00867): the map of ``x`` under the model against the map of
  ``x + c`` under a copy whose first layer cancels the shift exactly; 1 means unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn

from sanitylib.experiments.runner import explain_cached, pair_scores
from sanitylib.infra.cache import cached
from sanitylib.infra.device import module_device
from sanitylib.methods.attribution import RULED_METHODS, unsupported_layers
from sanitylib.methods.randomization import randomize
from sanitylib.methods.saliency import explain_methods, explaining, predicted_class
from sanitylib.methods.similarity import compare
from sanitylib.models.under_test import ModelUnderTest, model_under_test

__all__ = ["BIN_RULES", "TESTS", "FollowupTest", "ShiftCompensated", "discrete_entropy",
           "emprt", "emprt_scores", "freedman_diaconis_bins", "fully_randomized",
           "input_invariance", "mprt_scores", "other_classes", "random_logit", "shift_compensated",
           "smooth_inputs", "smprt"]

Options = Mapping[str, Mapping[str, object]]


@dataclass(frozen=True)
class FollowupTest:
    """What a follow-up test measures and how to read it (Quantus-style metadata)."""

    name: str
    label: str
    reference: str
    score_direction: str  # "lower is better" or "higher is better"
    defaults: dict[str, object] = field(default_factory=dict)


_HEDSTROM = ("Hedström et al. 2023, Sanity Checks Revisited: An Exploration to Repair the Model "
             "Parameter Randomisation Test, https://arxiv.org/abs/2401.06465")
TESTS: dict[str, FollowupTest] = {t.name: t for t in (
    FollowupTest("mprt_top_down", "MPRT, top-down (cascading)",
                 "Adebayo et al. 2018, Sanity Checks for Saliency Maps, "
                 "https://arxiv.org/abs/1810.03292", "lower is better",
                 {"order": "cascading", "metric": "spearman_abs"}),
    FollowupTest("mprt_bottom_up", "MPRT, bottom-up", _HEDSTROM, "lower is better",
                 {"order": "bottom_up", "metric": "spearman_abs"}),
    FollowupTest("smprt", "Smooth MPRT", _HEDSTROM, "lower is better",
                 {"samples": 50, "noise_level": 0.1, "order": "bottom_up",
                  "metric": "spearman_abs"}),
    FollowupTest("emprt", "Efficient MPRT", _HEDSTROM, "higher is better",
                 {"bins": "freedman_diaconis", "min_bins": 10, "max_bins": 200}),
    FollowupTest("random_logit", "Random logit",
                 "Sixt et al. 2020, When Explanations Lie, https://arxiv.org/abs/1912.09818",
                 "lower is better", {"metric": "ssim"}),
    FollowupTest("input_invariance", "Input invariance",
                 "Kindermans et al. 2017, The (Un)reliability of Saliency Methods, "
                 "https://arxiv.org/abs/1711.00867", "higher is better",
                 {"shift": -1.0, "metric": "pearson"}),
)}

BIN_RULES = ("freedman_diaconis",)


def _labels(model: ModelUnderTest, inputs: torch.Tensor, target: torch.Tensor | None
            ) -> torch.Tensor:
    return predicted_class(model, inputs) if target is None else torch.as_tensor(target)


def mprt_scores(maps: Mapping[str, Mapping[str, torch.Tensor]], metrics: Sequence[str],
                metric_options: Options | None = None) -> pd.DataFrame:
    """Similarity of every step's maps to the ``"original"`` step's, one row per (block, step,
    method, metric, image); ``maps[step][name]`` in step order (cached, by
    :func:`sanitylib.experiments.runner.pair_scores`)."""
    return pd.concat([pair_scores(maps["original"], step_maps, metrics,
                                  labels={"block": step, "step": k},
                                  metric_options=metric_options)
                      for k, (step, step_maps) in enumerate(maps.items())], ignore_index=True)


def smooth_inputs(x: torch.Tensor, samples: int = 50, noise_level: float = 0.1, seed: int = 0
                  ) -> torch.Tensor:
    """(samples * B, ...) noisy copies, sample-major: copy ``s`` of image ``i`` adds Gaussian
    noise of sigma ``noise_level * (max - min)`` of the image from ``torch.Generator(seed + i)``;
    the last copy is noise-free (Quantus 0.6's ``SmoothMPRT``)."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    flat = x.flatten(1)
    spread = (flat.amax(1) - flat.amin(1)).view(1, -1, *[1] * (x.ndim - 1))
    noise = torch.stack([torch.randn((samples - 1, *x.shape[1:]), dtype=x.dtype,
                                     generator=torch.Generator().manual_seed(seed + i))
                         for i in range(len(x))], dim=1)
    noise = torch.cat([noise.to(x.device) * noise_level * spread, torch.zeros_like(x)[None]])
    return (x[None] + noise).flatten(0, 1)


def smprt(model: ModelUnderTest | nn.Module, inputs: torch.Tensor, methods: Sequence[str], *,
          samples: int = 50, noise_level: float = 0.1, order: str = "bottom_up",
          init: str = "default", seed: int = 0, target: torch.Tensor | None = None,
          metrics: Sequence[str] = ("spearman_abs",), metric_options: Options | None = None,
          options: Options | None = None) -> pd.DataFrame:
    """Smooth MPRT (Hedström et al. 2023): at every randomization step (``order``), each image's
    maps on its :func:`smooth_inputs` copies (noise seeded by ``seed``) averaged, then compared
    step by step with the original model's; lower is better."""
    subject = model_under_test(model)
    labels = _labels(subject, inputs, target)
    key = {"kind": "smprt_maps", "model": subject, "inputs": inputs, "methods": list(methods),
           "samples": samples, "noise_level": noise_level, "order": order, "init": init,
           "seed": seed, "target": labels, "options": {m: dict(o) for m, o in
                                                       (options or {}).items()}}
    maps = cached("explanations", key, lambda: _smoothed_maps(
        subject, inputs, methods, samples, noise_level, order, init, seed, labels, options or {}))
    return mprt_scores(maps, metrics, metric_options)


def _smoothed_maps(subject: ModelUnderTest, inputs: torch.Tensor, methods: Sequence[str],
                   samples: int, noise_level: float, order: str, init: str, seed: int,
                   labels: torch.Tensor, options: Options) -> dict[str, dict[str, torch.Tensor]]:
    """``{step: {method: map averaged over the noisy copies}}``: only the averages are kept (and
    cached), method by method, so memory holds one method's ``samples`` x B maps at a time."""
    noisy = smooth_inputs(inputs, samples, noise_level, seed)
    target = labels.repeat(samples)
    steps: dict[str, dict[str, torch.Tensor]] = {}
    for step, randomized in randomize(subject, order=order, init=init, seed=seed, copies=False):
        explained = subject.with_module(randomized)
        steps[step] = {m: explain_methods(explained, noisy, [m], target, options)[m]
                       .view(samples, *inputs.shape).mean(0) for m in methods}
    return steps


def freedman_diaconis_bins(maps: np.ndarray, min_bins: int = 10, max_bins: int = 200) -> int:
    """Quantus 0.6's Freedman-Diaconis bin count for a batch of maps, clamped.

    Width ``2 IQR / n^(1/3)`` (at least 1e-6) over all values of the batch, count
    ``int((max - min) / width)``. As in Quantus, ``n`` is ``maps[0].ndim`` (3 for maps shaped
    (B, 1, H, W)), not the number of values the textbook rule uses.
    """
    iqr = np.percentile(maps, 75) - np.percentile(maps, 25)
    width = max(2 * iqr / np.power(maps[0].ndim, 1 / 3), 1e-6)
    return max(min(int((np.max(maps) - np.min(maps)) / width), max_bins), min_bins)


def discrete_entropy(maps: np.ndarray, bins: int) -> np.ndarray:
    """Entropy (nats) of each map's histogram over ``bins`` equal bins of its own range (Quantus'
    ``discrete_entropy``); NaN for a map holding NaN."""
    flat = maps.reshape(len(maps), -1)
    out = np.full(len(flat), np.nan)
    for i, row in enumerate(flat):  # NumPy's histogram takes one range at a time
        if not np.isnan(row).any():
            out[i] = stats.entropy(np.histogram(row, bins=bins)[0])
    return out


def _channel_sum(maps: torch.Tensor) -> np.ndarray:
    """Maps summed over channels, kept as (B, 1, H, W) (Quantus' ``reduce_axes=(1,)``)."""
    array = maps.detach().cpu().double().numpy()
    return array.sum(1, keepdims=True) if array.ndim == 4 else array


def emprt_scores(original: Mapping[str, torch.Tensor], randomized: Mapping[str, torch.Tensor],
                 bins: int | str = "freedman_diaconis", min_bins: int = 10,
                 max_bins: int = 200) -> pd.DataFrame:
    """eMPRT of each method's maps: ``(H_rand - H_orig) / H_orig`` per image, NaN where
    ``H_orig`` is 0 (a constant map) or a map holds NaN. ``bins``: a count, or a rule of
    :data:`BIN_RULES` applied to the original maps of the batch, one count per method."""
    if isinstance(bins, str) and bins not in BIN_RULES:
        raise ValueError(f"unknown bin rule {bins!r}; valid choices: an int, "
                         f"{', '.join(BIN_RULES)}")
    rows = []
    for method in original:
        a, b = _channel_sum(original[method]), _channel_sum(randomized[method])
        count = freedman_diaconis_bins(a, min_bins, max_bins) if isinstance(bins, str) else bins
        h_orig, h_rand = discrete_entropy(a, count), discrete_entropy(b, count)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(h_orig > 0, (h_rand - h_orig) / np.where(h_orig > 0, h_orig, 1.0),
                             np.nan)
        rows.append(pd.DataFrame({"method": method, "image": np.arange(len(a)), "bins": count,
                                  "h_original": h_orig, "h_randomized": h_rand, "value": value}))
    return pd.concat(rows, ignore_index=True)


def fully_randomized(model: ModelUnderTest | nn.Module, init: str = "default", seed: int = 0
                     ) -> nn.Module:
    """The model with every block re-initialized (the last step of any order: a block gets the
    same weights whatever the order)."""
    randomized = None
    for _, randomized in randomize(model, order="bottom_up", init=init, seed=seed):
        pass
    return randomized


def emprt(model: ModelUnderTest | nn.Module, inputs: torch.Tensor, methods: Sequence[str], *,
          bins: int | str = "freedman_diaconis", min_bins: int = 10, max_bins: int = 200,
          init: str = "default", seed: int = 0, target: torch.Tensor | None = None,
          options: Options | None = None) -> pd.DataFrame:
    """Efficient MPRT (Hedström et al. 2023) of every method: :func:`emprt_scores` of the
    original and the :func:`fully_randomized` model's maps; higher is better."""
    subject = model_under_test(model)
    labels = _labels(subject, inputs, target)
    original = explain_cached(subject, inputs, methods, labels, options)
    randomized = explain_cached(subject.with_module(fully_randomized(subject, init, seed)),
                                inputs, methods, labels, options)
    return emprt_scores(original, randomized, bins, min_bins, max_bins)


def other_classes(labels: torch.Tensor, n_classes: int, seed: int = 0) -> torch.Tensor:
    """For image ``i`` a class other than ``labels[i]``, uniform, from
    ``torch.Generator(seed + i)``."""
    if n_classes < 2:
        raise ValueError(f"a random other class needs at least 2 classes, got {n_classes}")
    draws = torch.stack([torch.randint(n_classes - 1, (), generator=torch.Generator()
                                       .manual_seed(seed + i)) for i in range(len(labels))])
    return draws + (draws >= labels).long()


def random_logit(model: ModelUnderTest | nn.Module, inputs: torch.Tensor, methods: Sequence[str],
                 *, seed: int = 0, metric: str = "ssim", metric_options: Mapping | None = None,
                 target: torch.Tensor | None = None, other: torch.Tensor | None = None,
                 options: Options | None = None) -> pd.DataFrame:
    """Random logit (Sixt et al. 2020): ``metric`` between each image's map of its class and of
    :func:`other_classes` (or ``other``); lower is better."""
    subject = model_under_test(model)
    labels = _labels(subject, inputs, target)
    if other is None:
        with torch.no_grad(), explaining(subject.module):
            n_classes = subject.module(inputs[:1].to(module_device(subject.module))).shape[1]
        other = other_classes(labels, n_classes, seed)
    own = explain_cached(subject, inputs, methods, labels, options)
    off = explain_cached(subject, inputs, methods, torch.as_tensor(other), options)
    return pd.concat([pd.DataFrame({"method": m, "metric": metric, "image": np.arange(len(inputs)),
                                    "target": labels.cpu().numpy(),
                                    "other": torch.as_tensor(other).cpu().numpy(),
                                    "value": compare(own[m], off[m], metric,
                                                     **dict(metric_options or {}))})
                      for m in methods], ignore_index=True)


class ShiftCompensated(nn.Module):
    """An affine first layer fed ``x + c`` that returns what it returned for ``x``: ``layer(x') -
    offset`` with ``offset = layer(c 1) - layer(0)``, a per-position bias map (exact also at
    zero-padded borders, where a scalar bias change is not)."""

    def __init__(self, layer: nn.Module, shift: float, input_shape: Sequence[int]) -> None:
        super().__init__()
        self.layer, self.shift = layer, shift
        with torch.no_grad():
            ones = torch.ones((1, *input_shape), device=module_device(layer))
            self.register_buffer("offset", layer(shift * ones) - layer(0 * ones))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x) - self.offset


def _first_layer(module: nn.Module, example: torch.Tensor) -> str:
    """Path of the first leaf module with parameters that runs; it must take the model's input."""
    found: list[tuple[str, bool]] = []
    handles = [m.register_forward_hook(lambda m, args, out, name=name: found.append(
        (name, bool(args) and args[0] is example)))
        for name, m in module.named_modules()
        if next(m.children(), None) is None and any(True for _ in m.parameters(recurse=False))]
    try:
        with torch.no_grad():
            module(example)
    finally:
        for handle in handles:
            handle.remove()
    if not found or not found[0][1]:
        raise ValueError("input invariance needs a first layer with parameters that takes the "
                         "model's input unchanged" + (f"; {found[0][0]} does not" if found else ""))
    return found[0][0]


def shift_compensated(model: ModelUnderTest | nn.Module, shift: float, example: torch.Tensor
                      ) -> ModelUnderTest:
    """A copy of ``model`` whose first layer (conv or linear) is :class:`ShiftCompensated`:
    its logits on ``x + shift`` are its original logits on ``x`` (Kindermans et al. 2017)."""
    subject = model_under_test(model)
    module = copy.deepcopy(subject.module).eval()
    path = _first_layer(module, example[:1])
    layer = module.get_submodule(path)
    if not isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        raise TypeError(f"the first layer {path} ({type(layer).__name__}) is not a conv or "
                         "linear layer, whose shift can be compensated exactly")
    parent, _, name = path.rpartition(".")
    setattr(module.get_submodule(parent), name, ShiftCompensated(layer, shift, example.shape[1:]))
    return subject.with_module(module)


def input_invariance(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                     methods: Sequence[str], *, shift: float = -1.0, metric: str = "pearson",
                     metric_options: Mapping | None = None, options: Options | None = None,
                     atol: float = 1e-4) -> pd.DataFrame:
    """Input invariance (Kindermans et al. 2017): ``metric`` between the map of ``x`` under the
    model and of ``x + shift`` under :func:`shift_compensated`, for the model's class; 1 means
    unchanged. Raises if the two models' logits differ by more than ``atol``.

    Max pooling breaks ties by position, and exact ties arise on constant regions (MNIST's
    background): under the shift, float rounding makes them near-ties resolved otherwise, so even
    the Gradient scores below 1 there (Pearson 0.975 on 8 MNIST digits and the book's CNN; 0.99998
    with a 1e-3 dither that leaves no exact ties). Read values near 1 as passing.

    LRP cannot run on the compensated model (Captum's epsilon rule would divide by the first
    layer's output before its bias map, :func:`~sanitylib.methods.attribution.unsupported_layers`):
    a method refused there scores NaN, with the refusal in ``note``.
    """
    subject = model_under_test(model)
    shifted = shift_compensated(subject, shift, inputs)
    with torch.no_grad(), explaining(subject.module):
        gap = float((subject.module(inputs) - shifted.module(inputs + shift)).abs().max())
    if gap > atol:
        raise RuntimeError(f"the shifted model's logits differ by {gap:.2e} (> {atol})")
    refused = {m: "; ".join(unsupported_layers(shifted.module, inputs[:1] + shift, m))
               for m in methods if m in RULED_METHODS}
    refused = {m: why for m, why in refused.items() if why}
    ran = [m for m in methods if m not in refused]
    labels = predicted_class(subject, inputs)
    own = explain_cached(subject, inputs, methods, labels, options)
    moved = explain_cached(shifted, inputs + shift, ran, labels, options)
    nan = np.full(len(inputs), np.nan)
    return pd.concat([pd.DataFrame({"method": m, "metric": metric, "image": np.arange(len(inputs)),
                                    "value": nan if m in refused else compare(
                                        own[m], moved[m], metric, **dict(metric_options or {})),
                                    "note": refused.get(m, "")})
                      for m in methods], ignore_index=True)
