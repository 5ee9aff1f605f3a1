"""The models chapter's claims: do the book's models reach the accuracies of Adebayo et al.
(2018), Section 5 and Appendix (test accuracy of the MNIST CNN 99.2 %, MLP 98.7 %; permuted-label
models above 95 % training accuracy with test accuracy at chance)?

An accuracy is a proportion of independent images, so its interval is Wilson's
(:func:`sanitylib.experiments.intervals.wilson`) over the images it was measured on, and the
claim is decided by :func:`sanitylib.experiments.claims.decide` like every other claim.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from sanitylib.experiments.claims import DATASET_LABELS, MODEL_LABELS, claims_frame, decide
from sanitylib.experiments.intervals import wilson
from sanitylib.models.training import PAPER_TEST_ACCURACY

__all__ = ["CHANCE_MARGIN", "PAPER_TOLERANCE", "PERMUTED_TRAIN", "accuracy_claims"]

#: A test accuracy "reaches the paper's" when it is above the paper's minus one point.
PAPER_TOLERANCE = 0.01
#: The paper's permuted-label models fit more than 95 % of their training labels.
PERMUTED_TRAIN = 0.95
#: "At chance" on 10 classes: below chance plus five points.
CHANCE_MARGIN = 0.05
SOURCE = "Adebayo et al. 2018, Section 5 and Appendix"


def _claim(row: Mapping[str, object], words: str, test: str, share: float, n: int, edge: float,
           expected: str, expectation: str, statistic: str) -> dict[str, object]:
    low, high = wilson(share, n)
    verdict, reason = decide(low, high, n, edge, expected)
    return {"claim": words, "source": SOURCE, "chapter": "01_models", "test": test,
            "model": row["architecture"], "dataset": row["dataset"], "method": "",
            "metric": "accuracy", "setting": f"labels: {row['labels']}", "statistic": statistic,
            "n_images": n, "n_seeds": 1, "estimate": share, "low": low, "high": high,
            "boundary": edge, "expected": expectation, "verdict": verdict, "reason": reason}


def accuracy_claims(table: pd.DataFrame, test_sizes: Mapping[str, int],
                    train_sizes: Mapping[str, int], classes: int = 10) -> pd.DataFrame:
    """Claims from :func:`sanitylib.models.training.accuracy_table` (columns architecture,
    dataset, labels, train_size, train_accuracy, test_accuracy): the paper's test accuracy for
    each true-label model it reports, and for every permuted-label model memorisation (training
    accuracy above 95 %) with test accuracy at chance. ``test_sizes``, ``train_sizes``: images per
    dataset (the training size of a model trained on a subset is its ``train_size``)."""
    chance = 1 / classes
    records = []
    for row in table.to_dict("records"):
        name = (f"{MODEL_LABELS.get(row['architecture'], row['architecture'])} on "
                f"{DATASET_LABELS.get(row['dataset'], row['dataset'])}")
        n_test = int(test_sizes[row["dataset"]])
        paper = PAPER_TEST_ACCURACY.get((row["architecture"], row["dataset"]))
        if row["labels"] == "true" and paper is not None:
            records.append(_claim(
                row, f"{name} trained on the true labels reaches the paper's {paper:.1%} test "
                f"accuracy (within {PAPER_TOLERANCE:.0%})", "Training", row["test_accuracy"],
                n_test, paper - PAPER_TOLERANCE, "above", f"above {paper - PAPER_TOLERANCE:.3f}",
                "test accuracy"))
        elif row["labels"] == "permuted":
            records.append(_claim(
                row, f"{name} memorises permuted labels (training accuracy above "
                f"{PERMUTED_TRAIN:.0%})", "Training on permuted labels", row["train_accuracy"],
                int(row["train_size"]) if pd.notna(row.get("train_size"))
                else int(train_sizes[row["dataset"]]), PERMUTED_TRAIN, "above", f"above {PERMUTED_TRAIN}",
                "training accuracy on the permuted labels"))
            records.append(_claim(
                row, f"{name} trained on permuted labels is at chance on the test set (below "
                f"{chance + CHANCE_MARGIN:.0%})", "Training on permuted labels",
                row["test_accuracy"], n_test, chance + CHANCE_MARGIN, "below",
                f"below {chance + CHANCE_MARGIN:.2f}", "test accuracy"))
    return claims_frame(records)
