"""Similarity between explanations: Adebayo et al. (2018), Section 3 and Appendix.

Maps are first reduced and normalized the way the paper visualizes them:

- *absolute*: sum |map| over channels, rescale min -> 99th percentile to [0, 1], clip;
- *signed* (diverging): sum over channels, divide by the 99th percentile of |map|, clip to
  [-1, 1] (``percentile=None``: divide by max |map|, the paper's choice for 2-D MNIST maps).

Every metric takes two maps (H, W) or (C, H, W), or two batches (B, C, H, W), and returns one
score per image as a float array. A pair whose score is undefined (a constant map, a map holding
NaN) scores NaN and is counted by :func:`summarize`, never averaged in.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from skimage.feature import hog
from skimage.metrics import structural_similarity

__all__ = ["METRICS", "METRIC_LABELS", "METRIC_RANGES", "SSIM_VARIANTS", "MetricSpec",
           "compare", "compare_to", "cosine", "hog_similarity", "l2_distance", "lower_is_similar",
           "metric_names", "metric_spec", "normalize_absolute", "normalize_signed", "pearson",
           "random_baseline", "random_pair", "register_metric", "spearman", "ssim", "summarize",
           "unregister_metric"]

ArrayLike = np.ndarray | torch.Tensor
SSIM_VARIANTS = ("text", "code")


def _numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _image_batch(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Two (B, C, H, W) float arrays from two maps or two batches of matching shape."""
    a, b = _numpy(a), _numpy(b)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}; compare maps of one shape")
    if a.ndim == 2:
        a, b = a[None, None], b[None, None]
    elif a.ndim == 3:
        a, b = a[None], b[None]
    elif a.ndim != 4:
        raise ValueError(f"expected a map (H, W) or (C, H, W) or a batch (B, C, H, W); got {a.shape}")
    return a, b


def _vector_batch(a: ArrayLike, b: ArrayLike, batched: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """Two (B, N) arrays. ``batched=None`` treats 4-D input as a batch, 1-3-D as a single map."""
    a, b = _numpy(a), _numpy(b)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}; compare maps of one shape")
    if batched is None:
        batched = a.ndim == 4
    if batched and a.ndim < 2:
        raise ValueError(f"a batch needs a leading batch axis; got shape {a.shape}")
    return (a.reshape(len(a), -1), b.reshape(len(b), -1)) if batched else \
        (a.reshape(1, -1), b.reshape(1, -1))


def normalize_absolute(maps: ArrayLike, percentile: float | None = 99.0) -> np.ndarray:
    """(B, H, W): sum |map| over channels, min -> percentile rescaled to [0, 1] and clipped.

    A constant map (or one whose percentile equals its minimum) becomes NaN.
    """
    m = np.abs(_as_images(maps)).sum(1)
    flat = m.reshape(len(m), -1)
    vmin = flat.min(1)
    vmax = flat.max(1) if percentile is None else np.percentile(flat, percentile, axis=1)
    scale = vmax - vmin
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (m - vmin[:, None, None]) / np.where(scale > 0, scale, np.nan)[:, None, None]
    return np.clip(out, 0.0, 1.0)


def normalize_signed(maps: ArrayLike, percentile: float | None = 99.0) -> np.ndarray:
    """(B, H, W): sum over channels, divided by the percentile (or max) of |map|, clipped to [-1, 1].

    An all-zero map becomes NaN.
    """
    m = _as_images(maps).sum(1)
    flat = np.abs(m.reshape(len(m), -1))
    scale = flat.max(1) if percentile is None else np.percentile(flat, percentile, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = m / np.where(scale > 0, scale, np.nan)[:, None, None]
    return np.clip(out, -1.0, 1.0)


def _as_images(maps: ArrayLike) -> np.ndarray:
    m = _numpy(maps)
    return m[None, None] if m.ndim == 2 else m[None] if m.ndim == 3 else m


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair; NaN where a row is constant or holds NaN."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    denominator = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(1) / denominator, np.nan)


def _rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each row pair (SciPy's ranks, ties averaged)."""
    return _paired_ranks(_ranks(a), _ranks(b))


def _ranks(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's ranks of each row (ties averaged) and which rows hold a NaN."""
    return stats.rankdata(np.nan_to_num(rows), axis=1), np.isnan(rows).any(1)


def _paired_ranks(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
                  ) -> np.ndarray:
    rho = _rowwise_pearson(a[0], b[0])
    rho[a[1] | b[1]] = np.nan
    return rho


def _spearman_features(maps: np.ndarray, absolute: bool = True, percentile: float | None = 99.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    norm = normalize_absolute if absolute else normalize_signed
    normalized = norm(maps, percentile)
    return _ranks(normalized.reshape(len(normalized), -1))


def spearman(a: ArrayLike, b: ArrayLike, absolute: bool = True, percentile: float | None = 99.0
             ) -> np.ndarray:
    """Spearman rank correlation of the normalized maps (absolute or signed), one per image."""
    a, b = _image_batch(a, b)
    return _paired_ranks(_spearman_features(a, absolute, percentile),
                         _spearman_features(b, absolute, percentile))


def ssim(a: ArrayLike, b: ArrayLike, variant: str = "text", data_range: float | None = None,
         percentile: float | None = 99.0) -> np.ndarray:
    """Structural similarity of the 2-D maps, with scikit-image, one score per image.

    ``variant="text"`` (the paper's text): signed maps in [-1, 1], uniform 5x5 window,
    ``data_range`` 2. ``variant="code"`` (the released code): absolute maps min-max scaled to
    [0, 1], Gaussian window (sigma 1.5, 11 px), and ``data_range`` 2, the default the code's
    ``compare_ssim`` picked for float input although the maps span 1.
    """
    if variant not in SSIM_VARIANTS:
        raise ValueError(f"unknown SSIM variant {variant!r}; valid choices: {SSIM_VARIANTS}")
    a, b = _image_batch(a, b)
    if variant == "text":
        na, nb = normalize_signed(a, percentile), normalize_signed(b, percentile)
        options = {"win_size": 5}
    else:
        na, nb = normalize_absolute(a, None), normalize_absolute(b, None)
        options = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    data_range = 2.0 if data_range is None else data_range
    bad = np.isnan(na).reshape(len(na), -1).any(1) | np.isnan(nb).reshape(len(nb), -1).any(1)
    # The batch goes through scikit-image in one call as channels; its per-channel SSIM images
    # are then averaged per image exactly as structural_similarity does (border cropped).
    _, full = structural_similarity(np.nan_to_num(na), np.nan_to_num(nb), channel_axis=0,
                                    full=True, data_range=data_range, **options)
    win = options.get("win_size") or 2 * int(3.5 * 1.5 + 0.5) + 1
    pad = (win - 1) // 2
    scores = full[:, pad:full.shape[1] - pad, pad:full.shape[2] - pad].mean(axis=(1, 2))
    scores[bad] = np.nan
    return scores


def hog_similarity(a: ArrayLike, b: ArrayLike, method: str = "pearson",
                   pixels_per_cell: tuple[int, int] | None = None) -> np.ndarray:
    """Correlation of the HOG features of the absolute normalized maps, one per image.

    9 orientations, 3x3 cells per block; ``pixels_per_cell`` defaults to the original code's
    (16, 16) for images of 48 px or more and (4, 4) for MNIST-sized maps. ``method``: "pearson"
    (the paper's text) or "spearman" (the code).
    """
    a, b = _image_batch(a, b)
    return _paired_hog(_hog_features(a, method, pixels_per_cell),
                       _hog_features(b, method, pixels_per_cell), method)


def _hog_features(maps: np.ndarray, method: str = "pearson",
                  pixels_per_cell: tuple[int, int] | None = None) -> np.ndarray:
    """HOG features of each absolute normalized map (a NaN row for an undefined map)."""
    if method not in ("pearson", "spearman"):
        raise ValueError(f"unknown method {method!r}; valid choices: pearson, spearman")
    normalized = normalize_absolute(maps)
    if pixels_per_cell is None:
        pixels_per_cell = (16, 16) if min(normalized.shape[1:]) >= 48 else (4, 4)
    # scikit-image's hog takes one image at a time.
    return np.stack([hog(np.nan_to_num(m), orientations=9, pixels_per_cell=pixels_per_cell,
                         cells_per_block=(3, 3)) if not np.isnan(m).any()
                     else np.full(_hog_length(m.shape, pixels_per_cell), np.nan)
                     for m in normalized])


def _paired_hog(fa: np.ndarray, fb: np.ndarray, method: str = "pearson",
                pixels_per_cell: tuple[int, int] | None = None) -> np.ndarray:
    return _rowwise_pearson(fa, fb) if method == "pearson" else _rowwise_spearman(fa, fb)


def _hog_length(shape: tuple[int, ...], cell: tuple[int, int]) -> int:
    cells = (shape[0] // cell[0], shape[1] // cell[1])
    return (cells[0] - 2) * (cells[1] - 2) * 9 * 9


def cosine(a: ArrayLike, b: ArrayLike, batched: bool | None = None) -> np.ndarray:
    """Cosine similarity of the raw flattened maps; NaN when either is all zero."""
    a, b = _vector_batch(a, b, batched)
    denominator = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(1) / denominator, np.nan)


def pearson(a: ArrayLike, b: ArrayLike, batched: bool | None = None) -> np.ndarray:
    """Pearson correlation of the raw flattened maps; NaN when either is constant."""
    return _rowwise_pearson(*_vector_batch(a, b, batched))


def l2_distance(a: ArrayLike, b: ArrayLike, batched: bool | None = None) -> np.ndarray:
    """Euclidean distance of the raw flattened maps (a distance: lower means more similar)."""
    a, b = _vector_batch(a, b, batched)
    return np.linalg.norm(a - b, axis=1)


@dataclass(frozen=True)
class MetricSpec:
    """One similarity metric: ``function(a, b, **options)`` gives one score per image; its
    ``score_direction`` says which way is more similar ("higher", or "lower" for a distance, as
    Quantus's metrics declare it), ``score_range`` bounds it (intervals are clipped to it);
    ``features`` (features of a batch, score of two feature batches) lets :func:`compare_to` do
    the per-map work of a reference once."""

    name: str
    label: str
    function: Callable[..., np.ndarray]
    score_direction: str = "higher"
    score_range: tuple[float, float] = (-1.0, 1.0)
    features: tuple[Callable[..., object], Callable[..., np.ndarray]] | None = None
    source: str = "built-in"


_BUILT_IN = (
    MetricSpec("spearman_abs", "Spearman (absolute)",
               lambda a, b, **kw: spearman(a, b, absolute=True, **kw),
               features=(lambda m, **kw: _spearman_features(m, True, **kw),
                         lambda a, b, **kw: _paired_ranks(a, b))),
    MetricSpec("spearman", "Spearman (signed)",
               lambda a, b, **kw: spearman(a, b, absolute=False, **kw),
               features=(lambda m, **kw: _spearman_features(m, False, **kw),
                         lambda a, b, **kw: _paired_ranks(a, b))),
    MetricSpec("ssim", "SSIM", ssim),
    MetricSpec("hog", "HOG similarity", hog_similarity, features=(_hog_features, _paired_hog)),
    MetricSpec("cosine", "cosine", cosine),
    MetricSpec("pearson", "Pearson", pearson),
    MetricSpec("l2_distance", "L2 distance", l2_distance, "lower", (0.0, float("inf"))),
)
_METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _BUILT_IN}
#: The built-in metrics.
METRICS = tuple(spec.name for spec in _BUILT_IN)


class _View(Mapping[str, object]):
    """Metric name -> one field of its spec, for every metric registered now."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __getitem__(self, name: str) -> object:
        return getattr(_METRICS[name], self.field)

    def __iter__(self) -> Iterator[str]:
        return iter(_METRICS)

    def __len__(self) -> int:
        return len(_METRICS)


#: Metric name -> its label (a live view of the registry).
METRIC_LABELS: Mapping[str, str] = _View("label")  # type: ignore[assignment]
#: Metric name -> the range of its scores (intervals are clipped to it).
METRIC_RANGES: Mapping[str, tuple[float, float]] = _View("score_range")  # type: ignore[assignment]


def metric_names() -> tuple[str, ...]:
    """Every registered metric (built-ins first)."""
    return tuple(_METRICS)


def metric_spec(name: str) -> MetricSpec:
    """The spec of metric ``name``; ValueError naming the valid choices."""
    if name not in _METRICS:
        raise ValueError(f"unknown metric {name!r}; valid choices: {', '.join(_METRICS)}")
    return _METRICS[name]


def lower_is_similar(metric: str) -> bool:
    """Whether lower scores of ``metric`` mean more similar maps (a distance); False for a name
    that is not a registered metric."""
    return metric in _METRICS and _METRICS[metric].score_direction == "lower"


def register_metric(name: str, function: Callable[..., np.ndarray], *, label: str | None = None,
                    score_direction: str = "higher",
                    score_range: tuple[float, float] = (-float("inf"), float("inf")),
                    replace: bool = False) -> MetricSpec:
    """Make ``function(a, b, **options) -> scores`` (two batches of maps (B, ...) as NumPy float64
    arrays in, one score per image out, NaN where undefined) a metric called ``name``, usable
    wherever a built-in is (``compare``, the randomization runner, ``check`` and ``--metrics``)."""
    if score_direction not in ("higher", "lower"):
        raise ValueError(f"score_direction must be 'higher' or 'lower', got {score_direction!r}")
    if name in METRICS or (name in _METRICS and not replace):
        raise ValueError(f"a metric {name!r} is registered already; choose another name"
                         + ("" if name in METRICS else " or pass replace=True"))
    spec = MetricSpec(name, label or name, function, score_direction, score_range,
                      source="registered")
    _METRICS[name] = spec
    return spec


def unregister_metric(name: str) -> None:
    """Remove a metric registered with :func:`register_metric` (built-ins stay)."""
    if metric_spec(name).source != "registered":
        raise ValueError(f"{name!r} is built in and cannot be unregistered")
    del _METRICS[name]


def compare(a: ArrayLike, b: ArrayLike, metric: str, **options: object) -> np.ndarray:
    """Score per image under ``metric`` (a registered metric, :func:`metric_names`). A metric
    registered with :func:`register_metric` gets NumPy float64 arrays, whatever came in."""
    spec = metric_spec(metric)
    if spec.source == "registered":
        a, b = _numpy(a), _numpy(b)
    return np.asarray(spec.function(a, b, **options), dtype=np.float64)


def compare_to(reference: ArrayLike, others: Sequence[ArrayLike], metric: str,
               **options: object) -> list[np.ndarray]:
    """``[compare(reference, other, metric) for other in others]``, with the reference's ranks or
    HOG features computed once (the same numbers, about half the work for those metrics)."""
    spec = metric_spec(metric)
    if spec.features is None:
        return [compare(reference, other, metric, **options) for other in others]
    features, paired = spec.features
    ref = None
    scores = []
    for other in others:
        a, b = _image_batch(reference, other)
        if ref is None:
            ref = features(a, **options)
        scores.append(paired(ref, features(b, **options), **options))
    return scores


def random_pair(shape: tuple[int, ...], n: int = 100, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Two batches of ``n`` unrelated random maps (standard normal) of ``shape``, seeded."""
    generator = np.random.default_rng(seed)
    return generator.standard_normal((n, *shape)), generator.standard_normal((n, *shape))


def random_baseline(metric: str, shape: tuple[int, ...], n: int = 100, seed: int = 0,
                    **options: object) -> np.ndarray:
    """Scores of ``n`` pairs of unrelated random maps (:func:`random_pair`) of ``shape``.

    The paper's calibration: what a metric says about two maps that share nothing.
    """
    return compare(*random_pair(shape, n, seed), metric, **options)


def summarize(scores: ArrayLike, confidence: float = 0.95, warn: bool = True
              ) -> dict[str, float]:
    """Mean and a t confidence interval of the defined scores; NaNs are counted, not averaged
    (and warned about unless ``warn=False``: tables report them in ``n_undefined``).

    Returns ``mean``, ``low``, ``high``, ``std``, ``n`` (defined scores) and ``n_undefined``.
    """
    values = _numpy(scores).ravel()
    defined = values[~np.isnan(values)]
    n_undefined = int(values.size - defined.size)
    if n_undefined and warn:
        warnings.warn(f"{n_undefined} of {values.size} scores are undefined (constant or NaN "
                      "maps) and left out of the summary", stacklevel=2)
    if defined.size == 0:
        return {"mean": np.nan, "low": np.nan, "high": np.nan, "std": np.nan, "n": 0,
                "n_undefined": n_undefined}
    mean = float(defined.mean())
    std = float(defined.std(ddof=1)) if defined.size > 1 else 0.0
    half = float(stats.t.ppf(0.5 + confidence / 2, defined.size - 1) * std / np.sqrt(defined.size)) \
        if defined.size > 1 else 0.0
    return {"mean": mean, "low": mean - half, "high": mean + half, "std": std,
            "n": int(defined.size), "n_undefined": n_undefined}
