"""Run the sanity checks end to end: explain, randomize, compare, tabulate.

The loop of Adebayo et al. (2018), Sections 3-4, over methods, randomization steps, seeds and
images, producing tidy tables (one row per model, dataset, method, order, block, metric, seed,
image) that the chapters plot and write to ``results/``. Explanation maps are cached keyed by the
model's weights, the inputs and every setting, so re-running a chapter is fast.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.intervals import interval_summary
from sanitylib.infra.cache import cache_key, cached
from sanitylib.infra.executor import configured_executor
from sanitylib.methods.randomization import BATCHNORM, INITS, ORDERS, randomize, step_names
from sanitylib.methods.registry import MethodSpec, install_method, method_spec
from sanitylib.methods.saliency import explain_and_predict, explain_methods
from sanitylib.methods.similarity import compare, compare_to, metric_spec, random_pair
from sanitylib.methods.stacked import STACKABLE, stacked_explain
from sanitylib.models.under_test import ModelUnderTest, model_under_test

__all__ = ["DEFAULT_METRICS", "TARGETS", "RandomizationConfig", "RandomizationRun", "band",
           "baseline_table", "explain_cached", "explanation_code", "method_code", "metric_code",
           "original_maps", "pair_scores", "random_band", "randomization_run",
           "registered_defaults", "seed_key", "seed_maps", "summarize_scores"]

TARGETS = ("recompute", "fixed")
DEFAULT_METRICS = ("spearman_abs", "spearman", "ssim", "hog")


def method_code(methods: Sequence[str]) -> tuple[object, ...]:
    """The functions of ``methods`` (part of a cache key: a registered method's own source)."""
    return tuple(method_spec(m).function for m in methods)


def explanation_code(model: ModelUnderTest | nn.Module, methods: Sequence[str]
                     ) -> tuple[object, ...]:
    """What an explanation's cache key holds besides its settings and the model's weights: the
    methods' functions (a registered method's source, bound arguments and closure) and the
    model's code (its class and, for a model under test, the initializer its randomization
    runs)."""
    module = model.module if isinstance(model, ModelUnderTest) else model
    init = model.init_module if isinstance(model, ModelUnderTest) else None
    return (*method_code(methods), type(module), *([init] if init is not None else []))


def registered_defaults(methods: Sequence[str]) -> dict[str, dict[str, object]]:
    """The defaults of the registered methods among ``methods``, for a cache key (a built-in's
    are in its registry's source)."""
    return {m: method_spec(m).defaults for m in methods
            if method_spec(m).source == "registered"}


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
           "target": target, "registered": registered_defaults(methods)}
    return cached("explanations", key,
                  lambda: explain_methods(model, inputs, methods, target, options),
                  code=explanation_code(model, methods))


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
           "options": {m: dict(o) for m, o in options.items()}, "target": target,
           "registered": registered_defaults(methods)}
    return cached("explanations", key, build, code=explanation_code(model, methods))


@dataclass
class RandomizationRun:
    """Maps of every randomization step and their similarity to the original model's maps."""

    scores: pd.DataFrame
    steps: list[str]
    #: ``maps[seed][step][method]``: maps of the first ``keep_maps`` inputs.
    maps: dict[int, dict[str, dict[str, torch.Tensor]]] = field(default_factory=dict)
    #: Test-time predictions of each step's model: ``predictions[seed][step]``.
    predictions: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


def _step_maps(model: ModelUnderTest, inputs: torch.Tensor, config: RandomizationConfig,
               seed: int, original: Mapping[str, object], stack: bool,
               progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Explain the inputs under every randomization step of one seed (the cached unit); each
    step's predictions come with its maps (:func:`explain_and_predict`). With ``stack``, the
    methods of :data:`~sanitylib.methods.stacked.STACKABLE` run on all steps' models at once;
    ``progress(step)`` is called after each step."""
    methods, options, target = config.methods, config.options, config.target
    fixed = target if isinstance(target, torch.Tensor) else \
        original["predictions"] if target == "fixed" else None
    stackable = [m for m in methods if m in STACKABLE] if stack else []
    randomized_models = randomize(model, config.blocks, order=config.order, init=config.init,
                                  seed=seed, batchnorm=config.batchnorm,
                                  calibration=config.calibration, original=False,
                                  copies=bool(stackable))
    if not stackable:
        steps: dict[str, dict[str, torch.Tensor]] = {}
        predictions: dict[str, torch.Tensor] = {}
        for step, randomized in randomized_models:
            steps[step], predictions[step] = explain_and_predict(
                model.with_module(randomized), inputs, methods, fixed, options)
            if progress is not None:
                progress(step)
        return {"steps": steps, "predictions": predictions}
    models = dict(randomized_models)
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


@dataclass(frozen=True)
class RandomizationConfig:
    """What one model parameter randomization run computes, besides the model and its inputs
    (Adebayo et al. 2018, Section 4).

    Attributes:
        methods: registered methods (:mod:`sanitylib.methods.registry`); the trained model's maps
            are made once (:func:`original_maps`) and reused by every seed.
        order, init, blocks: see :func:`sanitylib.methods.randomization.randomize`.
        seeds: randomization seeds; every seed re-draws every block.
        metrics: registered metrics (:mod:`sanitylib.methods.similarity`); none: maps only.
        target: ``"recompute"`` explains each step's own argmax (the original code);
            ``"fixed"`` keeps the trained model's predicted class; a tensor gives the class of
            every input (as Quantus takes ``y_batch``), and the table's ``target`` says
            ``"given"``.
        options: per-method settings (:func:`sanitylib.methods.saliency.explain`).
        metric_options: per-metric keyword options for :func:`sanitylib.methods.similarity.compare`.
        batchnorm, calibration: what happens to batch-norm running statistics at each step
            (:data:`sanitylib.methods.randomization.BATCHNORM`; ``calibration`` inputs for
            ``reestimated``); the table's ``batchnorm`` column says which.
    """

    methods: tuple[str, ...]
    order: str = "cascading"
    init: str = "default"
    seeds: tuple[int, ...] = (0,)
    metrics: tuple[str, ...] = DEFAULT_METRICS
    blocks: tuple[str, ...] | None = None
    target: str | torch.Tensor = "recompute"
    options: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    metric_options: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    batchnorm: str = "kept"
    calibration: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for name in ("methods", "seeds", "metrics"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.blocks is not None:
            object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "options",
                           {m: dict(o) for m, o in (self.options or {}).items()})
        object.__setattr__(self, "metric_options",
                           {m: dict(o) for m, o in (self.metric_options or {}).items()})
        for method in self.methods:
            method_spec(method)
        for metric in self.metrics:
            metric_spec(metric)
        for name, valid in (("order", ORDERS), ("init", INITS), ("batchnorm", BATCHNORM)):
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid choices: "
                                 f"{', '.join(valid)}")
        if isinstance(self.target, torch.Tensor):
            if self.target.ndim != 1 or self.target.is_floating_point():
                raise ValueError(f"target labels must be an integer tensor of shape (inputs,), "
                                 f"got {tuple(self.target.shape)} {self.target.dtype}")
        elif self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; valid choices: {', '.join(TARGETS)}")

    def seed_key(self, model: ModelUnderTest, inputs: torch.Tensor, seed: int) -> dict[str, object]:
        """The cache key of one seed's maps."""
        return {"model": model, "inputs": inputs, "methods": list(self.methods),
                "order": self.order, "init": self.init, "seed": seed, "target": self.target,
                "blocks": None if self.blocks is None else list(self.blocks),
                "options": self.options, "batchnorm": self.batchnorm,
                "calibration": self.calibration,
                "registered": registered_defaults(self.methods)}


def seed_maps(model: ModelUnderTest, inputs: torch.Tensor, config: RandomizationConfig,
              seed: int, original: Mapping[str, object], stack: bool = False,
              progress: Callable[[str], None] | None = None,
              registered: Sequence[MethodSpec] = (),
              key: tuple[str, dict[str, object]] | None = None) -> dict[str, object]:
    """One seed's maps and predictions at every step: the unit of work of a randomization run,
    cached under :func:`seed_key` whichever process computes it (an executor's worker writes
    the entry; the cache's writes are atomic). ``registered``: the specs of the run's
    registered methods, installed here first (a worker process has only the built-ins, or an
    older registration); ``key``: the entry's key as the caller made it, so that a worker that
    cannot read the caller's source still writes where the caller will look."""
    for spec in registered:
        install_method(spec)
    return cached("explanations", {},
                  lambda: _step_maps(model, inputs, config, seed, original, stack, progress),
                  key=key if key is not None else seed_key(model, inputs, config, seed))


def seed_key(model: ModelUnderTest, inputs: torch.Tensor, config: RandomizationConfig,
             seed: int) -> tuple[str, dict[str, object]]:
    """The cache key of one seed's unit (:func:`seed_maps`): its configuration
    (:meth:`RandomizationConfig.seed_key`) and code (:func:`explanation_code`)."""
    code = explanation_code(model, config.methods)
    return cache_key(config.seed_key(model, inputs, seed), (seed_maps, *code), code)


def _seed_units(model: ModelUnderTest, inputs: torch.Tensor, config: RandomizationConfig,
                original: Mapping[str, object], stack: bool, names: Sequence[str],
                verbose: bool, progress: Callable[[str], None] | None,
                executor: Executor | None) -> dict[int, dict[str, object]]:
    """Every seed's unit (:func:`seed_maps`), here one after another or on ``executor``;
    ``progress(step)`` once per step of every seed (on an executor, when its unit is done)."""
    if executor is None:
        units = {}
        for seed in config.seeds:
            if verbose:
                print(f"  {config.order} / {config.init} / seed {seed}: {len(names)} steps x "
                      f"{len(config.methods)} methods x {len(inputs)} inputs", flush=True)
            done: list[str] = []

            def step_done(step: str, done: list[str] = done) -> None:
                done.append(step)
                if progress is not None:
                    progress(step)

            units[seed] = seed_maps(model, inputs, config, seed, original, stack, step_done)
            for step in ["original", *units[seed]["steps"]]:  # cached steps count as done now
                if step not in done and progress is not None:
                    progress(step)
        return units
    registered = [method_spec(m) for m in config.methods
                  if method_spec(m).source == "registered"]
    with warnings.catch_warnings():  # Dask's note that a unit carries the model: it must
        warnings.filterwarnings("ignore", message="Sending large graph")
        futures = {seed: executor.submit(seed_maps, model, inputs, config, seed, original,
                                         stack, None, registered,
                                         seed_key(model, inputs, config, seed))
                   for seed in config.seeds}
    units = {}
    try:
        for seed, future in futures.items():  # in seed order: any executor's futures will do
            units[seed] = future.result()
            for step in ["original", *units[seed]["steps"]]:
                if progress is not None:
                    progress(step)
    except BaseException:  # a failed unit or Ctrl-C: nothing more is started
        for future in futures.values():
            future.cancel()
        raise
    return units


def randomization_run(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                      methods: Sequence[str] | RandomizationConfig, *,
                      labels: Mapping[str, object] | None = None, keep_maps: int = 0,
                      verbose: bool = True, progress: Callable[[str], None] | None = None,
                      stack: bool = False, executor: Executor | None = None,
                      **settings: object) -> RandomizationRun:
    """The model parameter randomization test for one model.

    Args:
        model, inputs: the trained model and the inputs to explain.
        methods: the methods, with the rest of the :class:`RandomizationConfig` as keywords
            (``order=``, ``seeds=``, ...), or a whole :class:`RandomizationConfig`.
        labels: constant columns for the table (e.g. ``{"model": "cnn", "dataset": "mnist"}``).
        keep_maps: keep the maps of this many first inputs for figures.
        progress: called with each step's name once its maps exist (computed or cached).
        stack: explain all steps' models of a seed in one vectorized call for the methods of
            :data:`~sanitylib.methods.stacked.STACKABLE` (for small models on a large device;
            the maps are the same, so it is not part of the cache key). Off by default: on a
            CPU it does not pay (the passes already fill the cores).
        executor: any :class:`concurrent.futures.Executor` (a process pool, a Dask client's
            ``get_executor()``) to compute the seeds' units (:func:`seed_maps`) at once; the
            scores are the serial run's, merged in seed order. Its workers must see the same
            cache folder (``SANITYLIB_CACHE``) to share their entries with later runs. Default:
            :func:`sanitylib.infra.executor.configured_executor` (serial unless
            ``SANITYLIB_WORKERS`` or ``SANITYLIB_SCHEDULER`` is set).

    Returns:
        A :class:`RandomizationRun` whose ``scores`` has one row per
        (seed, step, method, metric, image).
    """
    fields = [f.name for f in dataclasses.fields(RandomizationConfig)]
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise TypeError(f"randomization_run got unknown setting(s) {unknown}; valid: "
                        f"{', '.join(fields)}, labels, keep_maps, verbose, progress, stack, "
                        "executor")
    if isinstance(methods, RandomizationConfig):
        config = dataclasses.replace(methods, **settings) if settings else methods
    else:
        config = RandomizationConfig(tuple(methods), **settings)  # type: ignore[arg-type]
    if isinstance(config.target, torch.Tensor) and config.target.shape != (len(inputs),):
        raise ValueError(f"target labels must be an integer tensor of shape ({len(inputs)},), "
                         f"got {tuple(config.target.shape)} {config.target.dtype}")
    model = model_under_test(model)
    methods, metrics, options = config.methods, config.metrics, config.options
    names = step_names(model, config.blocks, config.order)
    rows: list[pd.DataFrame] = []
    run = RandomizationRun(pd.DataFrame(), names)
    given = config.target if isinstance(config.target, torch.Tensor) else None
    original = original_maps(model, inputs, methods, options, given)
    units = _seed_units(model, inputs, config, original, stack, names, verbose, progress,
                        executor if executor is not None else configured_executor())
    for seed in config.seeds:
        result = units[seed]
        steps = {"original": original["maps"], **result["steps"]}
        columns = {**(labels or {}), "order": config.order, "init": config.init,
                   "batchnorm": config.batchnorm,
                   "target": "given" if given is not None else config.target, "seed": seed}
        if metrics:
            rows.append(cached("scores", {
                "maps": steps, "steps": names, "metrics": list(metrics),
                "metric_options": config.metric_options, "columns": columns},
                lambda steps=steps, columns=columns: _step_scores(
                    steps, names, methods, metrics, config.metric_options, columns),
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
