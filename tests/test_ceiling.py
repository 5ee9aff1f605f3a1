"""The ceiling beside the floor (issue 16): perturbation and training-seed ceilings, placement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sanitylib.experiments.ceiling import (
    CUTOFFS,
    ceiling_table,
    perturbation_ceiling,
    perturbed,
    place,
    seed_ceiling,
)
from sanitylib.experiments.runner import baseline_table, summarize_scores
from sanitylib.models.zoo import build


def test_perturbed_moves_every_parameter_by_its_relative_size():
    model = build("cnn")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copy = perturbed(model, relative=1e-3, seed=4)
    for (name, p), q in zip(model.named_parameters(), copy.parameters()):
        ratio = (q / p - 1).detach()
        assert abs(float(ratio.std()) - 1e-3) < 2e-4 or p.numel() < 50, name
        assert not torch.equal(p, q)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    again = perturbed(model, relative=1e-3, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(copy.parameters(), again.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(perturbed(model, 0.0).parameters(),
                                                 model.parameters()))


def test_perturbation_ceiling_is_near_one_for_the_gradient():
    torch.manual_seed(0)
    model = build("cnn")
    x = torch.rand(3, 1, 28, 28)
    scores = perturbation_ceiling(model, x, ["gradient"], seeds=[0, 1],
                                  metrics=["spearman_abs", "ssim"])
    assert len(scores) == 2 * 2 * 3 and set(scores.reference) == {"perturbation"}
    assert (scores.value > 0.95).all() and (scores.value < 1).any()
    far = perturbation_ceiling(model, x, ["gradient"], relative=1.0, metrics=["spearman_abs"])
    assert far.value.mean() < scores[scores.metric == "spearman_abs"].value.mean()


def test_seed_ceiling_compares_every_pair_of_training_seeds():
    generator = torch.Generator().manual_seed(0)
    maps = {s: {"gradient": torch.rand(2, 1, 8, 8, generator=generator)} for s in (0, 1, 2)}
    scores = seed_ceiling(maps, metrics=["spearman"])
    assert sorted(set(zip(scores.seed_a, scores.seed_b))) == [(0, 1), (0, 2), (1, 2)]
    same = seed_ceiling({0: maps[0], 1: maps[0]}, metrics=["spearman"])
    assert np.allclose(same.value, 1.0)
    with pytest.raises(ValueError, match="at least 2 training seeds"):
        seed_ceiling({0: maps[0]})


def test_place_by_hand_including_distances_and_an_undefined_scale():
    summary = pd.DataFrame({"method": ["a", "b", "c", "d", "e", "f"],
                            "metric": ["spearman"] * 4 + ["l2_distance", "spearman"],
                            "mean": [0.4, 0.1, 0.7, 0.5, 4.0, np.nan]})
    floor = pd.DataFrame({"metric": ["spearman", "l2_distance"], "mean": [0.0, 10.0]})
    ceiling = pd.DataFrame({"method": ["a", "b", "c", "d", "e", "f"],
                            "metric": ["spearman"] * 4 + ["l2_distance", "spearman"],
                            "mean": [0.8, 0.8, 0.8, -0.1, 2.0, 0.8]})
    placed = place(summary, floor, ceiling).set_index("method")
    assert placed.loc["a", "position"] == pytest.approx(0.5)
    assert placed.loc["b", "position"] == pytest.approx(0.125)
    assert placed.loc["c", "position"] == pytest.approx(0.875)
    assert placed.loc["e", "position"] == pytest.approx(0.75)  # (4 - 10) / (2 - 10)
    assert list(placed.verdict) == ["partly", "changes", "still similar",
                                    "undefined: ceiling not above floor", "partly",
                                    "undefined: no defined scores"]
    assert np.isnan(placed.loc["d", "position"]) and CUTOFFS == (0.2, 0.8)


def test_place_reads_any_value_column_and_names_the_columns_when_missing():
    summary = pd.DataFrame({"method": ["a"], "metric": ["spearman"], "median": [0.6]})
    floor = pd.DataFrame({"metric": ["spearman"], "mean": [0.2]})
    ceiling = pd.DataFrame({"method": ["a"], "metric": ["spearman"], "mean": [1.0]})
    assert place(summary, floor, ceiling, "median").position[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no column 'mean'; columns: method, metric, median"):
        place(summary, floor, ceiling)


def test_place_takes_the_runner_tables():
    torch.manual_seed(0)
    model = build("cnn")
    x = torch.rand(3, 1, 28, 28)
    scores = perturbation_ceiling(model, x, ["gradient"], metrics=["spearman_abs"])
    ceiling = ceiling_table(scores)
    assert {"mean", "low", "high", "n", "n_undefined"} <= set(ceiling.columns)
    floor = baseline_table(["spearman_abs"], (1, 28, 28), n=20)
    summary = summarize_scores(scores.assign(value=0.5 * scores.value), ["method", "metric"])
    placed = place(summary, floor, ceiling)
    assert 0.3 < float(placed.position[0]) < 0.7 and placed.verdict[0] == "partly"
