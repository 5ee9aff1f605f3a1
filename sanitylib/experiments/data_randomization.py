"""The data randomization test: Adebayo et al. (2018), Section 5, Figs. 5-6.

The same architecture is trained on the true labels and on a permutation of them until it
memorises the permuted ones (> 95 % training accuracy, test accuracy at chance in the original).
Both models explain the same test inputs and the maps are compared method by method. A method whose
maps barely change although the second model learned nothing about the task does not reflect the
relation between inputs and labels.

The extension to partial label noise (listed as future work in the course slides) permutes only a
fraction of the labels: 0 % is a second model trained on true labels (its own seed, subset and
initialisation: the similarity one can hope for at best), 100 % the paper's test.

Every permuted-label model uses ``TrainConfig(labels="permuted", label_noise=..., seed=...)``; the
seed draws the permutation, the training subset and the initial weights together. The true-label
model is the one of the models chapter (seed 0), so its checkpoint is shared with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from sanitylib.data.images import ImageDataset
from sanitylib.experiments.claims import describe_n, setting, similarity_claims
from sanitylib.experiments.parameter_randomization import PAPER_FINDINGS as CASCADING_FINDINGS
from sanitylib.experiments.parameter_randomization import against_random, methods_for
from sanitylib.experiments.runner import DEFAULT_METRICS, TARGETS, explain_cached, pair_scores
from sanitylib.methods.saliency import METHODS, predicted_class
from sanitylib.models.training import (
    PAPER_PERMUTED,
    PAPER_TEST_ACCURACY,
    TrainConfig,
    TrainedModel,
    train,
)

#: Fractions of permuted training labels in the partial-noise extension.
NOISE_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Where the chapter's claims come from, and what they measure.
SOURCE = "Adebayo et al. 2018, Section 5, Figs. 5-6"
STATISTIC = "mean similarity, true- against permuted-label model"
#: The two ceilings a claim can be judged against (:func:`claim_ceilings`).
CEILING_LABELS = {"training seed": "two models trained on the true labels with other seeds",
                  "perturbation": "the true-label model with every weight moved by 0.1 %"}

#: What the paper reports under label permutation (Section 5, Fig. 5 and its appendix) is the
#: pattern it reports under cascading randomization: Gradient and GradCAM change; Guided BackProp
#: and Guided GradCAM stay similar; the methods with an input multiplier keep the digit's shape,
#: which dominates absolute-value rank correlation on MNIST.
PAPER_FINDINGS = CASCADING_FINDINGS


def noise_label(noise: float) -> str:
    """Display name of a noise level: ``0.25 -> "25 %"``."""
    return f"{round(100 * noise)} %"


def seeds_for(seeds: Sequence[int] | Mapping[str, Sequence[int]], dataset: str) -> list[int]:
    """The permutation seeds of ``dataset``: ``seeds`` itself, or ``seeds[dataset]``."""
    if isinstance(seeds, Mapping):
        if dataset not in seeds:
            raise ValueError(f"no seeds for dataset {dataset!r}; seeds are given for "
                             f"{', '.join(seeds)}")
        seeds = seeds[dataset]
    if not len(seeds):
        raise ValueError(f"no seeds for dataset {dataset!r}; give at least one")
    return [int(s) for s in seeds]


def permuted_config(architecture: str, dataset: str, settings: Mapping[str, object],
                    noise: float, seed: int) -> TrainConfig:
    """The TrainConfig of a model trained with a fraction ``noise`` of its labels permuted.

    ``settings`` are the notebooks' ``training["permuted"]`` keyword arguments (train size,
    epochs, learning rate, stopping accuracy); noise and seed override any given there.
    """
    return TrainConfig(architecture, dataset, "permuted",
                       **{**dict(settings), "label_noise": float(noise), "seed": int(seed)})


@dataclass
class DataRandomizationRun:
    """Similarities between a true-label model's maps and its permuted-label twins' maps."""

    #: One row per (model, dataset, label_noise, seed, method, metric, image).
    scores: pd.DataFrame
    #: One row per trained model: configuration, training and test accuracy, epochs.
    accuracy: pd.DataFrame
    #: One row per (model, dataset, label_noise, seed, image): the class each model explains.
    predictions: pd.DataFrame
    #: ``maps[arch, dataset][version][method]`` for the first ``keep_maps`` inputs, where version
    #: is ``"true"`` or ``(label_noise, seed)``.
    maps: dict[tuple[str, str], dict[object, dict[str, torch.Tensor]]] = field(default_factory=dict)


def _accuracy_row(trained: TrainedModel) -> dict[str, object]:
    """The model's summary with the paper's targets: > 95 % training accuracy on permuted labels
    and chance test accuracy when all of them are permuted; 99.2 / 98.7 % test accuracy on MNIST
    for the true-label CNN / MLP."""
    row = trained.summary()
    paper_train, paper_test = None, None
    if row["labels"] == "permuted":
        paper_train = PAPER_PERMUTED["train_accuracy"]
        if row["label_noise"] == 1.0:
            paper_test = PAPER_PERMUTED["test_accuracy"]
    else:
        row["label_noise"] = 0.0
        paper_test = PAPER_TEST_ACCURACY.get((row["architecture"], row["dataset"]))
    return {**row, "paper_train_accuracy": paper_train, "paper_test_accuracy": paper_test}


def data_randomization_test(architectures: Sequence[str], data: Mapping[str, ImageDataset],
                            training: Mapping[str, Mapping[str, object]],
                            inputs: Mapping[str, torch.Tensor], *,
                            noise_levels: Sequence[float] = (1.0,),
                            seeds: Sequence[int] | Mapping[str, Sequence[int]] = (0,),
                            methods: Sequence[str] = METHODS,
                            metrics: Sequence[str] = DEFAULT_METRICS, target: str = "recompute",
                            options: Mapping[str, Mapping[str, object]] | None = None,
                            true_seed: int = 0, keep_maps: int = 0, verbose: bool = True
                            ) -> DataRandomizationRun:
    """Train (or load), explain and compare every (architecture, dataset, noise, seed) model.

    Args:
        architectures: model names (``"cnn"``, ``"mlp"``); GradCAM and Guided GradCAM are left
            out for models without a conv layer.
        data: loaded datasets by name; ``inputs[name]`` are the test inputs explained.
        training: the notebooks' ``training`` parameter, ``{"true": {...}, "permuted": {...}}``.
        noise_levels: fractions of permuted labels (1.0: the paper's test).
        seeds: seeds of the permuted-label models (permutation, subset and initialisation),
            the same for every dataset or ``{dataset: seeds}``.
        target: ``"recompute"`` explains each model's own argmax (the original code);
            ``"fixed"`` explains the true-label model's predicted class under both models.
        options: per-method keyword options for :func:`sanitylib.saliency.explain`.
        true_seed: seed of the true-label model (0: the models chapter's).
        keep_maps: keep the maps of this many first inputs for figures.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; valid choices: {', '.join(TARGETS)}")
    bad = [n for n in noise_levels if not 0.0 <= n <= 1.0]
    if bad:
        raise ValueError(f"noise levels must lie in [0, 1]; got {bad}")
    missing = [kind for kind in ("true", "permuted") if kind not in training]
    if missing:
        raise ValueError(f"training has no settings for {missing}; give keys 'true', 'permuted'")
    for name in data:
        seeds_for(seeds, name)  # fail before any training when a dataset has no seeds
    run = DataRandomizationRun(pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    scores, accuracy, predictions = [], [], []
    for name, dataset in data.items():
        x = inputs[name]
        for arch in architectures:
            true_model = train(TrainConfig(arch, name, "true", seed=true_seed,
                                           **dict(training["true"])), dataset, verbose)
            accuracy.append(_accuracy_row(true_model))
            arch_methods = methods_for(true_model.model, methods)
            true_class = predicted_class(true_model.model, x)
            fixed = true_class if target == "fixed" else None
            true_maps = explain_cached(true_model.model, x, arch_methods, fixed, options)
            if keep_maps:
                run.maps[arch, name] = {"true": {m: v[:keep_maps] for m, v in true_maps.items()}}
            for noise in noise_levels:
                for seed in seeds_for(seeds, name):
                    other = train(permuted_config(arch, name, training["permuted"], noise, seed),
                                  dataset, verbose)
                    accuracy.append(_accuracy_row(other))
                    labels = {"model": arch, "dataset": name, "label_noise": float(noise),
                              "seed": int(seed)}
                    maps = explain_cached(other.model, x, arch_methods, fixed, options)
                    scores.append(pair_scores(true_maps, maps, metrics, labels))
                    predictions.append(pd.DataFrame({
                        **labels, "image": np.arange(len(x)),
                        "true_model_class": true_class.cpu().numpy(),
                        "permuted_model_class": predicted_class(other.model, x).cpu().numpy()}))
                    if keep_maps:
                        run.maps[arch, name][float(noise), int(seed)] = \
                            {m: v[:keep_maps] for m, v in maps.items()}
    run.scores = pd.concat(scores, ignore_index=True)
    run.accuracy = pd.DataFrame(accuracy)
    run.predictions = pd.concat(predictions, ignore_index=True)
    return run


def verdict_table(summary: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Per model, dataset, method and metric: can the permuted-label maps be told from random?

    ``summary`` holds the mean and interval of each group (:func:`summarize_scores`); a method's
    maps are "like random maps" when its interval reaches the band of two unrelated random maps
    (2.5-97.5 %), "still similar" otherwise. The paper's finding is given alongside.
    """
    return against_random(summary, baseline, PAPER_FINDINGS)


def mask_columns(run: DataRandomizationRun, dataset: str, architectures: Sequence[str],
                 methods: Sequence[str], noise: float = 1.0, seed: int = 0
                 ) -> dict[str, dict[str, torch.Tensor]]:
    """Maps arranged for :func:`sanitylib.plotting.mask_grid`: columns "CNN true",
    "CNN permuted", "MLP true", ... for one dataset. A method a model lacks (GradCAM for the
    MLP) gets NaN maps, drawn blank."""
    columns: dict[str, dict[str, torch.Tensor]] = {}
    for arch in architectures:
        versions = run.maps[arch, dataset]
        for title, version in (("true", "true"), ("permuted", (float(noise), int(seed)))):
            maps = versions[version]
            blank = torch.full_like(next(iter(maps.values())), float("nan"))
            columns[f"{arch.upper()} {title}"] = {m: maps.get(m, blank) for m in methods}
    return columns


def claim_ceilings(perturbation: pd.DataFrame, seed: pd.DataFrame) -> pd.DataFrame:
    """The ceiling of every (model, dataset, method, metric): the seed ceiling (two models
    trained on the same true labels with other seeds, :func:`~sanitylib.experiments.ceiling.
    seed_ceiling`) where it was measured, else the perturbation ceiling (the true-label model
    with every weight moved by 0.1 %). Both tables have columns model, dataset, method, metric
    and mean; the result adds ``reference`` ("training seed" or "perturbation")."""
    keys = ["model", "dataset", "method", "metric"]
    measured = seed[keys].drop_duplicates().assign(_seed=True)
    rest = perturbation.merge(measured, on=keys, how="left")
    rest = rest[rest["_seed"].isna()].drop(columns="_seed")
    return pd.concat([seed.assign(reference="training seed"),
                      rest.assign(reference="perturbation")], ignore_index=True)


def data_randomization_claims(summary: pd.DataFrame, baseline: pd.DataFrame,
                              ceilings: pd.DataFrame, *, target: str,
                              metric: str = "spearman_abs",
                              chapter: str = "04_data_randomization",
                              labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The paper's data-randomization claims (:data:`PAPER_FINDINGS`: "changes" -> the
    permuted-label maps become like random maps, the rest -> they stay similar), one per model,
    dataset and method under ``metric``, judged between the random-map band (``baseline``) and
    the ceiling of :func:`claim_ceilings`, which each claim names."""
    expectations = {m: "changes" if f == "changes" else "remains"
                    for m, f in PAPER_FINDINGS.items()}
    tables = []
    rows = summary[summary["metric"] == metric]
    for (model, dataset), part in rows.groupby(["model", "dataset"], sort=False):
        ceiling = ceilings[(ceilings["model"] == model) & (ceilings["dataset"] == dataset)]
        kind = ceiling["reference"].iloc[0] if len(ceiling) else "none"
        statement = ("Data randomization: the {method} maps of the {model} on {dataset} "
                     "{expectation} when the training labels are permuted (ceiling: "
                     f"{CEILING_LABELS.get(kind, kind)})")
        tables.append(similarity_claims(
            part, baseline, expectations, chapter=chapter, test="Data randomization",
            source=SOURCE, statement=statement, statistic=STATISTIC, ceiling=ceiling,
            setting=setting(target), labels=labels))
    return pd.concat(tables, ignore_index=True)


def drop_shares(noise_summary: pd.DataFrame, metric: str = "spearman_abs", at: float = 0.25
                ) -> pd.DataFrame:
    """Per method, the similarity to the true-label maps at 0 %, ``at`` and 100 % permuted
    labels (``noise_summary``: :func:`summarize_scores` rows per label_noise, method and metric)
    and the share of the 0 % -> 100 % drop already reached at ``at``, ``(s0 - s_at) / (s0 -
    s100)``. ``drop`` says whether the 0 % interval lies wholly above the 100 % one; where it
    does not, the share is NaN (there is no drop to share)."""
    rows = noise_summary[noise_summary["metric"] == metric].set_index(["method", "label_noise"])
    levels = sorted(set(noise_summary["label_noise"]))
    if at not in levels:
        raise ValueError(f"no noise level {at}; levels: {', '.join(map(str, levels))}")
    first, last = levels[0], levels[-1]
    records = []
    for method in dict.fromkeys(rows.index.get_level_values("method")):
        start, mid, end = (rows.loc[(method, level)] for level in (first, at, last))
        drop = bool(start["low"] > end["high"])
        share = (start["mean"] - mid["mean"]) / (start["mean"] - end["mean"]) if drop else np.nan
        records.append({"method": method, "start": start["mean"], "at": mid["mean"],
                        "end": end["mean"], "start_low": start["low"], "start_high": start["high"],
                        "end_low": end["low"], "end_high": end["high"], "drop": drop,
                        "share": share, "n": int(end["n"]), "n_seeds": int(end["n_seeds"])})
    return pd.DataFrame(records)


def describe_drops(shares: pd.DataFrame, at: float = 0.25,
                   labels: Mapping[str, str] | None = None) -> str:
    """A Markdown paragraph written from :func:`drop_shares`: per method the similarity at 0 %,
    ``at`` and 100 % permuted labels and, where there is a drop, the share of it reached at
    ``at``; the n behind the numbers."""
    labels = labels or {}
    if shares.empty:
        return "No partial-noise run."
    first = shares.iloc[0]
    lines = [(f"Similarity to the true-label maps at 0 %, {noise_label(at)} and 100 % permuted "
              f"labels ({describe_n(int(first['n']), int(first['n_seeds']))}):")]
    for r in shares.to_dict("records"):
        path = f"{r['start']:.2f} → {r['at']:.2f} → {r['end']:.2f}"
        if r["drop"]:
            reading = f"{r['share']:.0%} of the drop is reached at {noise_label(at)}"
        else:
            reading = (f"no drop: the 0 % interval [{r['start_low']:.2f}, {r['start_high']:.2f}] "
                       f"does not lie above the 100 % one [{r['end_low']:.2f}, "
                       f"{r['end_high']:.2f}]")
        lines.append(f"* {labels.get(r['method'], r['method'])}: {path}; {reading}.")
    return "\n".join(lines)
