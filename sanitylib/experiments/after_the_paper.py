"""The chapter "After the paper": the follow-up tests on the book's networks, each similarity on
a floor-to-ceiling scale, and the recommendation table the NeurIPS reviewers asked for.

The tests themselves are :mod:`sanitylib.experiments.followups` (Hedström et al. 2023, Sixt et
al. 2020, Kindermans et al. 2017) with Binder et al.'s (2023) controls
(:mod:`sanitylib.experiments.followup_suite`); the ceiling and the scale are
:mod:`sanitylib.experiments.ceiling`. This module summarizes the tidy scores, places them on the
scale, and gathers every test of the book into one table, read from ``results/``; the
recommendation drawn from sanity, correctness and faithfulness together is
:mod:`sanitylib.experiments.recommendation`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from sanitylib.data.images import load_dataset
from sanitylib.experiments.ceiling import place
from sanitylib.experiments.followups import TESTS
from sanitylib.experiments.imagenet import load_networks
from sanitylib.experiments.parameter_randomization import (
    method_options,
)
from sanitylib.experiments.runner import summarize_scores
from sanitylib.experiments.tables import read_result
from sanitylib.methods.registry import ALL_METHODS, LABELS
from sanitylib.models.training import TrainConfig, train
from sanitylib.models.under_test import ModelUnderTest, model_under_test

__all__ = [
    "SCALED_TESTS",
    "Subject",
    "book_tests",
    "emprt_reading",
    "final_scores",
    "followup_summary",
    "load_subjects",
    "recommendation_table",
    "scaled_summary",
]


#: Tests whose similarity goes on the floor-to-ceiling scale, and whether a sound method should
#: sit near the floor ("low": the maps must change) or near the ceiling ("high").
SCALED_TESTS = {"mprt_top_down": "low", "mprt_bottom_up": "low", "smprt": "low",
                "random_logit": "low", "input_invariance": "high"}


def final_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One value per (model, test, method, image, seed): top-down MPRT at its last step (every
    block randomized, the step the paper's verdicts read); bottom-up and smooth MPRT as the mean
    over their randomized steps (Quantus's average without the original model's 1: their last
    step, every block randomized, is the same model as top-down's); the other tests as they
    are."""
    stepped = scores["step"].notna()
    top = scores[stepped & (scores.test == "mprt_top_down")]
    top = top[top.step == top.groupby("model")["step"].transform("max")]
    others = scores[stepped & (scores.test != "mprt_top_down") & (scores.step > 0)]
    keys = ["model", "dataset", "test", "method", "metric", "image", "seed"]
    averaged = others.groupby(keys, sort=False, dropna=False)["value"].mean().reset_index()
    return pd.concat([scores[~stepped], top, averaged], ignore_index=True)


def followup_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95 % t interval over images and seeds of :func:`final_scores`, per (model,
    dataset, test, method, metric); NaNs (a refused or constant map) are counted, not averaged."""
    return summarize_scores(final_scores(scores), ["model", "dataset", "test", "method", "metric"])


def scaled_summary(summary: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame
                   ) -> pd.DataFrame:
    """The similarity tests of ``summary`` on the floor-to-ceiling scale
    (:func:`sanitylib.experiments.ceiling.place`), one model at a time: ``floor`` and
    ``ceiling`` carry a ``model`` column. Adds ``sanity``: the position when a sound method should
    stay similar (input invariance), one minus it when its maps should change, so that 1 always
    means "behaves as the test asks" and 0 "no better than the failing reference"."""
    rows = []
    for model, part in summary[summary.test.isin(list(SCALED_TESTS))].groupby("model", sort=False):
        placed = place(part, floor[floor.model == model].drop(columns="model"),
                       ceiling[ceiling.model == model])
        rows.append(placed)
    if not rows:
        return pd.DataFrame()
    table = pd.concat(rows, ignore_index=True)
    wants_low = table.test.map(SCALED_TESTS) == "low"
    table["sanity"] = np.where(wants_low, 1 - table["position"], table["position"])
    return table


def book_tests(model: str = "cnn", dataset: str = "mnist", metric: str = "spearman_abs", *,
               root: Path | None = None) -> pd.DataFrame:
    """The original tests of the book for ``model`` on ``dataset`` as read from the results
    folder (``root``, default ``results/``; :func:`sanitylib.experiments.tables.read_result`)
    (rows of test, method, mean and, where the chapter measured them, floor and ceiling):

    - ``parameter_randomization``: the cascading chapter's last step;
    - ``data_randomization``: true- against permuted-label model, with two models trained on
      the same true labels with other seeds as the ceiling (``seed_ceiling.csv``);
    - ``edges``: similarity to the Sobel edge map (trained model), between the floor of random
      maps and 1 (the edge map itself);
    - ``infidelity``: the input-multiplier chapter's relative infidelity of the trained model
      (lower is better; global IG stands for Integrated Gradients), as a raw number.
    A chapter that has not run leaves its rows out, never guessed.
    """
    rows: list[pd.DataFrame] = []
    summary, base = read_result("cascading/summary", root), read_result("cascading/baseline", root)
    random_floor = np.nan
    if summary is not None and base is not None:
        part = summary[(summary.model == model) & (summary.dataset == dataset)
                       & (summary.metric == metric)]
        part = part[part.step == part.step.max()]
        floor = base[(base.metric == metric) & (((base.model == model) & (base.dataset == dataset))
                                                | base.model.isna())]  # the MNIST band: no model
        random_floor = float(floor["mean"].iloc[0]) if len(floor) else np.nan
        rows.append(part[["method", "mean"]].assign(test="parameter_randomization",
                                                    floor=random_floor))
    summary = read_result("data_randomization/summary", root)
    base = read_result("data_randomization/baseline", root)
    seeds = read_result("data_randomization/seed_ceiling", root)
    if summary is not None and base is not None:
        part = summary[(summary.model == model) & (summary.dataset == dataset)
                       & (summary.metric == metric)][["method", "mean"]]
        floor = base.loc[base.metric == metric, "mean"]
        part = part.assign(test="data_randomization",
                           floor=float(floor.iloc[0]) if len(floor) else np.nan)
        if seeds is not None:
            seeds = seeds[(seeds.model == model) & (seeds.dataset == dataset)
                          & (seeds.metric == metric)]
            part = part.merge(seeds[["method", "mean"]].rename(columns={"mean": "ceiling"}),
                              on="method", how="left")
        rows.append(part)
    edges = read_result("edges/summary", root)
    if edges is not None:
        part = edges[(edges.model == model) & (edges.dataset == dataset)
                     & (edges.metric == metric) & (edges.detector == "sobel")]
        if "variant" in part:
            part = part[part.variant == "trained"]
        rows.append(part[["method", "mean"]].assign(test="edges", floor=random_floor,
                                                    ceiling=1.0))
    quality = read_result("input_multiplier/quality_summary", root)
    if quality is not None:
        part = quality[(quality.metric == "relative_infidelity") & (quality.step == 0)]
        part = part.assign(method=part.method.replace({"ig_global": "integrated_gradients"}))
        rows.append(part[part.method != "ig_local"][["method", "mean"]]
                    .assign(test="infidelity"))
    if not rows:
        return pd.DataFrame(columns=["test", "method", "mean", "floor", "ceiling"])
    table = pd.concat(rows, ignore_index=True)
    for column in ("floor", "ceiling"):
        if column not in table:
            table[column] = np.nan
    return table[["test", "method", "mean", "floor", "ceiling"]]


#: The columns of the recommendation table, in the book's order.
TEST_ORDER = ("parameter_randomization", "data_randomization", "edges", "mprt_bottom_up",
              "smprt", "emprt", "random_logit", "input_invariance", "infidelity")
TEST_LABELS = {"parameter_randomization": "parameter rand. (top-down)",
               "data_randomization": "data rand.", "edges": "edges (Sobel)",
               "mprt_bottom_up": "bottom-up MPRT", "smprt": "sMPRT", "emprt": "eMPRT",
               "random_logit": "random logit", "input_invariance": "input invariance",
               "infidelity": "infidelity"}


def recommendation_table(book: pd.DataFrame, scaled: pd.DataFrame, summary: pd.DataFrame,
                         perturbation_ceiling: pd.DataFrame, model: str,
                         methods: Sequence[str]) -> pd.DataFrame:
    """Every method against every test of the book for ``model``: one number per cell where 1
    means "behaves as the test asks" and 0 "like the reference that fails" (a floor-to-ceiling
    position, turned so), the raw entropy ratio for eMPRT (higher is better; 0 is an
    insensitive map), the raw infidelity (lower is better). Empty where a method was not run
    or could not run on the model."""
    cells: dict[tuple[str, str], float] = {}
    ceilings = perturbation_ceiling[perturbation_ceiling.model == model]
    for r in book.itertuples():
        if r.test == "infidelity":
            cells[(r.method, r.test)] = r.mean
            continue
        ceiling = r.ceiling
        if pd.isna(ceiling):
            match = ceilings[(ceilings.method == r.method) & (ceilings.metric == "spearman_abs")]
            ceiling = float(match["mean"].iloc[0]) if len(match) else np.nan
        span = ceiling - r.floor
        position = (r.mean - r.floor) / span if pd.notna(span) and span > 0 else np.nan
        cells[(r.method, r.test)] = 1 - position
    for r in scaled[scaled.model == model].itertuples():
        if r.test != "mprt_top_down":
            cells[(r.method, r.test)] = r.sanity
    for r in summary[(summary.model == model) & (summary.test == "emprt")].itertuples():
        cells[(r.method, "emprt")] = r.mean
    table = pd.DataFrame(index=list(methods), columns=list(TEST_ORDER), dtype=float)
    for (method, test), value in cells.items():
        if method in table.index:
            table.loc[method, test] = value
    return table


def emprt_reading(summary: pd.DataFrame, labels: Mapping[str, str] = LABELS,
                  model_labels: Mapping[str, str] | None = None,
                  method: str = "guided_backprop") -> str:
    """Where eMPRT and top-down MPRT disagree on ``method``, network by network: its rank among
    the methods under each (eMPRT: highest entropy rise first; MPRT: the similarity after full
    randomization closest to 0, the floor, first), with the values, computed from :func:`followup_summary`.
    Hedström et al. (2023) found Guided Backprop first under eMPRT on ImageNet VGG16 (1.56)
    and ResNet-18 (0.79), against the original test's verdict."""
    lines = []
    real = summary[~summary.method.str.startswith("control_")]
    for model, rows in real.groupby("model", sort=False):
        name = (model_labels or {}).get(model, model.upper())
        ranks = {}
        for test, ascending in (("emprt", False), ("mprt_top_down", True)):
            part = rows[rows.test == test].dropna(subset=["mean"])
            if method not in set(part.method):
                continue
            key = (lambda v: v.abs()) if test == "mprt_top_down" else None  # distance to 0
            ordered = part.sort_values("mean", ascending=ascending, key=key).reset_index(drop=True)
            at = int(ordered.index[ordered.method == method][0])
            ranks[test] = (at + 1, len(ordered), float(ordered["mean"].iloc[at]),
                           labels.get(ordered.method.iloc[0], ordered.method.iloc[0]),
                           float(ordered["mean"].iloc[0]))
        if len(ranks) < 2:
            continue
        (e_rank, e_n, e_value, e_first, e_best) = ranks["emprt"]
        (m_rank, m_n, m_value, _, _) = ranks["mprt_top_down"]
        lines.append(f"* **{name}**: under eMPRT {labels.get(method, method)} ranks {e_rank} of "
                     f"{e_n} ({e_value:+.2f}; first {e_first}, {e_best:+.2f}); under top-down "
                     f"MPRT {m_rank} of {m_n} (similarity {m_value:.2f} after full "
                     "randomization).")
    return "\n".join(lines)


class Subject(NamedTuple):
    """One network of the chapter with what it is tested on and how."""

    model: ModelUnderTest
    inputs: torch.Tensor
    dataset: str
    methods: list[str]
    tests: list[str]
    seeds: list[int]
    options: dict[str, dict[str, object]]


def load_subjects(dataset: str, training: Mapping[str, Mapping[str, object]], n_images: int,
                  methods: Sequence[str], seeds: Sequence[int], ig_steps: int, samples: int,
                  imagenet_networks: Sequence[str], photographs: Sequence[str],
                  imagenet_methods: Sequence[str], imagenet_tests: Sequence[str],
                  imagenet_ig_steps: int, imagenet_samples: int
                  ) -> tuple[dict[str, Subject], dict[str, str]]:
    """The chapter's networks: the CNN trained on ``dataset`` (every test, all ``seeds``) and
    each ImageNet network that loads (its own methods and tests, the first seed), with
    ``{network: why it was skipped}`` for the others."""
    data = load_dataset(dataset)
    cnn = model_under_test(train(TrainConfig("cnn", dataset, "true", **training["true"]), data,
                                 verbose=False).model)
    subjects = {"cnn": Subject(cnn, data.x_test[:n_images], dataset, list(methods), list(TESTS),
                               list(seeds), method_options(ig_steps, samples, methods=ALL_METHODS))}
    networks, skipped = load_networks(imagenet_networks, photographs)
    for name, net in networks.items():
        subjects[name] = Subject(net.model, net.inputs, "photographs", list(imagenet_methods),
                                 list(imagenet_tests), [seeds[0]],
                                 method_options(imagenet_ig_steps, imagenet_samples,
                                                methods=ALL_METHODS))
    return subjects, skipped
