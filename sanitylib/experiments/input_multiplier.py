"""The input multiplier and explanation quality: Kokhlikyan et al. (2021), image sections.

Three pieces of the follow-up paper, for the book's MNIST CNN:

- *Local against global* (their Figs. 1, 4, 5): the same cascading randomization test for pairs
  of methods that differ only by the input multiplier, Integrated Gradients without and with
  ``(x - x0)``, Gradient against Gradient ⊙ Input, SmoothGrad against IG-SmoothGrad
  (:func:`local_global_run`).
- *Infidelity and max-sensitivity* (their Table 1, Fig. 6) of every method at every cascading
  randomization step, with Captum's :func:`captum.metrics.infidelity` (perturbations from
  N(0, 0.03)) and :func:`captum.metrics.sensitivity_max` (L∞ ball of radius 0.02, 5 samples,
  L2 norm); lower is better for both (:func:`quality_table`).
- *Smoothness* (their Fig. 2): the CNN fine-tuned with Softplus and LogSumExp pooling
  (:func:`smoothed_cnn`) and the network's output along single input dimensions
  (:func:`function_along_dimensions`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.data.images import ImageDataset, subset
from sanitylib.experiments.runner import RandomizationRun, randomization_run
from sanitylib.infra.cache import cached
from sanitylib.infra.device import module_device
from sanitylib.methods.quality import (
    INFIDELITY_STD,
    SENSITIVITY_RADIUS,
    SENSITIVITY_SAMPLES,
    infidelity_scores,
    max_sensitivity_scores,
)
from sanitylib.methods.randomization import randomize
from sanitylib.methods.registry import LABELS
from sanitylib.methods.saliency import explain, predicted_class
from sanitylib.models.smooth import smooth
from sanitylib.models.training import TrainedModel, accuracy, fit

#: Variant name -> (method of :mod:`sanitylib.methods.saliency`, whether it carries the input multiplier).
VARIANTS: dict[str, tuple[str, bool]] = {
    "ig_local": ("integrated_gradients", False), "ig_global": ("integrated_gradients", True),
    "gradient": ("gradient", False), "gradient_x_input": ("gradient_x_input", True),
    "smoothgrad": ("smoothgrad", False), "ig_smoothgrad": ("ig_smoothgrad", True),
}
#: (local, global) pairs compared side by side.
PAIRS = (("ig_local", "ig_global"), ("gradient", "gradient_x_input"),
         ("smoothgrad", "ig_smoothgrad"))
VARIANT_LABELS = {"ig_local": "IG (local)", "ig_global": "IG (global, × (x − x0))",
                  **{m: LABELS[m] for m in ("gradient", "gradient_x_input", "smoothgrad")},
                  "ig_smoothgrad": "IG-SmoothGrad (global)"}

def variant_options(ig_steps: int, samples: int, seed: int = 0
                    ) -> dict[str, tuple[str, dict[str, object]]]:
    """``{variant: (method, explain keyword options)}`` for :data:`VARIANTS`."""
    noisy = {"samples": samples, "seed": seed}
    options: dict[str, dict[str, object]] = {
        "ig_local": {"steps": ig_steps, "multiply_by_inputs": False},
        "ig_global": {"steps": ig_steps}, "gradient": {}, "gradient_x_input": {},
        "smoothgrad": dict(noisy), "ig_smoothgrad": {**noisy, "steps": ig_steps}}
    return {v: (VARIANTS[v][0], options[v]) for v in VARIANTS}


def _check_variants(variants: Sequence[str]) -> None:
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; valid choices: {', '.join(VARIANTS)}")


def local_global_run(model: nn.Module, inputs: torch.Tensor, *, ig_steps: int, samples: int,
                     seeds: Sequence[int], metrics: Sequence[str],
                     variants: Sequence[str] = tuple(VARIANTS), init: str = "xavier",
                     labels: Mapping[str, object] | None = None, keep_maps: int = 0,
                     verbose: bool = True) -> RandomizationRun:
    """Cascading randomization for each of ``variants`` (their Figs. 1, 4, 5).

    One :func:`sanitylib.experiments.randomization_run` (maps cached) for the variants with the
    multiplier and the local methods, another for local Integrated Gradients (the same method
    with other options). The ``method`` column and the maps are keyed by variant name.
    Kokhlikyan et al. re-initialize with Xavier (``init``).
    """
    _check_variants(variants)
    options = variant_options(ig_steps, samples)
    rename = {options[v][0]: v for v in variants if v != "ig_local"}
    common = {"order": "cascading", "init": init, "seeds": seeds, "metrics": metrics,
              "labels": labels, "keep_maps": keep_maps, "verbose": verbose}
    runs = []
    if rename:
        runs.append((rename, randomization_run(
            model, inputs, list(rename), options={m: options[v][1] for m, v in rename.items()},
            **common)))
    if "ig_local" in variants:
        runs.append(({"integrated_gradients": "ig_local"}, randomization_run(
            model, inputs, ["integrated_gradients"],
            options={"integrated_gradients": options["ig_local"][1]}, **common)))
    scores = pd.concat([run.scores.assign(method=run.scores.method.map(names))
                        for names, run in runs], ignore_index=True)
    first = runs[0][1]
    maps = {seed: {step: {names[m]: v for names, run in runs
                          for m, v in run.maps[seed][step].items()}
                   for step in first.maps[seed]} for seed in first.maps}
    return RandomizationRun(scores, first.steps, maps, first.predictions)


def pair_gaps(summary: pd.DataFrame, step: str) -> pd.DataFrame:
    """Per (local, global) pair of :data:`PAIRS` and metric: mean similarity of each at ``step``
    and the gap global - local (from :func:`sanitylib.experiments.summarize_scores` rows of
    method, metric, block, mean, low, high)."""
    at = summary[summary.block == step].set_index(["method", "metric"])
    rows = []
    for local, global_ in PAIRS:
        for metric in summary.metric.unique():
            if (local, metric) in at.index and (global_, metric) in at.index:
                a, b = at.loc[(local, metric)], at.loc[(global_, metric)]
                rows.append({"local": local, "global": global_, "metric": metric,
                             "local_mean": a["mean"], "local_low": a["low"],
                             "local_high": a["high"], "global_mean": b["mean"],
                             "global_low": b["low"], "global_high": b["high"],
                             "gap": b["mean"] - a["mean"]})
    return pd.DataFrame(rows)


def _quality_rows(model: nn.Module, inputs: torch.Tensor, variants: Sequence[str],
                  ig_steps: int, samples: int, init: str, seed: int,
                  steps: Sequence[str] | None, n_infidelity: int) -> pd.DataFrame:
    options = variant_options(ig_steps, samples)
    rows = []
    for index, (step, randomized) in enumerate(randomize(model, order="cascading", init=init,
                                                         seed=seed)):
        if steps is not None and step not in steps:
            continue
        randomized.eval()
        target = predicted_class(randomized, inputs)
        for variant in variants:
            method, opts = options[variant]
            maps = explain(randomized, inputs, method, target=target, **opts)
            infid = infidelity_scores(randomized, inputs, maps, target,
                                      multiplied=VARIANTS[variant][1],
                                      n_perturb_samples=n_infidelity, seed=seed)
            # The same perturbations with a zero map: the mean squared change of the output,
            # the scale that makes infidelity comparable between networks.
            scale = infidelity_scores(randomized, inputs, torch.zeros_like(maps), target,
                                      multiplied=VARIANTS[variant][1],
                                      n_perturb_samples=n_infidelity, seed=seed)
            sens = max_sensitivity_scores(randomized, inputs, method, opts, target, seed=seed)
            relative = infid / np.where(scale > 0, scale, np.nan)
            for metric, values in (("infidelity", infid), ("relative_infidelity", relative),
                                   ("max_sensitivity", sens)):
                rows.append(pd.DataFrame({"method": variant, "block": step, "step": index,
                                          "metric": metric, "seed": seed,
                                          "image": np.arange(len(inputs)), "value": values}))
    return pd.concat(rows, ignore_index=True)


def quality_table(model: nn.Module, inputs: torch.Tensor, variants: Sequence[str] = tuple(VARIANTS),
                  *, ig_steps: int, samples: int, seeds: Sequence[int] = (0,),
                  init: str = "xavier", steps: Sequence[str] | None = None,
                  n_infidelity: int = 10, labels: Mapping[str, object] | None = None
                  ) -> pd.DataFrame:
    """Infidelity and max-sensitivity of each variant at each cascading randomization step.

    Kokhlikyan et al., Table 1 and Fig. 6. Infidelity is in squared logits; the table adds
    ``relative_infidelity``, infidelity divided by the mean squared change of the output under the
    same perturbations (1: the map predicts no better than a zero map; NaN when the output does
    not move). ``steps`` limits the steps evaluated (names from
    :func:`sanitylib.randomization.randomize`, e.g. ``["original", "conv1"]``); the class
    explained is each step's own argmax. Cached per seed, keyed by the model's weights, the
    inputs and every setting. Returns one row per (method, block, metric, seed, image).
    """
    _check_variants(variants)
    tables = []
    for seed in seeds:
        key = {"model": model, "inputs": inputs,
               "variants": list(variants), "ig_steps": ig_steps, "samples": samples,
               "init": init, "seed": seed, "steps": None if steps is None else list(steps),
               "n_infidelity": n_infidelity, "std": INFIDELITY_STD, "radius": SENSITIVITY_RADIUS,
               "sensitivity_samples": SENSITIVITY_SAMPLES}
        tables.append(cached("quality", key, lambda seed=seed: _quality_rows(
            model, inputs, variants, ig_steps, samples, init, seed, steps, n_infidelity)))
    table = pd.concat(tables, ignore_index=True)
    for column, value in (labels or {}).items():
        table.insert(0, column, value)
    return table


@dataclass(frozen=True)
class SmoothConfig:
    """How the smoothed CNN is made: Softplus sharpness, LogSumExp temperature and fine-tuning."""

    beta: float = 3.0
    temperature: float | None = None
    epochs: int = 1
    lr: float = 1e-4
    train_size: int | None = 1000
    batch_size: int = 50
    seed: int = 0


def _fine_tune(model: nn.Module, data: ImageDataset, config: SmoothConfig) -> dict[str, object]:
    torch.manual_seed(config.seed)
    x, y = subset(data.x_train, data.y_train, config.train_size, config.seed)
    x, y = x.to(module_device(model)), y.to(module_device(model))
    start = time.perf_counter()
    fit(model, x, y, lr=config.lr, epochs=config.epochs, batch_size=config.batch_size,
        seed=config.seed)
    return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "train_accuracy": accuracy(predicted_class(model, x, max_rows=1000), y),
            "test_accuracy": accuracy(predicted_class(model, data.x_test, max_rows=1000),
                                      data.y_test),
            "seconds": time.perf_counter() - start}


def smoothed_cnn(base: TrainedModel, data: ImageDataset, config: SmoothConfig = SmoothConfig()
                 ) -> tuple[nn.Module, dict[str, float]]:
    """The trained CNN with ReLU -> Softplus and MaxPool -> LogSumExp, fine-tuned (cached).

    Kokhlikyan et al., Section 3 and Fig. 2. Starts from ``base``'s weights (the architectures
    share parameter names), fine-tunes with Adam on ``train_size`` training images (0 epochs:
    no fine-tuning), and returns the model in eval mode with its accuracies. The cache key is the
    base model's configuration and data source plus ``config``.
    """
    if base.config.architecture != "cnn":
        raise ValueError(f"smoothed_cnn needs the CNN; got {base.config.architecture!r}")
    model = smooth(base.model, config.beta, config.temperature)
    key = {"base": asdict(base.config), "source": base.source, "smooth": asdict(config),
           "device": module_device(model).type}
    result = cached("smoothed_models", key, lambda: _fine_tune(model, data, config))
    model.load_state_dict(result["state_dict"])
    model.eval()
    return model, {k: float(result[k]) for k in ("train_accuracy", "test_accuracy", "seconds")}


def salient_dimensions(model: nn.Module, x: torch.Tensor, k: int) -> list[int]:
    """The ``k`` flat input indices with the largest absolute gradient of the predicted logit."""
    grad = explain(model, x[None], "gradient")[0].flatten()
    return grad.abs().argsort(descending=True)[:k].tolist()


def function_along_dimensions(models: Mapping[str, nn.Module], x: torch.Tensor,
                              dimensions: Sequence[int], target: int, radius: float = 0.5,
                              n_points: int = 101) -> pd.DataFrame:
    """The ``target`` logit and its slope as one input dimension moves, other inputs fixed.

    Kokhlikyan et al., Fig. 2: ``f(x + t e_i)`` for ``t`` in ``[-radius, radius]`` for each
    flat index ``i`` of ``dimensions``, for every model. A ReLU network is piecewise linear
    along any line, so its slope (the gradient component, by autograd) jumps; Softplus and
    LogSumExp pooling make it continuous. One batched forward and backward pass per model.
    Returns tidy rows (model, dimension, offset, output, slope).
    """
    offsets = torch.linspace(-radius, radius, n_points, dtype=x.dtype)
    flat = x.flatten().repeat(len(dimensions) * n_points, 1)
    rows = torch.arange(len(flat))
    columns = torch.as_tensor(dimensions).repeat_interleave(n_points)
    flat[rows, columns] += offsets.repeat(len(dimensions))
    tables = []
    for name, model in models.items():
        model.eval()
        points = flat.view(-1, *x.shape).to(module_device(model)).requires_grad_()
        output = model(points)[:, target]
        (grad,) = torch.autograd.grad(output.sum(), points)
        slope = grad.flatten(1)[rows.to(grad.device), columns.to(grad.device)]
        tables.append(pd.DataFrame({
            "model": name, "dimension": columns.cpu().numpy(),
            "offset": offsets.repeat(len(dimensions)).cpu().numpy(),
            "output": output.detach().cpu().numpy(), "slope": slope.cpu().numpy()}))
    return pd.concat(tables, ignore_index=True)


def kink_score(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: the mean absolute jump of the slope between neighbouring points of
    :func:`function_along_dimensions` (larger: a rougher function along the inputs)."""
    ordered = table.sort_values(["model", "dimension", "offset"])
    jumps = ordered.groupby(["model", "dimension"])["slope"].diff().abs()
    return ordered.assign(jump=jumps).groupby("model", sort=False)["jump"].mean().reset_index()
