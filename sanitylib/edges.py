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
from skimage import color
from skimage.feature import canny as skimage_canny
from skimage.filters import sobel as skimage_sobel
from torch import nn

from sanitylib.cache import cached
from sanitylib.experiments import explain_all, fingerprint, maps_fingerprint, summarize_scores
from sanitylib.models import build, untrained_inception_v3
from sanitylib.randomization import randomize
from sanitylib.similarity import compare

ArrayLike = np.ndarray | torch.Tensor
DETECTORS = ("sobel", "canny", "sobel_conv")
DETECTOR_LABELS = {"sobel": "Sobel", "canny": "Canny", "sobel_conv": "Sobel conv layer"}
#: Metrics that compare magnitudes, and their options (SSIM on absolute maps: the code variant).
EDGE_METRICS = ("spearman_abs", "ssim", "hog")
EDGE_METRIC_OPTIONS: dict[str, dict[str, object]] = {"ssim": {"variant": "code"}}
VARIANTS = ("trained", "randomized", "untrained")
VARIANT_LABELS = {"trained": "trained", "randomized": "fully randomized",
                  "untrained": "never trained"}

#: The Sobel derivative along x (columns); its transpose is the derivative along y.
SOBEL_X = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def grayscale(images: ArrayLike) -> np.ndarray:
    """(B, H, W) intensities of a batch (B, 1, H, W) or (B, 3, H, W) of images in [0, 1].

    Colour images go through scikit-image's ``rgb2gray`` (ITU-R 709 luma weights); a single
    channel is taken as it is, whatever its range (a saliency map, say).
    """
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    array = array.astype(np.float64)
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(f"expected a batch (B, 1 or 3, H, W); got shape {array.shape}")
    if array.shape[1] == 1:
        return array[:, 0]
    return color.rgb2gray(array, channel_axis=1)


def sobel(images: ArrayLike) -> np.ndarray:
    """scikit-image's Sobel edge magnitude of each image, (B, 1, H, W).

    One call per image: scikit-image's n-dimensional Sobel would also smooth across the batch
    axis of a stacked batch.
    """
    return np.stack([skimage_sobel(g) for g in grayscale(images)])[:, None]


def canny(images: ArrayLike, sigma: float = 1.0) -> np.ndarray:
    """scikit-image's Canny edges of each image as 0/1 floats, (B, 1, H, W).

    ``sigma`` is the Gaussian smoothing before the gradient (scikit-image's Canny is 2-D only,
    hence one call per image).
    """
    return np.stack([skimage_canny(g, sigma=sigma) for g in grayscale(images)]
                    ).astype(np.float64)[:, None]


def sobel_conv_layer() -> nn.Conv2d:
    """A conv layer (1 -> 2 channels, 3x3) whose filters are the Sobel x and y derivatives.

    Replicate padding of one pixel repeats the border pixel, which is what scikit-image's default
    ``mode="reflect"`` does for a 3x3 kernel, so the layer agrees with :func:`sobel` everywhere.
    """
    layer = nn.Conv2d(1, 2, 3, padding=1, padding_mode="replicate", bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.stack([SOBEL_X, SOBEL_X.T])[:, None])
    layer.requires_grad_(False)
    return layer


def sobel_conv(images: ArrayLike) -> np.ndarray:
    """Edge magnitude sqrt(gx^2 + gy^2) from :func:`sobel_conv_layer`, batched, (B, 1, H, W).

    Equals scikit-image's Sobel times 4 sqrt(2): scikit-image divides each kernel by 4 and the
    sum of squares by the number of axes.
    """
    gray = torch.from_numpy(grayscale(images)).float()[:, None]
    with torch.no_grad():
        gradients = sobel_conv_layer()(gray)
    return gradients.pow(2).sum(1, keepdim=True).sqrt().double().numpy()


def edge_maps(images: ArrayLike, detectors: Sequence[str] = DETECTORS,
              canny_sigma: float = 1.0) -> dict[str, np.ndarray]:
    """``{detector: (B, 1, H, W) edge map}`` of images in [0, 1] for each of :data:`DETECTORS`."""
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; valid choices: {', '.join(DETECTORS)}")
    functions = {"sobel": sobel, "canny": lambda x: canny(x, canny_sigma),
                 "sobel_conv": sobel_conv}
    return {d: functions[d](images) for d in detectors}


def magnitude(maps: ArrayLike) -> np.ndarray:
    """(B, 1, H, W): |map| summed over channels, the form in which maps meet edge maps."""
    array = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    if array.ndim != 4:
        raise ValueError(f"expected a batch (B, C, H, W); got shape {array.shape}")
    return np.abs(array.astype(np.float64)).sum(1, keepdims=True)


def model_variants(model: nn.Module, architecture: str, seed: int = 0) -> dict[str, nn.Module]:
    """The three models each map is shown for: ``trained``, ``randomized`` (the last step of
    cascading randomization: every block re-initialized) and ``untrained`` (a freshly built
    network, never trained: the architecture alone as a prior, Section 5.3)."""
    for _, randomized in randomize(model, order="cascading", seed=seed):
        pass  # keep only the last step: every block re-initialized
    if architecture == "inception_v3":
        untrained = untrained_inception_v3(seed)
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            untrained = build(architecture).eval()
    return {"trained": model, "randomized": randomized, "untrained": untrained}


def explain_models(models: Mapping[str, nn.Module], inputs: torch.Tensor,
                   methods: Sequence[str],
                   options: Mapping[str, Mapping[str, object]] | None = None
                   ) -> dict[str, dict[str, torch.Tensor]]:
    """``{model name: {method: maps}}``, each model's maps cached keyed by its weights and its
    structure (two models with the same weights but different pooling must not share maps)."""
    options = {m: dict(o) for m, o in (options or {}).items()}
    return {name: cached("explanations", {
        "model": fingerprint(model), "structure": repr(model), "inputs": fingerprint(inputs),
        "methods": list(methods), "options": options, "kind": "edges"},
        lambda model=model: explain_all(model, inputs, methods, options=options))
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

    return cached("scores", {"kind": "edges", "maps": maps_fingerprint(maps),
                             "edges": maps_fingerprint(edges), "metrics": list(metrics),
                             "metric_options": metric_options, "labels": labels or {}}, build)


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
