"""Architecture as a prior: the cascading test on networks that differ in one factor at a time.

Adebayo et al. (2018, Section 5.3) attribute the maps that survive randomization to the
architecture acting as a prior, and tested three architectures. Here the networks of
:mod:`sanitylib.models.zoo` (the paper's CNN and MLP, the CNN with batch norm, a small residual
network with ReLU and with ReLU6, a small vision transformer), trained on Fashion-MNIST with one
training setting, run the paper's cascading test under every batch-norm protocol that applies
(:mod:`sanitylib.experiments.protocols`), with EfficientNet-Lite0 on the photographs beside them.
:func:`dependence` reads off the claims which method's verdict depends on the architecture, and
which on the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from sanitylib.experiments.claims import MODEL_LABELS, VERDICTS
from sanitylib.experiments.protocols import has_batchnorm
from sanitylib.models.under_test import ModelUnderTest

__all__ = ["ARCHITECTURE_LABELS", "dependence", "study_protocols"]

#: Every network's name for the page (the claims' labels, which include the study's networks).
ARCHITECTURE_LABELS = MODEL_LABELS


def study_protocols(model: ModelUnderTest) -> list[str]:
    """The paper's protocol, and the batch-norm protocols where the network has batch norm."""
    return ["kept", "reestimated", "reset"] if has_batchnorm(model) else ["kept"]


def _names(models: pd.Series, labels: Mapping[str, str]) -> str:
    return ", ".join(labels.get(m, m) for m in models) or "—"


def dependence(claims: pd.DataFrame, method_labels: Mapping[str, str],
               labels: Mapping[str, str] = ARCHITECTURE_LABELS) -> pd.DataFrame:
    """Per method: the architectures where its cascading claim (paper's protocol) agrees,
    differs or is inconclusive; whether its verdict depends on the architecture ("yes" when it
    agrees on one and differs on another, "no" when every claim is the same decided verdict,
    "undecided" otherwise); and the architectures where the batch-norm protocol changes its
    verdict."""
    kept = claims[claims.protocol == "kept"]
    rows = []
    for method, group in kept.groupby("method", sort=False):
        by = {v: group[group.verdict == v]["model"] for v in VERDICTS}
        decided = {v for v in ("agrees", "differs") if len(by[v])}
        depends = "yes" if len(decided) == 2 else \
            "no" if len(decided) == 1 and not len(by["inconclusive"]) else "undecided"
        others = claims[(claims.method == method) & (claims.protocol != "kept")]
        merged = others.merge(group[["model", "verdict"]], on="model", suffixes=("", "_kept"))
        changed = merged[merged.verdict != merged.verdict_kept]["model"].drop_duplicates()
        rows.append({"method": method_labels.get(method, method),
                     "agrees on": _names(by["agrees"], labels),
                     "differs on": _names(by["differs"], labels),
                     "inconclusive on": _names(by["inconclusive"], labels),
                     "depends on the architecture": depends,
                     "changes with the protocol on": _names(changed, labels)})
    return pd.DataFrame(rows)
