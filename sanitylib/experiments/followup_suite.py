"""Every follow-up test for every method on one model, with Binder et al.'s controls, as one table.

Binder et al. (2023, CVPR), "Shortcomings of Top-Down Randomization-Based Sanity Checks for
Evaluations of Deep Neural Network Explanations" (https://arxiv.org/abs/2211.12486): an
"explanation" with zero pixel-wise covariance to the model can score well under model
randomization. :data:`CONTROLS` are three such maps, scored beside the methods under top-down
and bottom-up MPRT and eMPRT, named ``control_<name>`` in the table's ``method`` column:

- ``random_per_model``: a standard normal map drawn afresh for each model (its generator seeded
  by the model's weights): it changes completely with any randomization, so MPRT calls it
  perfect, although it says nothing about the model;
- ``random_fixed``: one seeded standard normal map whatever the model: MPRT calls it insensitive;
- ``sobel``: the Sobel edge map of the input (:func:`sanitylib.methods.edges.sobel`), the paper's
  edge-detector yardstick: also insensitive.

:func:`run_followups` returns one tidy table (columns ``model``, ``dataset``, ``test``,
``method``, ``block``, ``step``, ``metric``, ``image``, ``seed``, ``value``, then extras), cached
per test and seed, keyed by the model's identity, the inputs, every setting and the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.followups import (
    TESTS,
    Options,
    emprt,
    emprt_scores,
    fully_randomized,
    input_invariance,
    mprt_scores,
    random_logit,
    smprt,
)
from sanitylib.experiments.runner import randomization_run
from sanitylib.infra.cache import cached
from sanitylib.methods.edges import sobel
from sanitylib.methods.randomization import randomize
from sanitylib.methods.registry import method_spec
from sanitylib.methods.saliency import predicted_class
from sanitylib.models.under_test import ModelUnderTest, identity, model_under_test

__all__ = ["COLUMNS", "CONTROLS", "control_maps", "run_followups"]

CONTROLS = ("random_per_model", "random_fixed", "sobel")
COLUMNS = ("model", "dataset", "test", "method", "block", "step", "metric", "image", "seed",
           "value")


def control_maps(model: nn.Module, x: torch.Tensor, control: str, seed: int = 0) -> torch.Tensor:
    """A control "explanation" shaped like ``x`` with no pixel-wise covariance to ``model``
    (one of :data:`CONTROLS`; see the module docstring)."""
    if control not in CONTROLS:
        raise ValueError(f"unknown control {control!r}; valid choices: {', '.join(CONTROLS)}")
    if control == "sobel":
        return torch.from_numpy(sobel(x)).to(dtype=x.dtype, device=x.device).expand_as(x).contiguous()
    offset = int(identity(model), 16) % 2**62 if control == "random_per_model" else 0
    generator = torch.Generator().manual_seed(seed + offset)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def _control_mprt(subject: ModelUnderTest, x: torch.Tensor, controls: Sequence[str], order: str,
                  init: str, seed: int, metric: str) -> pd.DataFrame:
    maps = {step: {f"control_{c}": control_maps(m, x, c, seed) for c in controls}
            for step, m in randomize(subject, order=order, init=init, seed=seed)}
    return mprt_scores(maps, [metric])


def _mprt(subject: ModelUnderTest, x: torch.Tensor, methods: Sequence[str],
          controls: Sequence[str], labels: torch.Tensor, seed: int, init: str, order: str,
          metric: str, options: Options) -> pd.DataFrame:
    run = randomization_run(subject, x, methods, order=order, init=init, seeds=[seed],
                            metrics=(), target=labels, options=options, keep_maps=len(x),
                            verbose=False)
    tables = [mprt_scores(run.maps[seed], [metric])] if methods else []
    if controls:
        tables.append(_control_mprt(subject, x, controls, order, init, seed, metric))
    return pd.concat(tables, ignore_index=True)


def _emprt(subject: ModelUnderTest, x: torch.Tensor, methods: Sequence[str],
           controls: Sequence[str], labels: torch.Tensor, seed: int, init: str,
           settings: Mapping[str, object], options: Options) -> pd.DataFrame:
    tables = [emprt(subject, x, methods, init=init, seed=seed, target=labels, options=options,
                    **settings)] if methods else []
    if controls:
        randomized = fully_randomized(subject, init, seed)
        tables.append(emprt_scores(
            {f"control_{c}": control_maps(subject.module, x, c, seed) for c in controls},
            {f"control_{c}": control_maps(randomized, x, c, seed) for c in controls}, **settings))
    return pd.concat(tables, ignore_index=True).assign(metric="entropy_ratio")


def _one_test(test: str, subject: ModelUnderTest, x: torch.Tensor, methods: Sequence[str],
              controls: Sequence[str], seed: int, init: str, settings: Mapping[str, object],
              options: Options) -> pd.DataFrame:
    labels = predicted_class(subject, x)
    settings = dict(settings)
    if test in ("mprt_top_down", "mprt_bottom_up"):
        return _mprt(subject, x, methods, controls, labels, seed, init, options=options,
                     **settings)
    if test == "smprt":
        metric = settings.pop("metric")
        return smprt(subject, x, methods, init=init, seed=seed, target=labels, metrics=[metric],
                     options=options, **settings)
    if test == "emprt":
        return _emprt(subject, x, methods, controls, labels, seed, init, settings, options)
    if test == "random_logit":
        return random_logit(subject, x, methods, seed=seed, target=labels, options=options,
                            **settings)
    return input_invariance(subject, x, methods, options=options, **settings)


def run_followups(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                  methods: Sequence[str], *, seeds: Sequence[int] = (0,),
                  tests: Sequence[str] = tuple(TESTS), controls: Sequence[str] = CONTROLS,
                  settings: Mapping[str, Mapping[str, object]] | None = None,
                  options: Options | None = None, init: str = "default",
                  labels: Mapping[str, object] | None = None) -> pd.DataFrame:
    """Every test of :data:`~sanitylib.experiments.followups.TESTS` for every method (and the
    controls under the MPRT tests and eMPRT) on ``model`` and ``inputs``, for every seed.

    Args:
        model, inputs: the trained model and the inputs (model inputs, preprocessed).
        methods: names from :data:`sanitylib.methods.saliency.ALL_METHODS` that run on the model.
        seeds: each seed re-draws the randomized weights, the sMPRT noise, the random other
            class and the draws of the seeded methods (a spec with a ``seed`` setting).
        tests: which tests; settings: per-test overrides of each test's ``defaults``.
        options: per-method options for :func:`sanitylib.methods.saliency.explain`.
        init: the re-initialization scheme of every randomization test.
        labels: constant columns (default: ``{"model": <model name>, "dataset": ""}``).

    Returns:
        The tidy table, one row per (test, method or control, block, metric, image, seed).
    """
    unknown = [t for t in tests if t not in TESTS]
    if unknown:
        raise ValueError(f"unknown test(s) {unknown}; valid choices: {', '.join(TESTS)}")
    subject = model_under_test(model)
    labels = {"model": subject.name, "dataset": "", **(labels or {})}
    tables = []
    for seed in seeds:
        seeded = {m: {**dict((options or {}).get(m, {})),
                      **({"seed": seed} if method_spec(m).seeded else {})} for m in methods}
        for test in tests:
            chosen = {**TESTS[test].defaults, **dict((settings or {}).get(test, {}))}
            used = [] if test in ("random_logit", "input_invariance", "smprt") else controls
            key = {"kind": "followups", "test": test, "model": subject, "inputs": inputs,
                   "methods": list(methods), "controls": list(used), "seed": seed,
                   "settings": chosen, "options": seeded, "init": init}
            table = cached("scores", key, lambda test=test, chosen=chosen, used=used, seeded=seeded,
                           seed=seed: _one_test(test, subject, inputs, methods, used, seed, init,
                                                chosen, seeded))
            tables.append(table.assign(test=test, seed=seed, **labels))
    table = pd.concat(tables, ignore_index=True)
    for column in ("block", "step", "metric"):
        if column not in table:
            table[column] = np.nan
    return table[[*COLUMNS, *(c for c in table.columns if c not in COLUMNS)]]
