"""Cache and trainer: keyed, checked, deterministic (issue 2)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from sanitylib.data.images import ImageDataset
from sanitylib.infra.cache import cache_dir, cache_key, cached
from sanitylib.models.training import TrainConfig, permute_labels, train


def tiny_data() -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(120, 1, 28, 28, generator=g)
    y = torch.arange(120) % 10
    x[torch.arange(120), 0, y, y] = 5.0  # a learnable signal: one bright pixel per class
    return ImageDataset("mnist", x[:100], y[:100], x[100:], y[100:], "synthetic test data")


def test_cache_reuses_then_rebuilds_stale_or_corrupt_entries():
    calls = []

    def build():
        calls.append(1)
        return {"value": torch.arange(3)}

    config = {"a": 1}
    assert torch.equal(cached("t", config, build)["value"], torch.arange(3))
    cached("t", config, build)
    assert len(calls) == 1
    payload = cache_dir() / "t" / f"{cache_key(config, (build,))[0]}.pt"
    payload.write_bytes(payload.read_bytes()[:-5] + b"xxxxx")
    with pytest.warns(UserWarning, match="corrupt"):
        cached("t", config, build)
    manifest = payload.with_suffix(".json")
    manifest.write_text(manifest.read_text().replace('"a": 1', '"a": 2'))
    with pytest.warns(UserWarning, match="stale"):
        cached("t", config, build)
    assert len(calls) == 3


def test_changed_code_rebuilds_the_entry():
    calls = []

    def version_one():
        calls.append(1)
        return {"maps": torch.ones(2), "table": pd.DataFrame({"x": [1, 2]}),
                "array": np.arange(3)}

    def version_two():
        calls.append(2)
        return version_one()

    first = cached("t", {"a": 1}, version_one)
    again = cached("t", {"a": 1}, version_one)
    assert calls == [1] and again["table"].equals(first["table"])
    assert np.array_equal(again["array"], np.arange(3))
    cached("t", {"a": 1}, version_two)  # other source: another entry
    assert calls == [1, 2, 1]


def test_models_with_equal_weights_and_other_structure_have_other_keys():
    from sanitylib.models.smooth import smooth
    from sanitylib.models.zoo import build as build_model

    relu = build_model("cnn")
    soft = smooth(relu, beta=3.0)
    assert cache_key({"m": relu}, ())[0] != cache_key({"m": soft}, ())[0]


def test_training_is_deterministic_cached_and_reports_accuracy():
    config = TrainConfig("mlp", "mnist", epochs=3, lr=1e-3, batch_size=20)
    first = train(config, tiny_data(), verbose=False)
    assert first.epochs_run == 3 and first.train_accuracy > 0.5
    for d in cache_dir().glob("models/*.pt"):
        d.unlink()
        d.with_suffix(".json").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = train(config, tiny_data(), verbose=False)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert first.summary()["source"] == "synthetic test data"


def test_permuted_labels_keep_the_label_counts():
    labels = torch.arange(1000) % 10
    shuffled = permute_labels(labels, 1.0, seed=0)
    assert torch.equal(torch.bincount(shuffled), torch.bincount(labels))
    assert (shuffled == labels).float().mean() < 0.2
    half = permute_labels(labels, 0.5, seed=0)
    assert 0.5 <= (half == labels).float().mean() < 0.6
    assert torch.equal(permute_labels(labels, 0.0, seed=0), labels)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="valid choices: true, permuted"):
        TrainConfig(labels="random")
