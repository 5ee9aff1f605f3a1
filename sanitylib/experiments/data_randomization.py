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
