"""Why saliency maps look like edges: Adebayo et al. (2018), Section 5.

- **Linear model** ``f(x) = W x``: the gradient of logit ``c`` is the weight row ``w_c``, whatever
  the input, so Gradient ⊙ Input is ``w_c ⊙ x`` and carries the input's structure for any ``w``.
- **One-layer conv net** with ReLU and pooling: the gradient at a pixel sums the filters whose
  ReLU is active over the patches covering it. In a uniform region every patch has the same
  activation pattern, so the gradient there is constant; it changes where the pattern changes,
  at edges. Random filters are enough (Section 5.2, Fig. 6).
- **The input dominates Gradient ⊙ Input** (Section 5.1, Fig. 5d): the rank correlation between
  ``x ⊙ g`` and ``x`` as ever more noise is added to ``g``.

Each argument becomes claims (:func:`deviation_claims`, :func:`linear_claims`,
:func:`conv_claims`, :func:`dominance_claims`), decided by the book's one rule
(:func:`sanitylib.experiments.claims.decide`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.claims import setting, similarity_claims, threshold_claims
from sanitylib.experiments.edges import edge_claims
from sanitylib.experiments.runner import baseline_table
from sanitylib.infra.cache import cached
from sanitylib.methods.edges import SOBEL_X, sobel
from sanitylib.methods.similarity import compare

FILTERS = ("random", "sobel")
POOLS = ("max", "sum")
#: Where the paper makes the arguments this chapter tests.
LINEAR_SOURCE = "Adebayo et al. 2018, Section 5.2"
CONV_SOURCE = "Adebayo et al. 2018, Section 5.2, Fig. 6"
DOMINANCE_SOURCE = "Adebayo et al. 2018, Section 5.1, Fig. 5d"
#: The maps of :func:`input_dominance` as the saliency methods they stand for.
MAP_METHODS = {"g": "gradient", "x ⊙ g": "gradient_x_input"}


def linear_model(in_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10,
                 seed: int = 0) -> nn.Module:
    """``x -> W x`` with standard normal weights and no bias (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    layer = nn.Linear(int(np.prod(in_shape)), num_classes, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
    return nn.Sequential(nn.Flatten(), layer).eval()


class OneLayerConvNet(nn.Module):
    """conv -> ReLU -> pooling -> linear read-out to class logits (Section 5.2).

    ``pool="max"``: 2x2 max pooling, then the sum over positions; ``pool="sum"``: the sum over
    positions (global sum pooling). The conv layer is named ``conv`` (GradCAM's layer) and the
    ReLU is a module, so Guided Backprop can hook it.
    """

    def __init__(self, conv: nn.Conv2d, readout: nn.Linear, pool: str = "max") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; valid choices: {', '.join(POOLS)}")
        self.conv, self.relu, self.readout = conv, nn.ReLU(), readout
        self.pool = nn.MaxPool2d(2) if pool == "max" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.pool(self.relu(self.conv(x))).sum(dim=(2, 3)))


def one_layer_conv(in_channels: int = 1, filters: str = "random", n_filters: int = 16,
                   kernel_size: int = 5, pool: str = "max", num_classes: int = 10,
                   seed: int = 0) -> OneLayerConvNet:
    """A one-layer conv net, never trained.

    ``filters="random"``: PyTorch's default (Kaiming-uniform) conv weights and biases, drawn
    with ``seed``; ``"sobel"``: the four Sobel filters +gx, -gx, +gy, -gy (3x3, applied to the
    channel mean, no bias), a conv layer set to an edge detector as the reviewers asked. The
    read-out is random either way.
    """
    if filters not in FILTERS:
        raise ValueError(f"unknown filters {filters!r}; valid choices: {', '.join(FILTERS)}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if filters == "random":
            conv = nn.Conv2d(in_channels, n_filters, kernel_size, padding=kernel_size // 2)
        else:
            conv = nn.Conv2d(in_channels, 4, 3, padding=1, bias=False)
            kernels = torch.stack([SOBEL_X, -SOBEL_X, SOBEL_X.T, -SOBEL_X.T])[:, None]
            with torch.no_grad():
                conv.weight.copy_(kernels.expand(-1, in_channels, -1, -1) / in_channels)
        readout = nn.Linear(conv.out_channels, num_classes)
    return OneLayerConvNet(conv, readout, pool).eval()


def change_map(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    """Where a map changes: scikit-image's Sobel magnitude of the map summed over channels
    (signed), (B, 1, H, W).

    Section 5.2 predicts that a one-layer conv net's gradient is flat inside uniform regions and
    changes at the input's edges, so this map, not the gradient's magnitude, should match the
    input's edge map.
    """
    summed = maps.sum(1, keepdims=True) if isinstance(maps, np.ndarray) else \
        maps.detach().sum(1, keepdim=True)
    return sobel(summed)


def _rms(g: torch.Tensor) -> torch.Tensor:
    """Root mean square of each map, shaped to broadcast over (B, ...)."""
    return g.flatten(1).pow(2).mean(1).sqrt().view(-1, *[1] * (g.ndim - 1))


def input_dominance(inputs: torch.Tensor, gradients: torch.Tensor,
                    noise_levels: Sequence[float],
                    metrics: Sequence[str] = ("spearman_abs", "spearman"), seed: int = 0,
                    labels: Mapping[str, object] | None = None) -> pd.DataFrame:
    """How much of ``x ⊙ g`` is ``x``: the paper's Fig. 5d.

    For each noise level ``s`` the gradient becomes ``g + s * rms(g) * eta`` (``eta`` standard
    normal, one draw per image, the same draw at every level; ``rms`` per image), so ``s`` is the
    noise-to-gradient ratio and large ``s`` tends to a pure-noise "gradient". Each row scores
    ``x ⊙ g_s`` (``map = "x ⊙ g"``) and ``g_s`` alone (``map = "g"``) against ``x``.
    """
    if inputs.shape != gradients.shape:
        raise ValueError(f"inputs {tuple(inputs.shape)} and gradients {tuple(gradients.shape)} "
                         "must have one shape")
    scale = _rms(gradients)
    if (scale == 0).any():
        raise ValueError("a gradient is zero everywhere; the noise level relative to it is "
                         "undefined")

    def build() -> pd.DataFrame:
        generator = torch.Generator().manual_seed(seed)
        eta = torch.randn(gradients.shape, generator=generator,
                          dtype=gradients.dtype).to(gradients.device)
        rows = []
        for level in noise_levels:
            noisy = gradients + level * scale * eta
            for name, m in (("x ⊙ g", inputs * noisy), ("g", noisy)):
                for metric in metrics:
                    values = compare(m, inputs, metric)
                    rows.append(pd.DataFrame({**(labels or {}), "noise": float(level),
                                              "map": name, "metric": metric,
                                              "image": np.arange(len(values)), "value": values}))
        return pd.concat(rows, ignore_index=True)

    return cached("scores", {"kind": "input_dominance", "inputs": inputs, "gradients": gradients,
                             "noise_levels": [float(v) for v in noise_levels],
                             "metrics": list(metrics), "seed": seed, "labels": labels or {}},
                  build)


def weight_deviation(gradients: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
    """The largest ``|gradient - w|`` of each map (one value per image)."""
    return (gradients - weights).abs().flatten(1).amax(1).detach().cpu().numpy()


def random_bands(shapes: Mapping[str, tuple[int, ...]], metric: str = "spearman_abs"
                 ) -> pd.DataFrame:
    """The band of two unrelated random maps of each shape (:func:`~sanitylib.experiments.
    runner.baseline_table`), one row per name of ``shapes`` in column ``dataset``: the floor of
    a similarity to the input."""
    return pd.concat([baseline_table([metric], tuple(shape)).assign(dataset=name)
                      for name, shape in shapes.items()], ignore_index=True)


def deviation_claims(deviations: pd.DataFrame, *, threshold: float, chapter: str
                     ) -> pd.DataFrame:
    """The linear model's identity, gradient = w, as one claim per ``data``: the largest
    deviation (``deviations``: columns data, seed, image, value from :func:`weight_deviation`)
    lies below ``threshold``. A maximum bounds every image and seed seen, so no interval is
    taken: estimate, low and high are all the largest deviation; n counts the images (the
    independent inputs) and n_seeds the random weight draws."""
    rows = [{"model": "linear", "dataset": data, "method": "gradient",
             "metric": "max_abs_deviation", "mean": float(part["value"].max()),
             "low": float(part["value"].max()), "high": float(part["value"].max()),
             "n": int(part["image"].nunique()), "n_seeds": int(part["seed"].nunique())}
            for data, part in deviations.groupby("data", sort=False)]
    return threshold_claims(
        pd.DataFrame(rows), threshold=threshold, expected="below", chapter=chapter,
        test="Linear model: gradient = w", source=LINEAR_SOURCE,
        statement=("Linear model on {dataset}: the gradient of a random linear model is its "
                   "weight row w (largest |gradient - w| below {threshold})"),
        statistic="largest |gradient - w| over images and seeds", setting=setting("predicted"))


def linear_claims(summary: pd.DataFrame, floor: pd.DataFrame, *, chapter: str,
                  metric: str = "spearman_abs") -> pd.DataFrame:
    """The linear-model argument compared with the input under ``metric``: the gradient (= w)
    is like a random map, Gradient ⊙ Input (= w ⊙ x) stays similar to the input. ``summary``
    has the rows of :func:`input_dominance` at noise 0 summarized per data, map and metric;
    ``floor`` the random-map band per dataset and metric (columns dataset, metric, mean, high)."""
    rows = summary[summary["metric"] == metric].rename(columns={"data": "dataset"})
    rows = rows.assign(model="linear", method=rows["map"].map(MAP_METHODS))
    statements = {
        "gradient": ("Linear model on {dataset}: the gradient (= w) of a random linear model is "
                     "no more similar to the input than a random map (Spearman of absolute maps)"),
        "gradient_x_input": ("Linear model on {dataset}: Gradient ⊙ Input (= w ⊙ x) of a random "
                             "linear model is more similar to the input than random maps are "
                             "(Spearman of absolute maps)")}
    expectations = {"gradient": "changes", "gradient_x_input": "remains"}
    return pd.concat([similarity_claims(
        rows[rows["method"] == method], floor, {method: expectations[method]}, chapter=chapter,
        test="Linear model: similarity to the input", source=LINEAR_SOURCE, statement=statement,
        statistic="mean similarity to the input", setting=setting("predicted"))
        for method, statement in statements.items()], ignore_index=True)


def conv_claims(summary: pd.DataFrame, floor: pd.DataFrame, methods: Sequence[str], *,
                chapter: str, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Section 5.2's argument, that a one-layer conv net's maps follow the input's edges even
    with random filters: per net, data and method of ``methods``, the similarity to the Sobel
    map above the random-map band (:func:`sanitylib.experiments.edges.edge_claims`, with
    ``summary`` the rows per data, net, method, detector and metric, and ``floor`` the
    random reference per dataset)."""
    rows = summary.rename(columns={"data": "dataset", "net": "model"})
    return edge_claims(
        rows[rows["method"].isin(methods)], floor, chapter=chapter, labels=labels,
        test="One-layer conv net: edge similarity", source=CONV_SOURCE,
        statement=("One-layer conv net ({model}) on {dataset}: the map '{method}' is closer "
                   "to the Sobel edge map than random maps are (Spearman of absolute maps)"))


def dominance_claims(summary: pd.DataFrame, floor: pd.DataFrame, models: Mapping[str, str], *,
                     chapter: str, metric: str = "spearman_abs") -> pd.DataFrame:
    """Fig. 5d's claim that the input dominates Gradient ⊙ Input: with the gradient replaced by
    the largest noise of ``summary`` (rows of :func:`input_dominance` per data, map, metric and
    noise), ``x ⊙ g`` stays more similar to ``x`` than random maps are under ``metric`` (the
    paper's), per input case (``data``). ``models`` names the network whose gradient each case
    uses; ``floor`` is the random-map band per case (columns dataset, metric, mean, high)."""
    top = summary["noise"].max()
    rows = summary[(summary["noise"] == top) & (summary["map"] == "x ⊙ g")
                   & (summary["metric"] == metric)]
    rows = rows.rename(columns={"data": "dataset"})
    rows = rows.assign(model=rows["dataset"].map(models), method=rows["map"].map(MAP_METHODS))
    return similarity_claims(
        rows, floor, {"gradient_x_input": "remains"}, chapter=chapter, test="Input dominance",
        source=DOMINANCE_SOURCE,
        statement=(f"Input dominance ({{dataset}}): with the gradient replaced by noise {top:g} "
                   "times its own size, Gradient ⊙ Input stays more similar to the input than "
                   "random maps are (Spearman of absolute maps)"),
        statistic=f"mean similarity of x ⊙ (g + noise) to x at noise {top:g}",
        setting=setting("predicted"))
