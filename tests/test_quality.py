"""Explanation quality (sanitylib.experiments.input_multiplier) against hand-known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sanitylib.experiments import input_multiplier as quality
from sanitylib.methods.saliency import explain
from sanitylib.models.smooth import smooth
from sanitylib.models.zoo import build


class Square(nn.Module):
    """f(x) = (sum x_i^2, -sum x_i^2): gradient 2x, second-order term |I|^2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (x.flatten(1) ** 2).sum(1)
        return torch.stack([s, -s], 1)


def _linear(features: int = 6, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(features, 3).eval()


def test_infidelity_of_the_exact_gradient_of_a_linear_model_is_zero():
    model, x = _linear(), torch.rand(4, 6)
    target = torch.tensor([0, 1, 2, 0])
    for method, multiplied in (("gradient", False), ("gradient_x_input", True)):
        maps = explain(model, x, method, target=target)
        values = quality.infidelity_scores(model, x, maps, target, multiplied=multiplied)
        assert np.allclose(values, 0.0, atol=1e-10)


def test_global_infidelity_is_the_squared_completeness_error():
    # For f = sum x^2, Gradient ⊙ Input sums to 2 |x|^2 while f(x) - f(0) = |x|^2.
    x = torch.rand(3, 5)
    maps = explain(Square(), x, "gradient_x_input", target=0)
    values = quality.infidelity_scores(Square(), x, maps, torch.zeros(3, dtype=torch.long),
                                       multiplied=True)
    assert np.allclose(values, ((x ** 2).sum(1) ** 2).numpy(), rtol=1e-5)
    # Global IG is complete: sum Φ = f(x) - f(0) up to the Riemann error, here zero (linear g).
    ig = explain(Square(), x, "integrated_gradients", target=0, steps=11)
    values = quality.infidelity_scores(Square(), x, ig, torch.zeros(3, dtype=torch.long),
                                       multiplied=True)
    assert np.allclose(values, 0.0, atol=1e-8)


def test_local_infidelity_of_a_quadratic_is_the_fourth_moment_of_the_noise():
    # I · 2x - (|x|^2 - |x - I|^2) = |I|^2, whose mean square is std^4 (d^2 + 2d).
    d, std = 4, quality.INFIDELITY_STD
    x = torch.rand(2, d, dtype=torch.float64)
    maps = explain(Square(), x, "gradient", target=0)
    values = quality.infidelity_scores(Square(), x, maps, torch.zeros(2, dtype=torch.long),
                                       multiplied=False, n_perturb_samples=20000)
    assert np.allclose(values, std ** 4 * (d * d + 2 * d), rtol=0.08)


def test_infidelity_of_a_zero_map_is_the_mean_squared_change_of_the_output():
    model, x = _linear(), torch.rand(3, 6)
    target = torch.tensor([0, 1, 2])
    change = (model(x) - model(torch.zeros_like(x)))[torch.arange(3), target].detach()
    values = quality.infidelity_scores(model, x, torch.zeros_like(x), target, multiplied=True)
    assert np.allclose(values, (change ** 2).numpy(), rtol=1e-5)


def test_a_constant_explanation_has_zero_max_sensitivity():
    model, x = _linear(), torch.rand(4, 6)
    target = torch.tensor([2, 1, 0, 2])
    values = quality.max_sensitivity_scores(model, x, "gradient", {}, target)
    assert np.allclose(values, 0.0)


def test_max_sensitivity_of_the_quadratic_gradient_is_bounded_by_the_ball():
    # Φ = 2x moves by 2δ with |δ_i| <= r: the ratio is at most r sqrt(d) / |x| and positive.
    x = torch.rand(3, 8) + 0.5
    values = quality.max_sensitivity_scores(Square(), x, "gradient", {},
                                            torch.zeros(3, dtype=torch.long))
    bound = (quality.SENSITIVITY_RADIUS * math.sqrt(8) / x.norm(dim=1)).numpy()
    assert np.all(values > 0) and np.all(values <= bound + 1e-6)


def test_quality_table_covers_every_variant_step_and_metric_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SANITYLIB_CACHE", str(tmp_path))
    torch.manual_seed(0)
    model, x = build("cnn").eval(), torch.rand(2, 1, 28, 28)
    kwargs = {"ig_steps": 3, "samples": 2, "steps": ["original", "conv1"], "n_infidelity": 3}
    table = quality.quality_table(model, x, ["gradient", "ig_global"], labels={"model": "cnn"},
                                  **kwargs)
    assert len(table) == 2 * 2 * 3 * 2  # variants x steps x metrics x images
    assert set(table.block) == {"original", "conv1"} and (table.model == "cnn").all()
    assert np.isfinite(table.value).all() and (table.value >= 0).all()
    again = quality.quality_table(model, x, ["gradient", "ig_global"], labels={"model": "cnn"},
                                  **kwargs)
    assert again.equals(table)
    with pytest.raises(ValueError, match="valid choices"):
        quality.quality_table(model, x, ["lrp"], **kwargs)


def test_function_along_a_dimension_of_a_linear_model_is_a_line_with_the_weight_as_slope():
    model, x = _linear(), torch.rand(6)
    table = quality.function_along_dimensions({"linear": model}, x, [1, 4], target=2,
                                              radius=0.5, n_points=5)
    for dim, rows in table.groupby("dimension"):
        assert np.allclose(rows.slope, float(model.weight[2, dim].detach()))
        expected = float(model(x[None])[0, 2].detach()) + rows.offset * float(model.weight[2, dim].detach())
        assert np.allclose(rows.output, expected, atol=1e-5)
    assert quality.kink_score(table).jump.max() < 1e-6


def test_smoothing_removes_the_slope_jumps_of_the_relu_cnn():
    torch.manual_seed(0)
    cnn, x = build("cnn").eval(), torch.rand(1, 28, 28)
    dims = quality.salient_dimensions(cnn, x, 3)
    assert len(set(dims)) == 3
    table = quality.function_along_dimensions({"relu": cnn, "smooth": smooth(cnn, 3.0)}, x,
                                              dims, target=0, n_points=201)
    kinks = quality.kink_score(table).set_index("model").jump
    assert kinks["smooth"] < kinks["relu"]


def test_local_global_variants_pair_each_local_method_with_its_multiplied_twin():
    options = quality.variant_options(ig_steps=7, samples=3)
    for local, global_ in quality.PAIRS:
        assert not quality.VARIANTS[local][1] and quality.VARIANTS[global_][1]
    assert options["ig_local"] == ("integrated_gradients", {"steps": 7, "multiply_by_inputs": False})
    assert options["ig_global"] == ("integrated_gradients", {"steps": 7})


def test_the_figures_draw_one_line_per_method_and_per_model():
    import matplotlib

    matplotlib.use("Agg")
    from sanitylib.figures.quality import function_plot, quality_curves

    summary = pd.DataFrame([{"method": m, "metric": k, "block": b, "mean": 1.0, "low": 0.5,
                             "high": 1.5} for m in ("gradient", "ig_local")
                            for k in ("infidelity", "max_sensitivity") for b in ("original", "fc1")])
    fig = quality_curves(summary, ["gradient", "ig_local"], ["original", "fc1"])
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    assert fig.axes[0].get_yscale() == "log"
    table = quality.function_along_dimensions({"a": _linear(), "b": _linear(seed=1)},
                                              torch.rand(6), [0, 3], target=1, n_points=5)
    fig = function_plot(table, ["a", "b"], shape=(2, 3))
    assert len(fig.axes) == 4 and len(fig.axes[0].lines) == 2
    # The top row is centred: every curve passes through zero at the input.
    assert all(abs(line.get_ydata()[2]) < 1e-6 for line in fig.axes[0].lines)


def _similarity_scores(gap: float, n_images: int = 4, seeds: int = 2) -> pd.DataFrame:
    """Hand-made SSIM scores after full randomization: each global variant ``gap`` above its
    local twin on every image and seed (with some spread over images)."""
    rows = []
    for local, global_ in quality.PAIRS:
        for image in range(n_images):
            for seed in range(seeds):
                base = 0.05 + 0.01 * image + 0.002 * seed
                rows += [{"model": "cnn", "dataset": "mnist", "method": local, "metric": "ssim",
                          "block": "conv1", "seed": seed, "image": image, "value": base},
                         {"model": "cnn", "dataset": "mnist", "method": global_,
                          "metric": "ssim", "block": "conv1", "seed": seed, "image": image,
                          "value": base + gap + 0.01 * (image % 2)}]
    return pd.DataFrame(rows)


def test_paired_differences_are_global_minus_local_per_image_and_seed():
    from sanitylib.experiments.quality_findings import paired_differences

    table = paired_differences(_similarity_scores(0.3), "conv1")
    assert set(table.method) == {g for _, g in quality.PAIRS}
    assert len(table) == 3 * 4 * 2
    assert np.allclose(table.value, 0.3 + 0.01 * (table.image % 2))


def test_multiplier_claims_agree_when_global_stays_above_and_need_three_images():
    from sanitylib.experiments.quality_findings import multiplier_claims

    claims = multiplier_claims(_similarity_scores(0.3), "conv1")
    assert len(claims) == 3 and (claims.verdict == "agrees").all()
    assert (claims.n_images == 4).all() and (claims.n_seeds == 2).all()
    assert claims.test.unique().tolist() == ["Input multiplier"]
    assert "than IG (local)" in claims.set_index("method").loc["ig_global", "claim"]
    assert (multiplier_claims(_similarity_scores(-0.3), "conv1").verdict == "differs").all()
    few = multiplier_claims(_similarity_scores(0.3, n_images=2), "conv1")
    assert (few.verdict == "inconclusive").all()
    # A difference of SSIM scores never leaves [-2, 2].
    assert (few.low >= -2).all() and (few.high <= 2).all()


def _quality_scores(smoothed_factor: dict[str, float], n_images: int = 4) -> pd.DataFrame:
    rows = []
    for method, factor in smoothed_factor.items():
        for image in range(n_images):
            value = 0.1 * (1 + image)
            for network, v in (("relu", value), ("smooth", value * factor * (1 + 0.1 * image))):
                rows.append({"model": "cnn", "dataset": "mnist", "network": network,
                             "state": "trained", "method": method, "metric": "infidelity",
                             "seed": 0, "image": image, "value": v})
    return pd.DataFrame(rows)


def test_smoothing_claims_read_the_per_image_log_ratio_and_the_reading_names_every_rise():
    from sanitylib.experiments.quality_findings import smoothing_claims, smoothing_reading

    scores = _quality_scores({"gradient": 0.01, "gradient_x_input": 60.0})
    claims = smoothing_claims(scores, ["relu", "smooth"]).set_index("method")
    assert claims.loc["gradient", "verdict"] == "agrees"
    assert claims.loc["gradient_x_input", "verdict"] == "differs"
    assert claims.loc["gradient", "estimate"] == pytest.approx(
        np.mean(np.log10(0.01 * (1 + 0.1 * np.arange(4)))))
    compare = scores.groupby(["network", "state", "metric", "method"], as_index=False).value \
        .mean().rename(columns={"value": "mean"})
    compare = pd.concat([compare, compare.assign(metric="relative_infidelity"),
                         compare.assign(metric="max_sensitivity")], ignore_index=True)
    kinks = pd.DataFrame({"state": ["trained"] * 2 + ["randomized"] * 2,
                          "model": ["relu", "smooth"] * 2, "jump": [0.02, 1e-4, 1e-3, 1e-6]})
    text = smoothing_reading(compare, kinks, ["relu", "smooth"], {"relu": 6.0, "smooth": 3.0},
                             1, claims.reset_index(), 5)
    assert "Gradient ⊙ Input (0.25 → 18)" in text and "Gradient (" not in text
    assert "differs for Gradient ⊙ Input" in text and "agrees for Gradient" in text


def test_quality_claims_make_the_three_table_1_findings_per_model():
    from sanitylib.experiments.quality_findings import TABLE1_TESTS, quality_claims

    rows = []
    for block, scale in (("original", 1.0), ("conv1", 100.0)):
        for method, infidelity in (("ig_local", 0.01), ("ig_global", 2.0)):
            for image in range(4):
                rows += [{"model": "cnn", "dataset": "mnist", "method": method, "block": block,
                          "metric": "infidelity", "seed": 0, "image": image,
                          "value": infidelity * scale * (1 + 0.1 * image)},
                         {"model": "cnn", "dataset": "mnist", "method": method, "block": block,
                          "metric": "max_sensitivity", "seed": 0, "image": image,
                          "value": 0.3 * (1.2 if block == "conv1" else 1.0) + 0.01 * image}]
    claims = quality_claims(pd.DataFrame(rows), "original", "conv1")
    assert claims.groupby("test").size().to_dict() == {TABLE1_TESTS[0]: 1, TABLE1_TESTS[1]: 1,
                                                       TABLE1_TESTS[2]: 2}
    assert (claims.verdict == "agrees").all()
    assert claims.set_index("test").loc[TABLE1_TESTS[1], "estimate"] == pytest.approx(2.0)
