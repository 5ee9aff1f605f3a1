"""The models chapter's claims: Wilson intervals and the paper's accuracies."""

from __future__ import annotations

import pandas as pd
import pytest

from sanitylib.experiments.accuracy import accuracy_claims
from sanitylib.experiments.intervals import wilson


def test_wilson_interval_by_hand() -> None:
    # 95 of 100: centre (0.95 + 1.96^2/200) / (1 + 1.96^2/100) = 0.9344, half-width 0.0447.
    low, high = wilson(0.95, 100)
    assert low == pytest.approx(0.8883, abs=1e-3) and high == pytest.approx(0.9785, abs=1e-3)
    assert wilson(1.0, 10)[1] == pytest.approx(1.0) and wilson(0.0, 10)[0] == pytest.approx(0.0)


def test_accuracy_claims() -> None:
    table = pd.DataFrame([
        {"architecture": "cnn", "dataset": "mnist", "labels": "true", "train_size": 4000,
         "train_accuracy": 0.99, "test_accuracy": 0.975},
        {"architecture": "mlp", "dataset": "fashion_mnist", "labels": "true", "train_size": 4000,
         "train_accuracy": 0.9, "test_accuracy": 0.85},
        {"architecture": "cnn", "dataset": "mnist", "labels": "permuted", "train_size": None,
         "train_accuracy": 0.99, "test_accuracy": 0.11},
    ])
    claims = accuracy_claims(table, {"mnist": 5000, "fashion_mnist": 10000}, {"mnist": 1000})
    # No paper number for Fashion-MNIST: no claim; 97.5 % of 5,000 is below 99.2 % - 1 point.
    assert claims["claim"].str.contains("fashion").sum() == 0
    assert claims["verdict"].tolist() == ["differs", "agrees", "agrees"]
    assert claims["n_images"].tolist() == [5000, 1000, 5000]
