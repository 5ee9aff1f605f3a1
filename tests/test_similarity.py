"""Similarity metrics: identities, chance levels and agreement with scikit-image (issue 3)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from sanitylib.methods.similarity import (
    METRICS,
    compare,
    compare_to,
    normalize_absolute,
    normalize_signed,
    random_baseline,
    spearman,
    ssim,
    summarize,
)

SIMILARITIES = [m for m in METRICS if m != "l2_distance"]


@pytest.fixture
def maps():
    return np.random.default_rng(0).standard_normal((6, 3, 64, 64))


@pytest.mark.parametrize("metric", SIMILARITIES)
def test_identical_maps_score_one(maps, metric):
    assert np.allclose(compare(maps, maps, metric), 1.0)


def test_identical_maps_are_at_distance_zero(maps):
    assert np.allclose(compare(maps, maps, "l2_distance"), 0.0)


def test_a_permuted_map_scores_near_zero_on_spearman(maps):
    rng = np.random.default_rng(1)
    flat = maps.reshape(len(maps), -1)
    permuted = flat[:, rng.permutation(flat.shape[1])].reshape(maps.shape)
    for absolute in (True, False):
        assert np.all(np.abs(spearman(maps, permuted, absolute=absolute)) < 0.05)


def test_batched_ssim_agrees_with_scikit_image_on_each_pair(maps):
    other = maps + 0.7 * np.random.default_rng(2).standard_normal(maps.shape)
    na, nb = normalize_signed(maps), normalize_signed(other)
    expected = [structural_similarity(na[i], nb[i], win_size=5, data_range=2.0)
                for i in range(len(maps))]
    assert np.allclose(ssim(maps, other, variant="text"), expected)
    ma, mb = normalize_absolute(maps, None), normalize_absolute(other, None)
    expected = [structural_similarity(ma[i], mb[i], gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=2.0)
                for i in range(len(maps))]
    assert np.allclose(ssim(maps, other, variant="code"), expected)


def test_normalizations_follow_the_paper():
    m = np.arange(100, dtype=float).reshape(1, 10, 10) - 50.0  # one channel
    absolute = normalize_absolute(m)[0]
    assert absolute.min() == 0.0 and absolute.max() == 1.0
    signed = normalize_signed(m, percentile=None)[0]
    assert signed.min() == -1.0 and np.isclose(signed.max(), 49 / 50)


def test_single_maps_and_batches_give_one_score_per_image(maps):
    assert compare(maps[0], maps[1], "spearman").shape == (1,)
    assert compare(maps[0, 0], maps[1, 0], "ssim").shape == (1,)
    assert compare(maps, maps[::-1], "hog").shape == (6,)
    assert compare(maps[:, 0, 0], maps[:, 0, 1], "cosine", batched=True).shape == (6,)


def test_constant_maps_are_undefined_and_counted(maps):
    constant = maps.copy()
    constant[2] = 0.0
    for metric in ("spearman_abs", "spearman", "ssim", "hog", "cosine", "pearson"):
        scores = compare(maps, constant, metric)
        assert np.isnan(scores[2]) and np.isfinite(np.delete(scores, 2)).all(), metric
    with pytest.warns(UserWarning, match="1 of 6 scores are undefined"):
        summary = summarize(compare(maps, constant, "spearman"))
    assert summary["n"] == 5 and summary["n_undefined"] == 1


def test_random_baseline_is_near_zero_for_correlations():
    for metric in ("spearman_abs", "spearman", "ssim", "cosine", "pearson"):
        assert abs(random_baseline(metric, (1, 28, 28), n=50).mean()) < 0.05, metric


def test_summary_interval_contains_the_mean():
    s = summarize(np.array([0.1, 0.2, 0.3, 0.4]))
    assert s["mean"] == pytest.approx(0.25) and s["n"] == 4
    assert s["low"] < s["mean"] < s["high"]


def test_shape_mismatch_and_unknown_metric_are_errors(maps):
    with pytest.raises(ValueError, match="shape mismatch"):
        compare(maps, maps[:, :1], "spearman")
    with pytest.raises(ValueError, match="valid choices: spearman_abs"):
        compare(maps, maps, "kendall")


@pytest.mark.parametrize("metric", ["spearman_abs", "spearman", "hog", "ssim", "cosine"])
def test_compare_to_gives_compares_numbers(metric):
    generator = np.random.default_rng(0)
    reference = generator.standard_normal((3, 1, 28, 28))
    others = [generator.standard_normal((3, 1, 28, 28)) for _ in range(3)]
    others[1][0] = 0.0  # an undefined (constant) map stays NaN
    for got, other in zip(compare_to(reference, others, metric), others):
        np.testing.assert_array_equal(got, compare(reference, other, metric))
