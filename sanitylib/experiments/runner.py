"""Run the sanity checks end to end: explain, randomize, compare, tabulate.

The loop of Adebayo et al. (2018), Sections 3-4, over methods, randomization steps, seeds and
images, producing tidy tables (one row per model, dataset, method, order, block, metric, seed,
image) that the chapters plot and write to ``results/``. Explanation maps are cached keyed by the
model's weights, the inputs and every setting, so re-running a chapter is fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.intervals import interval_summary
from sanitylib.infra.cache import cached
from sanitylib.methods.randomization import randomize, step_names
from sanitylib.methods.registry import method_spec
from sanitylib.methods.saliency import explain_and_predict, explain_methods
from sanitylib.methods.similarity import compare, compare_to, metric_spec, random_pair
from sanitylib.methods.stacked import STACKABLE, stacked_explain
from sanitylib.models.under_test import ModelUnderTest, model_under_test

TARGETS = ("recompute", "fixed")
DEFAULT_METRICS = ("spearman_abs", "spearman", "ssim", "hog")


def method_code(methods: Sequence[str]) -> tuple[object, ...]:
    """The functions of ``methods`` (part of a cache key: a registered method's own source)."""
    return tuple(method_spec(m).function for m in methods)


def metric_code(metrics: Sequence[str]) -> tuple[object, ...]:
    """The functions of ``metrics`` (part of a cache key, as :func:`method_code`)."""
    return tuple(metric_spec(m).function for m in metrics)


def explain_cached(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                   methods: Sequence[str], target: torch.Tensor | None = None,
                   options: Mapping[str, Mapping[str, object]] | None = None
                   ) -> dict[str, torch.Tensor]:
    """:func:`~sanitylib.methods.saliency.explain_methods`, cached by the model's identity and
    device kind, the inputs and every setting."""
    options = {m: dict(o) for m, o in (options or {}).items()}
    key = {"model": model, "inputs": inputs, "methods": list(methods), "options": options,
           "target": target}
    return cached("explanations", key,
                  lambda: explain_methods(model, inputs, methods, target, options),
                  code=method_code(methods))


def original_maps(model: ModelUnderTest, inputs: torch.Tensor, methods: Sequence[str],
                  options: Mapping[str, Mapping[str, object]],
                  target: torch.Tensor | None = None) -> dict[str, object]:
    """The trained model's predictions and maps (cached) of its predicted classes, or of the
    given ``target``: the reference every randomization step, seed and order is compared with,
    computed once."""
    def build() -> dict[str, object]:
        maps, predictions = explain_and_predict(model, inputs, methods, target, options)
        return {"predictions": predictions, "maps": maps}

    key = {"kind": "original", "model": model, "inputs": inputs, "methods": list(methods),
           "options": {m: dict(o) for m, o in options.items()}, "target": target}
    return cached("explanations", key, build, code=method_code(methods))


@dataclass
class RandomizationRun:
    """Maps of every randomization step and their similarity to the original model's maps."""

    scores: pd.DataFrame
    steps: list[str]
    #: ``maps[seed][step][method]``: maps of the first ``keep_maps`` inputs.
    maps: dict[int, dict[str, dict[str, torch.Tensor]]] = field(default_factory=dict)
    #: Test-time predictions of each step's model: ``predictions[seed][step]``.
    predictions: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


def _step_maps(model: ModelUnderTest, inputs: torch.Tensor, methods: Sequence[str], order: str,
               init: str, seed: int, blocks: Sequence[str] | None,
               target: str | torch.Tensor, options: Mapping[str, Mapping[str, object]],
               original: Mapping[str, object], stack: bool,
               progress: Callable[[str], None] | None = None,
               batchnorm: str = "kept", calibration: torch.Tensor | None = None
               ) -> dict[str, object]:
    """Explain the inputs under every randomization step of one seed (the cached unit); each
    step's predictions come with its maps (:func:`explain_and_predict`). With ``stack``, the
    methods of :data:`~sanitylib.methods.stacked.STACKABLE` run on all steps' models at once;
    ``progress(step)`` is called after each step."""
    fixed = target if isinstance(target, torch.Tensor) else \
        original["predictions"] if target == "fixed" else None
    stackable = [m for m in methods if m in STACKABLE] if stack else []
    if not stackable:
        steps: dict[str, dict[str, torch.Tensor]] = {}
        predictions: dict[str, torch.Tensor] = {}
        for step, randomized in randomize(model, blocks, order=order, init=init, seed=seed,
                                          batchnorm=batchnorm, calibration=calibration,
                                          original=False, copies=False):
            steps[step], predictions[step] = explain_and_predict(
                model.with_module(randomized), inputs, methods, fixed, options)
            if progress is not None:
                progress(step)
        return {"steps": steps, "predictions": predictions}
    models = dict(randomize(model, blocks, order=order, init=init, seed=seed,
                            batchnorm=batchnorm, calibration=calibration, original=False))
    together, stacked_predictions = stacked_explain(list(models.values()), inputs, stackable,
                                                    fixed, options)
    rest = [m for m in methods if m not in stackable]
    steps, predictions = {}, {}
    for (step, randomized), maps, predicted in zip(models.items(), together,
                                                   stacked_predictions):
        predictions[step] = predicted
        labels = predicted if fixed is None else fixed
        others = explain_methods(model.with_module(randomized), inputs, rest, labels, options)
        steps[step] = {m: maps[m] if m in maps else others[m] for m in methods}
        if progress is not None:
            progress(step)
    return {"steps": steps, "predictions": predictions}


def _step_scores(steps: Mapping[str, Mapping[str, torch.Tensor]], step_names: Sequence[str],
                 methods: Sequence[str], metrics: Sequence[str],
                 metric_options: Mapping[str, Mapping[str, object]],
                 columns: Mapping[str, object]) -> pd.DataFrame:
    """Similarity of every step's maps to the original maps (the cached score table of one
    seed): one row per (method, step, metric, image)."""
    scored = {(method, metric): dict(zip(step_names, compare_to(
        steps["original"][method], [steps[step][method] for step in step_names], metric,
        **dict(metric_options.get(metric, {}))))) for method in methods for metric in metrics}
    rows = []
    for step in step_names:
        for method in methods:
            for metric in metrics:
                values = scored[method, metric][step]
                rows.append(pd.DataFrame({
                    **columns, "method": method, "block": step,
                    "step": step_names.index(step), "metric": metric,
                    "image": np.arange(len(values)), "value": values}))
    table = pd.concat(rows, ignore_index=True)
    fixed = ["method", "order", "init", "batchnorm", "target", "block", "step", "metric", "seed",
             "image", "value"]
    return table[[c for c in table.columns if c not in fixed] + fixed]


def randomization_run(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                      methods: Sequence[str], *,
                      order: str = "cascading", init: str = "default",
                      seeds: Sequence[int] = (0,), metrics: Sequence[str] = DEFAULT_METRICS,
                      blocks: Sequence[str] | None = None,
                      target: str | torch.Tensor = "recompute",
                      options: Mapping[str, Mapping[str, object]] | None = None,
                      labels: Mapping[str, object] | None = None, keep_maps: int = 0,
                      metric_options: Mapping[str, Mapping[str, object]] | None = None,
                      verbose: bool = True, progress: Callable[[str], None] | None = None,
                      stack: bool = False, batchnorm: str = "kept",
                      calibration: torch.Tensor | None = None) -> RandomizationRun:
    """The model parameter randomization test for one model.

    Args:
        model, inputs: the trained model and the inputs to explain.
        methods: names from :data:`sanitylib.saliency.METHODS`; the trained model's maps are
            made once (:func:`original_maps`) and reused by every seed and order.
        order, init, blocks: see :func:`sanitylib.randomization.randomize`.
        seeds: randomization seeds; every seed re-draws every block.
        metrics: names from :data:`sanitylib.similarity.METRICS`; none: maps only (``keep_maps``).
        target: ``"recompute"`` explains each step's own argmax (the original code);
            ``"fixed"`` keeps the trained model's predicted class; a tensor gives the class of
            every input (as Quantus takes ``y_batch``); the table's ``target`` says ``"given"``.
        options: per-method keyword options for :func:`sanitylib.saliency.explain`.
        labels: constant columns for the table (e.g. ``{"model": "cnn", "dataset": "mnist"}``).
        keep_maps: keep the maps of this many first inputs for figures.
        metric_options: per-metric keyword options for :func:`sanitylib.similarity.compare`.
        progress: called with each step's name once its maps exist (computed or cached).
        stack: explain all steps' models of a seed in one vectorized call for the methods of
            :data:`~sanitylib.methods.stacked.STACKABLE` (for small models on a large device;
            the maps are the same, so it is not part of the cache key). Off by default: on a
            CPU it does not pay (the passes already fill the cores).
        batchnorm, calibration: what happens to batch-norm running statistics at each step
            (:data:`sanitylib.methods.randomization.BATCHNORM`; ``calibration`` inputs for
            ``reestimated``). The table's ``batchnorm`` column says which.

    Returns:
        A :class:`RandomizationRun` whose ``scores`` has one row per
        (seed, step, method, metric, image).
    """
    if isinstance(target, torch.Tensor):
        if target.shape != (len(inputs),) or target.is_floating_point():
            raise ValueError(f"target labels must be an integer tensor of shape ({len(inputs)},), "
                             f"got {tuple(target.shape)} {target.dtype}")
    elif target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; valid choices: {', '.join(TARGETS)}")
    options = {m: dict(o) for m, o in (options or {}).items()}
    model = model_under_test(model)
    names = step_names(model, blocks, order)
    rows: list[pd.DataFrame] = []
    run = RandomizationRun(pd.DataFrame(), names)
    original = original_maps(model, inputs, methods, options,
                             target if isinstance(target, torch.Tensor) else None)
    for seed in seeds:
        key = {"model": model, "inputs": inputs, "methods": list(methods), "order": order,
               "init": init, "seed": seed, "target": target, "blocks": blocks,
               "options": options, "batchnorm": batchnorm, "calibration": calibration}
        if verbose:
            print(f"  {order} / {init} / seed {seed}: {len(names)} steps x "
                  f"{len(methods)} methods x {len(inputs)} inputs", flush=True)
        done: list[str] = []

        def step_done(step: str, done: list[str] = done) -> None:
            done.append(step)
            if progress is not None:
                progress(step)

        result = cached("explanations", key, lambda seed=seed: _step_maps(
            model, inputs, methods, order, init, seed, blocks, target, options, original,
            stack, step_done, batchnorm, calibration), code=method_code(methods))
        steps = {"original": original["maps"], **result["steps"]}
        for step in steps:  # the original and a cached seed's steps count as done now
            if step not in done and progress is not None:
                progress(step)
        columns = {**(labels or {}), "order": order, "init": init, "batchnorm": batchnorm,
                   "target": "given" if isinstance(target, torch.Tensor) else target, "seed": seed}
        if metrics:
            rows.append(cached("scores", {
                "maps": steps, "steps": names, "metrics": list(metrics),
                "metric_options": metric_options or {}, "columns": columns},
                lambda steps=steps, columns=columns: _step_scores(
                    steps, names, methods, metrics, metric_options or {}, columns),
                code=metric_code(metrics)))
        if keep_maps:
            run.maps[seed] = {s: {m: v[:keep_maps] for m, v in steps[s].items()} for s in steps}
        run.predictions[seed] = {"original": original["predictions"], **result["predictions"]}
    run.scores = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return run


def pair_scores(maps_a: Mapping[str, torch.Tensor], maps_b: Mapping[str, torch.Tensor],
                metrics: Sequence[str] = DEFAULT_METRICS,
                labels: Mapping[str, object] | None = None,
                metric_options: Mapping[str, Mapping[str, object]] | None = None) -> pd.DataFrame:
    """Tidy similarity table of two sets of maps, method by method (e.g. the data randomization
    test: true-label model against permuted-label model)."""
    def build() -> pd.DataFrame:
        rows = []
        for method in maps_a:
            for metric in metrics:
                values = compare(maps_a[method], maps_b[method], metric,
                                 **dict((metric_options or {}).get(metric, {})))
                rows.append(pd.DataFrame({**(labels or {}), "method": method, "metric": metric,
                                          "image": np.arange(len(values)), "value": values}))
        return pd.concat(rows, ignore_index=True)

    return cached("scores", {"kind": "pairs", "a": maps_a, "b": maps_b, "metrics": list(metrics),
                             "metric_options": metric_options or {}, "labels": labels or {}},
                  build, code=metric_code(metrics))


def band(metric: str, values: np.ndarray) -> dict[str, object]:
    """One row of a random-map baseline table: mean, 2.5-97.5 % band and count of the defined
    (non-NaN) ``values`` of ``metric``."""
    values = values[~np.isnan(values)]
    return {"metric": metric, "mean": float(values.mean()),
            "low": float(np.percentile(values, 2.5)),
            "high": float(np.percentile(values, 97.5)), "n": int(values.size)}


def random_band(metrics: Sequence[str], pair: tuple[np.ndarray, np.ndarray],
                score: Callable[[np.ndarray, np.ndarray, str], np.ndarray]) -> pd.DataFrame:
    """The floor of every similarity, for images and text alike: ``score(a, b, metric)`` of
    two batches of unrelated random maps ``pair``, as one :func:`band` row per metric."""
    return pd.DataFrame([band(metric, score(*pair, metric)) for metric in metrics])


def baseline_table(metrics: Sequence[str], shape: tuple[int, ...], n: int = 100, seed: int = 0,
                   metric_options: Mapping[str, Mapping[str, object]] | None = None
                   ) -> pd.DataFrame:
    """The random-mask baseline of image maps (:func:`random_band` of
    :func:`sanitylib.methods.similarity.random_baseline` pairs), cached."""
    options = metric_options or {}
    return cached("scores", {"kind": "random_baseline", "metrics": list(metrics),
                             "shape": list(shape), "n": n, "seed": seed,
                             "metric_options": options},
                  lambda: random_band(metrics, random_pair(shape, n, seed),
                                      lambda a, b, m: compare(a, b, m, **dict(options.get(m, {})))),
                  code=metric_code(metrics))


def summarize_scores(scores: pd.DataFrame, by: Sequence[str], confidence: float = 0.95
                     ) -> pd.DataFrame:
    """Mean and interval of ``value`` per group with the images as independent units and seeds
    nested in them (:func:`sanitylib.experiments.intervals.interval_summary`: a t interval over
    per-image means, clipped to the metric's range); NaNs counted apart."""
    return interval_summary(scores, by, confidence)
