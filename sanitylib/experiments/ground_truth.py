"""The chapter "Passing is not enough": does a map point at the evidence (correctness), and does
the model need what it points at (faithfulness)?

Correctness is measured on models trained on planted evidence (:mod:`sanitylib.data.planted`)
with the localization metrics of Arras et al. (2022) (:mod:`sanitylib.methods.localization`),
beside Binder et al.'s (2023) controls, maps that know nothing of the model
(:func:`sanitylib.experiments.followup_suite.control_maps`). Faithfulness is the deletion curve
against a random order (:mod:`sanitylib.methods.deletion`) on the book's real data. Both become
claims under the book's decision rule (:mod:`sanitylib.experiments.claims`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from sanitylib.data.images import ImageDataset
from sanitylib.data.planted import PlantedDataset, planted_dataset
from sanitylib.experiments.ceiling import CUTOFFS
from sanitylib.experiments.claims import (
    DATASET_LABELS,
    claims_frame,
    concat_claims,
    threshold_claims,
)
from sanitylib.experiments.followup_suite import control_maps
from sanitylib.experiments.intervals import interval_summary, wilson
from sanitylib.experiments.parameter_randomization import methods_for
from sanitylib.experiments.runner import original_maps
from sanitylib.methods.deletion import (
    FRACTIONS,
    curve_area,
    deletion_curves,
    deletion_order,
    random_order,
)
from sanitylib.methods.localization import chance, mass_accuracy, rank_accuracy
from sanitylib.models.training import TrainConfig, TrainedModel, train
from sanitylib.models.under_test import ModelUnderTest, model_under_test

__all__ = ["CASES", "CASE_LABELS", "CHAPTER", "CONTROLS", "METRIC_LABELS", "FaithfulnessSubject", "accuracy_rows",
           "control_claims", "control_reading", "correctness_claims", "deletion_scores", "faithfulness_claims", "faithfulness_scores",
           "localization_scores", "localization_summary", "planted_models"]

CHAPTER = "13_ground_truth"
#: The planted-evidence cases: (construction, whether the evidence decides the label).
CASES = {"patch": ("patch", True), "patch_control": ("patch", False), "block": ("block", True)}
CASE_LABELS = {case: DATASET_LABELS[case] for case in CASES}
#: Maps that know nothing of the model (Binder et al. 2023), scored beside the methods.
CONTROLS = ("random_per_model", "sobel")
METRIC_LABELS = {"mass_accuracy": "relevance mass accuracy",
                 "rank_accuracy": "relevance rank accuracy", "deletion_gain": "deletion gain"}


def planted_models(base: ImageDataset, cases: Sequence[str], architectures: Sequence[str],
                   training: Mapping[str, object], seed: int = 0
                   ) -> tuple[dict[tuple[str, str], TrainedModel], dict[str, PlantedDataset]]:
    """Every architecture trained (or loaded from the cache) on every case of :data:`CASES`
    built from ``base``, with ``training`` the :class:`TrainConfig` keywords; the datasets by
    case."""
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}; valid choices: {', '.join(CASES)}")
    data = {case: planted_dataset(base, *CASES[case], seed=seed) for case in cases}
    models = {(arch, case): train(TrainConfig(arch, d.name, "true", seed=seed, **training), d,
                                  verbose=False)
              for case, d in data.items() for arch in architectures}
    return models, data


def accuracy_rows(models: Mapping[tuple[str, str], TrainedModel],
                  data: Mapping[str, PlantedDataset]) -> pd.DataFrame:
    """One row per model: its case, training and test accuracy with the test accuracy's Wilson
    interval over the test images, and chance (one class in ten)."""
    rows = []
    for (arch, case), trained in models.items():
        n = len(data[case].y_test)
        low, high = wilson(trained.test_accuracy, n)
        rows.append({"model": arch, "dataset": case, "train_accuracy": trained.train_accuracy,
                     "test_accuracy": trained.test_accuracy, "low": low, "high": high,
                     "n_test": n, "chance": 1 / len(data[case].classes),
                     "epochs_run": trained.epochs_run})
    return pd.DataFrame(rows)


def _localization_rows(maps: Mapping[str, torch.Tensor], masks: torch.Tensor,
                       columns: Mapping[str, object]) -> list[pd.DataFrame]:
    area = chance(masks)
    rows = []
    for method, m in maps.items():
        for metric, score in (("mass_accuracy", mass_accuracy), ("rank_accuracy", rank_accuracy)):
            value = score(m, masks)
            rows.append(pd.DataFrame({**columns, "method": method, "metric": metric,
                                      "image": np.arange(len(value)), "value": value,
                                      "chance": area, "scaled": (value - area) / (1 - area)}))
    return rows


def localization_scores(models: Mapping[tuple[str, str], TrainedModel],
                        data: Mapping[str, PlantedDataset], n_images: int,
                        methods: Sequence[str], options: Mapping[str, Mapping[str, object]]
                        ) -> tuple[pd.DataFrame, dict[tuple[str, str], dict[str, torch.Tensor]]]:
    """Relevance mass and rank accuracy of every method's map (of the predicted class) and of
    the :data:`CONTROLS` on the first ``n_images`` test images of each model's case, one row
    per (model, dataset, method, metric, image), with the mask's area (``chance``) and the
    value on the scale from chance (0) to all relevance on the evidence (1) (``scaled``); and
    the maps, by (model, case)."""
    rows, all_maps = [], {}
    for (arch, case), trained in models.items():
        subject = model_under_test(trained.model)
        x, masks = data[case].x_test[:n_images], data[case].masks_test[:n_images]
        maps = dict(original_maps(subject, x, methods_for(subject, methods), options)["maps"])
        maps.update({f"control_{c}": control_maps(subject.module, x, c) for c in CONTROLS})
        all_maps[arch, case] = maps
        rows += _localization_rows(maps, masks, {"model": arch, "dataset": case})
    return pd.concat(rows, ignore_index=True), all_maps


def localization_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (model, dataset, method, metric): the scaled value's mean and 95 % interval over the
    images (:func:`interval_summary`), with the raw mean and the mean chance level."""
    keys = ["model", "dataset", "method", "metric"]
    summary = interval_summary(scores.assign(value=scores["scaled"]), keys)
    raw = scores.groupby(keys, sort=False).agg(raw_mean=("value", "mean"),
                                               chance=("chance", "mean")).reset_index()
    return summary.merge(raw, on=keys, how="left")


def correctness_claims(summary: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """For every method on every case whose evidence decides the label: its maps put more of
    their relevance on the evidence than a fifth of the way from chance to all of it (the
    book's effect-size cut-off, :data:`~sanitylib.experiments.ceiling.CUTOFFS`)."""
    real = summary[~summary.method.str.startswith("control_")
                   & summary.dataset.map(lambda c: CASES.get(c, ("", False))[1])]
    parts = []
    for (case, metric), part in real.groupby(["dataset", "metric"], sort=False):
        parts.append(threshold_claims(
            part, threshold=CUTOFFS[0], expected="above", chapter=CHAPTER,
            test=METRIC_LABELS[metric].capitalize(), source="Arras et al. 2022 (ground truth)",
            statement="{model} trained on the " + CASE_LABELS[case] + " data: {method} puts its "
                      "relevance on the evidence (" + METRIC_LABELS[metric] + " above {threshold} "
                      "of the way from chance to all of it)",
            statistic=f"{METRIC_LABELS[metric]}, 0 = chance (mask area), 1 = all on the mask",
            labels=labels, expectation=f"above {CUTOFFS[0]:g}"))
    return concat_claims(parts)


def control_claims(scores: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """For every method: its maps put more relevance mass on the patch for the model whose
    labels the patch decides than for the control model trained on the same images with labels
    the patch says nothing about (a paired difference per image; the two models see identical
    images and masks)."""
    mass = scores[(scores.metric == "mass_accuracy") & ~scores.method.str.startswith("control_")]
    planted = mass[mass.dataset == "patch"].set_index(["model", "method", "image"])["value"]
    control = mass[mass.dataset == "patch_control"].set_index(["model", "method", "image"])["value"]
    both = (planted - control).dropna().rename("value").reset_index()
    if both.empty:
        return claims_frame([])
    summary = interval_summary(both.assign(dataset="patch"), ["model", "dataset", "method"])
    return threshold_claims(
        summary, threshold=0.0, expected="above", chapter=CHAPTER,
        test="Uninformative-patch control", source="Kim et al. 2022 (SMERF: a feature the label ignores)",
        statement="{model}: {method} puts more relevance on the patch when the patch decides the "
                  "label than when it carries no label information",
        statistic="paired difference in relevance mass accuracy, planted − control model",
        labels=labels, expectation="above 0")


def deletion_scores(model: ModelUnderTest, inputs: torch.Tensor,
                    maps: Mapping[str, torch.Tensor], target: torch.Tensor,
                    random_seeds: Sequence[int], columns: Mapping[str, object],
                    region: int, fractions: Sequence[float] = FRACTIONS,
                    baseline: float = 0.0, max_rows: int | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deletion curves (:func:`~sanitylib.methods.deletion.deletion_curves`, ``region`` ×
    ``region`` squares) of every map in ``maps`` and of random orders (one per seed, averaged:
    method ``random``), and each map's *deletion gain* per image: the random curve's area minus
    its own (positive: deleting the map's regions first lowers the class faster than deleting
    at random). Returns (curves: one row per method, fraction, image; gains: per method,
    image)."""
    n, _, height, width = inputs.shape
    n_regions = (height // region) * (width // region)
    curves = {name: deletion_curves(model, inputs, deletion_order(m, region), target, fractions,
                                    baseline, region, max_rows) for name, m in maps.items()}
    curves["random"] = np.mean([deletion_curves(model, inputs,
                                                random_order(n, n_regions, seed), target,
                                                fractions, baseline, region, max_rows)
                                for seed in random_seeds], axis=0)
    reference = curve_area(curves["random"], fractions)
    curve_rows, gain_rows = [], []
    for name, curve in curves.items():
        curve_rows.append(pd.DataFrame({**columns, "method": name,
                                        "fraction": np.tile(np.asarray(fractions), n),
                                        "image": np.repeat(np.arange(n), len(fractions)),
                                        "value": curve.reshape(-1)}))
        if name != "random":
            gain_rows.append(pd.DataFrame({**columns, "method": name, "metric": "deletion_gain",
                                           "image": np.arange(n),
                                           "value": reference - curve_area(curve, fractions)}))
    return pd.concat(curve_rows, ignore_index=True), pd.concat(gain_rows, ignore_index=True)


class FaithfulnessSubject(NamedTuple):
    """A network for the deletion test: its inputs as it sees them, the same images in [0, 1]
    (for the Sobel control), its methods and their settings, and the side of a deleted square."""

    model: ModelUnderTest
    inputs: torch.Tensor
    images: torch.Tensor
    dataset: str
    methods: list[str]
    options: dict[str, dict[str, object]]
    region: int


def faithfulness_scores(subjects: Mapping[str, FaithfulnessSubject],
                        random_seeds: Sequence[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`deletion_scores` of every network's maps of its predicted classes (the trained
    model's, from the cache when a chapter made them with the same settings) and of the Sobel
    control, concatenated: (curves, gains), with the network as ``model``."""
    curves, gains = [], []
    for name, s in subjects.items():
        made = original_maps(s.model, s.inputs, methods_for(s.model, s.methods), s.options)
        maps = {**made["maps"], "control_sobel": control_maps(s.model.module, s.images, "sobel")}
        c, g = deletion_scores(s.model, s.inputs, maps, made["predictions"], random_seeds,
                               {"model": name, "dataset": s.dataset}, s.region)
        curves.append(c)
        gains.append(g)
    return pd.concat(curves, ignore_index=True), pd.concat(gains, ignore_index=True)


def faithfulness_claims(gains: pd.DataFrame, labels: Mapping[str, str], unit: str = "image"
                        ) -> pd.DataFrame:
    """For every method on every model: deleting its most relevant pixels first lowers the
    class probability faster than deleting them in a random order (deletion gain above 0)."""
    real = gains[~gains.method.str.startswith("control_")]
    summary = interval_summary(real, ["model", "dataset", "method", "metric"], unit=unit)
    return threshold_claims(
        summary, threshold=0.0, expected="above", chapter=CHAPTER, test="Deletion",
        source="Samek et al. 2017 (deletion, most relevant first)",
        statement="{model} on {dataset}: deleting {method}'s most relevant pixels first lowers "
                  "the class probability faster than a random order",
        statistic="deletion gain: area under the random order's curve minus the method's",
        labels=labels, expectation="above 0")


def control_reading(summary: pd.DataFrame, control: str, labels: Mapping[str, str],
                    what: str = "relevance mass accuracy",
                    places: Mapping[str, str] | None = None) -> str:
    """Where a control that knows nothing of the model (``control_<name>``) stands among the
    methods, per ``dataset`` of ``summary`` (rows of dataset, method, mean, low, high, n): its
    mean and interval, and how many methods' intervals lie wholly above or below it."""
    places = places or CASE_LABELS
    lines = []
    for dataset, part in summary.groupby("dataset", sort=False):
        own = part[part.method == control]
        real = part[~part.method.str.startswith("control_")]
        if own.empty or real.empty:
            continue
        c = own.iloc[0]
        above = int((real["low"] > c["high"]).sum())
        below = int((real["high"] < c["low"]).sum())
        lines.append(f"* **{places.get(dataset, dataset)}**: {labels.get(control, control)} "
                     f"{c['mean']:.2f} [{c['low']:.2f}, {c['high']:.2f}] ({int(c['n'])} images); "
                     f"of {len(real)} methods, {above} lie above it and {below} below (95 % "
                     "intervals apart), the rest overlap it.")
    if not lines:
        return ""
    return (f"A map that knows nothing of the model, against the methods ({what}):\n"
            + "\n".join(lines))
