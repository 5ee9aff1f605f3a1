"""The data randomization chapter's claims and its partial-noise reading, on hand-made tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sanitylib.experiments.data_randomization import (
    claim_ceilings,
    data_randomization_claims,
    describe_drops,
    drop_shares,
)


def summary_row(method: str, mean: float, half: float = 0.03, n: int = 16, **keys: object
                ) -> dict[str, object]:
    return {"model": "cnn", "dataset": "mnist", "method": method, "metric": "spearman_abs",
            "mean": mean, "low": mean - half, "high": mean + half, "n": n, "n_seeds": 2, **keys}


def test_the_seed_ceiling_replaces_the_perturbation_ceiling_where_measured() -> None:
    perturbation = pd.DataFrame([
        {"model": "cnn", "dataset": "mnist", "method": m, "metric": "spearman_abs", "mean": 0.9}
        for m in ("gradient", "guided_backprop")])
    seed = pd.DataFrame([{"model": "cnn", "dataset": "mnist", "method": "gradient",
                          "metric": "spearman_abs", "mean": 0.15}])
    both = claim_ceilings(perturbation, seed).set_index("method")
    assert both.loc["gradient", "mean"] == 0.15
    assert both.loc["gradient", "reference"] == "training seed"
    assert both.loc["guided_backprop", "reference"] == "perturbation"


def test_claims_read_each_method_against_its_ceiling() -> None:
    summary = pd.DataFrame([summary_row("gradient", 0.02), summary_row("guided_backprop", 0.7),
                            summary_row("smoothgrad", 0.10)])
    baseline = pd.DataFrame({"metric": ["spearman_abs"], "mean": [0.0], "high": [0.06]})
    ceilings = pd.DataFrame([
        {"model": "cnn", "dataset": "mnist", "method": m, "metric": "spearman_abs", "mean": c,
         "reference": "perturbation"}
        for m, c in (("gradient", 0.9), ("guided_backprop", 0.95), ("smoothgrad", 0.07))])
    claims = data_randomization_claims(summary, baseline, ceilings, target="recompute")
    verdicts = claims.set_index("method")["verdict"].to_dict()
    # Gradient falls to random maps (the paper: changes); Guided BackProp stays (paper: barely
    # changes); SmoothGrad's ceiling 0.07 is too close to the band up to 0.06 to decide.
    assert verdicts == {"gradient": "agrees", "guided_backprop": "agrees",
                        "smoothgrad": "inconclusive"}
    assert (claims.test == "Data randomization").all()


def test_drop_shares_and_their_reading() -> None:
    rows = [summary_row(m, v, label_noise=noise)
            for m, values in (("gradient", (0.8, 0.6, 0.0)), ("gradient_x_input", (0.9, 0.9, 0.9)))
            for noise, v in zip((0.0, 0.25, 1.0), values)]
    shares = drop_shares(pd.DataFrame(rows)).set_index("method")
    assert shares.loc["gradient", "share"] == pytest.approx(0.25)
    assert math.isnan(shares.loc["gradient_x_input", "share"])
    text = describe_drops(shares.reset_index(), labels={"gradient": "Gradient"})
    assert "* Gradient: 0.80 → 0.60 → 0.00; 25% of the drop is reached at 25 %." in text
    assert "no drop" in text
    with pytest.raises(ValueError, match="no noise level 0.5"):
        drop_shares(pd.DataFrame(rows), at=0.5)
