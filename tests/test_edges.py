"""Edge detectors and edge similarity (sanitylib.experiments.edges) against hand-known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.filters import sobel as skimage_sobel

from sanitylib.experiments import edges
from sanitylib.methods import edges as detectors
from sanitylib.models.zoo import build


@pytest.fixture
def step():
    """Two 12x16 images: a vertical step at column 8 and a horizontal step at row 5."""
    x = np.zeros((2, 1, 12, 16))
    x[0, :, :, 8:] = 1.0
    x[1, :, 5:, :] = 0.5
    return x


def test_sobel_conv_layer_equals_scikit_image_sobel_up_to_its_scaling(step):
    # scikit-image divides each Sobel kernel by 4 and the sum of squares by the number of axes.
    assert np.allclose(detectors.sobel_conv(step), 4 * np.sqrt(2) * detectors.sobel(step), atol=1e-6)
    photo_like = np.random.default_rng(0).random((3, 3, 20, 24))
    assert np.allclose(detectors.sobel_conv(photo_like), 4 * np.sqrt(2) * detectors.sobel(photo_like),
                       atol=1e-5)


def test_sobel_of_a_step_is_nonzero_only_beside_the_step(step):
    magnitude = detectors.sobel(step)[0, 0]
    assert np.allclose(magnitude[:, [7, 8]], 1 / np.sqrt(2))  # |gx| = 1 after the /4 and /sqrt(2)
    assert np.all(np.delete(magnitude, [7, 8], axis=1) == 0)
    assert np.allclose(detectors.sobel(step)[1, 0], skimage_sobel(step[1, 0]))


def test_canny_marks_the_step_and_nothing_else(step):
    marked = detectors.canny(step)[0, 0]
    assert set(np.unique(marked)) == {0.0, 1.0}
    columns = np.flatnonzero(marked.any(0))
    assert set(columns) <= {7, 8} and len(columns) >= 1


def test_grayscale_uses_the_luma_weights_and_rejects_other_shapes():
    rgb = np.zeros((1, 3, 2, 2))
    rgb[0, 0] = 1.0  # pure red
    assert np.allclose(detectors.grayscale(rgb), 0.2125)
    with pytest.raises(ValueError, match="expected a batch"):
        detectors.grayscale(np.zeros((2, 2, 4, 4)))


def test_edge_maps_rejects_unknown_detectors_naming_the_valid_ones(step):
    with pytest.raises(ValueError, match="sobel, canny, sobel_conv"):
        edge_maps = detectors.edge_maps(step, ["prewitt"])
        del edge_maps
    assert set(detectors.edge_maps(step)) == set(detectors.DETECTORS)


def test_magnitude_sums_absolute_values_over_channels():
    maps = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.5]]]])
    assert np.allclose(detectors.magnitude(maps), [[[[4.0, 2.5]]]])


def test_an_edge_map_compared_with_itself_scores_one():
    photo_like = np.random.default_rng(1).random((2, 1, 48, 48))
    edge = detectors.edge_maps(photo_like, ["sobel"])
    scores = edges.edge_scores({"itself": edge["sobel"], "negated": -edge["sobel"]}, edge)
    assert np.allclose(scores.value, 1.0)  # magnitudes: the sign does not matter
    assert set(scores.metric) == set(edges.EDGE_METRICS)


def test_training_effect_is_the_paired_difference():
    rows = []
    for variant, shift in (("trained", 0.1), ("randomized", 0.0)):
        rows.append(pd.DataFrame({"method": "m", "variant": variant, "image": np.arange(5),
                                  "value": np.linspace(0.2, 0.6, 5) + shift}))
    effect = edges.training_effect(pd.concat(rows), ["method"])
    assert effect["mean"].iloc[0] == pytest.approx(0.1)
    assert effect["high"].iloc[0] - effect["low"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="'untrained'"):
        edges.training_effect(pd.concat(rows), ["method"], before="untrained")


def test_model_variants_randomize_every_block_and_build_a_fresh_network():
    trained = build("cnn")
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)  # stands in for training
    variants = edges.model_variants(trained, "cnn", seed=3)
    assert variants["trained"] is trained
    for a, b in zip(trained.parameters(), variants["randomized"].parameters()):
        assert not torch.allclose(a, b)
    torch.manual_seed(3)
    fresh = build("cnn")
    for a, b in zip(fresh.parameters(), variants["untrained"].parameters()):
        assert torch.equal(a, b)


def test_explain_models_keeps_models_with_equal_weights_but_other_layers_apart():
    from sanitylib.experiments.theory import one_layer_conv

    x = torch.rand(2, 1, 12, 12)
    nets = {pool: one_layer_conv(1, "random", n_filters=4, pool=pool, seed=0)
            for pool in ("sum", "max")}
    maps = edges.explain_models(nets, x, ["gradient"])
    assert not torch.allclose(maps["sum"]["gradient"], maps["max"]["gradient"])


def _edge_table(model: str, dataset: str, values: dict[str, list[float]]) -> pd.DataFrame:
    """Per-image Sobel Spearman scores of hand-made methods (one seed)."""
    return pd.DataFrame([{"model": model, "dataset": dataset, "method": method,
                          "detector": "sobel", "metric": "spearman_abs", "image": i, "value": v}
                         for method, vs in values.items() for i, v in enumerate(vs)])


def test_random_floor_is_the_band_of_the_random_references_per_image_scores():
    scores = _edge_table("none", "mnist", {"random": [-0.04, 0.0, 0.02, 0.06],
                                           "input": [0.7, 0.8, 0.75, 0.72]})
    floor = edges.random_floor(scores).iloc[0]
    assert floor["dataset"] == "mnist" and floor["n"] == 4
    assert floor["mean"] == pytest.approx(0.01)
    assert floor["high"] == pytest.approx(np.percentile([-0.04, 0.0, 0.02, 0.06], 97.5))


def test_edge_claims_agree_above_the_random_band_differ_below_and_need_three_images():
    floor = pd.DataFrame({"dataset": ["mnist", "photographs"], "mean": [0.0, 0.0],
                          "high": [0.1, 0.1]})
    trained = pd.concat([
        _edge_table("cnn", "mnist", {"gradient_x_input": [0.6, 0.7, 0.65, 0.62],
                                     "gradient": [-0.3, -0.35, -0.32, -0.31],
                                     "gradcam": [0.05, 0.12, 0.08, 0.11]}),
        _edge_table("efficientnet_lite0", "photographs", {"gradient": [0.5, 0.6]})])
    summary = edges.summarize_scores(trained, ["model", "dataset", "method", "detector", "metric"])
    claims = edges.edge_claims(summary, floor, chapter="05_edge_detectors").set_index("method")
    assert claims.loc["gradient_x_input", "verdict"] == "agrees"
    assert claims.loc["gradcam", "verdict"] == "inconclusive"  # its interval contains 0.1
    cnn = claims[claims.model == "cnn"]
    assert cnn.loc["gradient", "verdict"] == "differs"
    assert claims[claims.model == "efficientnet_lite0"]["verdict"].tolist() == ["inconclusive"]
    assert (claims["boundary"] == 0.1).all() and (claims["floor"] == 0.0).all()
    assert "trained CNN on MNIST" in claims.loc["gradient_x_input", "claim"]


def test_describe_sides_sorts_methods_by_where_their_interval_lies_and_skips_undefined_rows():
    table = pd.DataFrame({"model": "cnn", "dataset": "mnist",
                          "method": ["gradient", "gradcam", "vargrad", "guided_gradcam"],
                          "mean": [0.2, -0.2, 0.01, np.nan], "low": [0.1, -0.3, -0.05, np.nan],
                          "high": [0.3, -0.1, 0.07, np.nan], "n": [8, 8, 8, 0], "n_seeds": 1})
    text = edges.describe_sides(table, 0.0, {"above": "up", "below": "down",
                                             "inconclusive": "unclear"})
    assert text == ("* **CNN on MNIST** (8 images, 1 seed): up: gradient 0.20 [0.10, 0.30]; "
                    "down: gradcam -0.20 [-0.30, -0.10]; unclear: vargrad 0.01 [-0.05, 0.07].")
