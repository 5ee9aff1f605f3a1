"""Edge detectors as a yardstick for saliency maps: Adebayo et al. (2018), Fig. 1 and Section 5.

The paper shows that some saliency maps look "strikingly similar" to the output of an edge
detector, a procedure that needs neither a model nor training data; its reviewers asked for the
comparison to be made quantitative, with Sobel, Canny and a conv layer set to Sobel filters. This
module computes the three edge maps, the explanations of a model and of its randomized and
never-trained counterparts, and scores every map against every edge map with the book's
similarity metrics (:func:`sanitylib.similarity.compare`).

Saliency maps are compared by magnitude: every metric here works on absolute maps summed over
channels (Spearman of absolute maps, SSIM of min-max scaled absolute maps, the original code's
SSIM variant, and HOG similarity), since an edge map has no sign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.runner import explain_cached, summarize_scores
from sanitylib.infra.cache import cached
from sanitylib.methods import similarity
from sanitylib.methods.edges import magnitude
from sanitylib.methods.randomization import randomize
from sanitylib.methods.similarity import compare
from sanitylib.models.efficientnet import untrained_efficientnet_lite0
from sanitylib.models.inception import untrained_inception_v3
from sanitylib.models.mnist import build

ArrayLike = np.ndarray | torch.Tensor
#: Metrics that compare magnitudes, and their options (SSIM on absolute maps: the code variant).
EDGE_METRICS = ("spearman_abs", "ssim", "hog")
EDGE_METRIC_OPTIONS: dict[str, dict[str, object]] = {"ssim": {"variant": "code"}}
VARIANTS = ("trained", "randomized", "untrained")
VARIANT_LABELS = {"trained": "trained", "randomized": "fully randomized",
                  "untrained": "never trained"}


def model_variants(model: nn.Module, architecture: str, seed: int = 0) -> dict[str, nn.Module]:
    """The three models each map is shown for: ``trained``, ``randomized`` (the last step of
    cascading randomization: every block re-initialized) and ``untrained`` (a freshly built
    network, never trained: the architecture alone as a prior, Section 5.3)."""
    for _, randomized in randomize(model, order="cascading", seed=seed):
        pass  # keep only the last step: every block re-initialized
    if architecture == "inception_v3":
        untrained = untrained_inception_v3(seed)
    elif architecture == "efficientnet_lite0":
        untrained = untrained_efficientnet_lite0(seed)
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            untrained = build(architecture).eval()
    return {"trained": model, "randomized": randomized, "untrained": untrained}


def explain_models(models: Mapping[str, nn.Module], inputs: torch.Tensor,
                   methods: Sequence[str],
                   options: Mapping[str, Mapping[str, object]] | None = None
                   ) -> dict[str, dict[str, torch.Tensor]]:
    """``{model name: {method: maps}}``, each model's maps cached by its identity (structure
    included: two models with the same weights but different pooling must not share maps)."""
    return {name: explain_cached(model, inputs, methods, options=options)
            for name, model in models.items()}


def edge_scores(maps: Mapping[str, ArrayLike], edges: Mapping[str, np.ndarray],
                metrics: Sequence[str] = EDGE_METRICS,
                labels: Mapping[str, object] | None = None,
                metric_options: Mapping[str, Mapping[str, object]] = EDGE_METRIC_OPTIONS
                ) -> pd.DataFrame:
    """Tidy similarity of every map with every edge map: one row per (method, detector, metric,
    image). ``maps`` are (B, C, H, W) saliency maps (or any maps: the input itself, random maps),
    compared by :func:`magnitude`."""
    def build() -> pd.DataFrame:
        rows = []
        for method, m in maps.items():
            reduced = magnitude(m)
            for detector, edge in edges.items():
                for metric in metrics:
                    values = compare(reduced, edge, metric,
                                     **dict(metric_options.get(metric, {})))
                    rows.append(pd.DataFrame({**(labels or {}), "method": method,
                                              "detector": detector, "metric": metric,
                                              "image": np.arange(len(values)), "value": values}))
        return pd.concat(rows, ignore_index=True)

    return cached("scores", {"kind": "edges", "maps": maps, "edges": edges,
                             "metrics": list(metrics), "metric_options": metric_options,
                             "labels": labels or {}}, build, code=(similarity, edge_scores))


def training_effect(scores: pd.DataFrame, by: Sequence[str], column: str = "variant",
                    after: str = "trained", before: str = "randomized") -> pd.DataFrame:
    """Paired change in edge similarity, ``after`` minus ``before`` image by image, with a t
    interval per group (``by``): negative means training moves the maps away from the edges."""
    keys = list(by) + ["image"]
    wide = scores.pivot_table(index=keys, columns=column, values="value", dropna=False)
    if after not in wide or before not in wide:
        raise ValueError(f"scores need {column} values {after!r} and {before!r}; "
                         f"found {list(wide.columns)}")
    diff = (wide[after] - wide[before]).rename("value").reset_index()
    return summarize_scores(diff, by)
