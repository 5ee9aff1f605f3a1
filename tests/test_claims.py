"""Claims as data: the interval over images, the decision rule, one verdict per claim, the
chapters' claims and the consistency check, on hand-made score tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sanitylib.experiments.claims import (
    COLUMNS,
    boundary,
    claims_frame,
    collect_claims,
    contradictions,
    decide,
    describe,
    method_setting,
    similarity_claims,
    similarity_reading,
    threshold_claims,
    write_claims,
)
from sanitylib.experiments.intervals import interval_summary


def scores(values: dict[tuple[int, int], float], method: str = "gradient",
           metric: str = "spearman_abs") -> pd.DataFrame:
    """A tidy score table from ``{(image, seed): value}``."""
    return pd.DataFrame([{"method": method, "metric": metric, "image": i, "seed": s, "value": v}
                         for (i, s), v in values.items()])


def test_interval_is_over_per_image_means_not_pooled_scores() -> None:
    # Two images, three seeds each: the seeds agree within an image, the images differ.
    table = scores({(0, 0): 0.1, (0, 1): 0.1, (0, 2): 0.1, (1, 0): 0.5, (1, 1): 0.5, (1, 2): 0.5})
    row = interval_summary(table, ["method", "metric"]).iloc[0]
    assert row["n"] == 2 and row["n_seeds"] == 3 and row["n_scores"] == 6
    assert row["mean"] == pytest.approx(0.3)
    # t(0.975, df=1) * sd(0.1, 0.5) / sqrt(2) = 12.706 * 0.2828 / 1.414 = 2.54: clipped to [-1, 1].
    assert row["low"] == -1.0 and row["high"] == 1.0


def test_interval_matches_hand_computed_t_interval() -> None:
    image_means = np.array([0.2, 0.4, 0.3, 0.5])
    table = scores({(i, s): m + (0.05 if s else -0.05) for i, m in enumerate(image_means)
                    for s in (0, 1)})
    row = interval_summary(table, ["method", "metric"]).iloc[0]
    half = 3.182446 * image_means.std(ddof=1) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert row["mean"] == pytest.approx(0.35)
    assert row["low"] == pytest.approx(0.35 - half, abs=1e-5)
    assert row["high"] == pytest.approx(0.35 + half, abs=1e-5)


def test_intervals_never_leave_the_metric_range() -> None:
    rng = np.random.default_rng(0)
    for metric in ("spearman_abs", "ssim", "cosine", "hog"):
        table = scores({(i, 0): float(v) for i, v in enumerate(rng.uniform(-1, 1, 3))},
                       metric=metric)
        row = interval_summary(table, ["method", "metric"]).iloc[0]
        assert -1.0 <= row["low"] <= row["high"] <= 1.0
    distance = scores({(0, 0): 0.0, (1, 0): 0.01, (2, 0): 2.0}, metric="l2_distance")
    assert interval_summary(distance, ["method", "metric"]).iloc[0]["low"] >= 0.0


def test_undefined_scores_are_counted_not_averaged() -> None:
    table = scores({(0, 0): 0.2, (1, 0): math.nan, (2, 0): 0.4, (3, 0): 0.3})
    row = interval_summary(table, ["method", "metric"]).iloc[0]
    assert row["n"] == 3 and row["n_undefined"] == 1 and row["mean"] == pytest.approx(0.3)


def test_two_images_give_inconclusive_whatever_the_numbers() -> None:
    assert decide(0.90, 0.95, 2, 0.1, "above")[0] == "inconclusive"
    assert decide(0.90, 0.95, 3, 0.1, "above")[0] == "agrees"
    assert decide(0.90, 0.95, 3, 0.1, "below")[0] == "differs"
    assert decide(0.05, 0.15, 16, 0.1, "below") == (
        "inconclusive", "the interval [0.05, 0.15] contains 0.10")
    with pytest.raises(ValueError, match="above, below"):
        decide(0.0, 0.1, 5, 0.5, "sideways")


def test_boundary_reconciles_the_band_and_the_scale() -> None:
    # Band top above a fifth of the scale: the band decides.
    assert boundary(0.0, 0.10, 0.3) == pytest.approx(0.10)
    # A fifth of the scale above the band: the scale decides (tiny but significant = changes).
    assert boundary(0.0, 0.05, 1.0) == pytest.approx(0.20)
    assert boundary(0.0, 0.05) == pytest.approx(0.05)           # no ceiling
    assert boundary(0.0, 0.05, -0.5) == pytest.approx(0.05)     # ceiling below the floor
    # A distance: lower is more similar, the boundary lies below the floor.
    assert boundary(10.0, 8.0, 0.0, "l2_distance") == pytest.approx(8.0)
    assert boundary(10.0, 9.5, 0.0, "l2_distance") == pytest.approx(8.0)


def test_similarity_claims_one_verdict_per_claim() -> None:
    table = pd.concat([
        scores({(i, s): 0.02 + 0.01 * i for i in range(8) for s in range(3)}, "gradient"),
        scores({(i, s): 0.80 + 0.01 * i for i in range(8) for s in range(3)}, "guided_backprop"),
        scores({(i, 0): v for i, v in enumerate([0.0, 0.6])}, "smoothgrad"),
    ], ignore_index=True)
    summary = interval_summary(table, ["method", "metric"])
    floor = pd.DataFrame({"metric": ["spearman_abs"], "mean": [0.0], "high": [0.05]})
    ceiling = pd.DataFrame({"method": ["gradient", "guided_backprop", "smoothgrad"],
                            "metric": ["spearman_abs"] * 3, "mean": [0.9, 0.95, 0.9]})
    claims = similarity_claims(
        summary, floor, {"gradient": "changes", "guided_backprop": "changes",
                         "smoothgrad": "changes"},
        chapter="02_cascading", test="Cascading randomization", source="paper, Fig. 4",
        statement="{method}'s maps {expectation}", statistic="mean after full randomization",
        ceiling=ceiling, labels={"gradient": "Gradient"})
    assert list(claims.columns) == COLUMNS
    verdicts = claims.set_index("method")["verdict"]
    assert verdicts.to_dict() == {"gradient": "agrees", "guided_backprop": "differs",
                                  "smoothgrad": "inconclusive"}
    assert claims.set_index("method").loc["gradient", "claim"] == \
        "Gradient's maps become like random maps"
    assert claims.set_index("method").loc["gradient", "boundary"] == pytest.approx(0.18)
    assert (claims.groupby("method").size() == 1).all()


def test_threshold_claims_and_the_words() -> None:
    summary = pd.DataFrame({"method": ["ig_local"], "metric": ["ssim"], "mean": [0.3],
                            "low": [0.2], "high": [0.4], "n": [8], "n_seeds": [10]})
    claims = threshold_claims(summary, threshold=0.0, expected="above", chapter="07",
                              test="Input multiplier", source="Kokhlikyan et al., Fig. 1",
                              statement="global minus local {method} is above {threshold}",
                              statistic="paired SSIM gap", labels={"ig_local": "IG"})
    row = claims.iloc[0]
    assert row["verdict"] == "agrees" and row["claim"] == "global minus local IG is above 0"
    text = describe(claims, method_labels={"ig_local": "IG"})
    assert "1 agrees, 0 differ, 0 are inconclusive" in text
    assert "IG 0.30 [0.20, 0.40], 8 images × 10 seeds" in text


def test_claims_frame_refuses_unknown_verdicts() -> None:
    with pytest.raises(ValueError, match="agrees, differs, inconclusive"):
        claims_frame([{"verdict": "passes", "n_images": 3, "n_seeds": 1}])


def claim(chapter: str, verdict: str, estimate: float, setting: str = "") -> dict[str, object]:
    return {"claim": "x", "source": "s", "chapter": chapter, "test": "Cascading randomization",
            "model": "efficientnet_lite0", "dataset": "photographs", "method": "gradient_x_input",
            "metric": "spearman_abs", "setting": setting, "statistic": "final", "n_images": 6,
            "n_seeds": 3, "estimate": estimate, "low": estimate - 0.05, "high": estimate + 0.05,
            "boundary": 0.1, "expected": "remains", "verdict": verdict, "reason": ""}


def test_contradictions_between_chapters() -> None:
    consistent = claims_frame([claim("02_cascading", "differs", 0.05),
                               claim("11_after_the_paper", "differs", 0.07)])
    assert contradictions(consistent).empty
    opposite = claims_frame([claim("02_cascading", "differs", 0.05),
                             claim("08_text", "agrees", 0.08)])
    assert contradictions(opposite)["why"].tolist() == ["opposite verdicts"]
    apart = claims_frame([claim("02_cascading", "differs", 0.05),
                          claim("11_after_the_paper", "differs", 0.30)])
    assert contradictions(apart)["why"].tolist() == ["intervals do not overlap"]
    # A named setting (a fixed instead of a recomputed class) explains a different number.
    named = claims_frame([claim("02_cascading", "differs", 0.05, "class: recomputed"),
                          claim("11_after_the_paper", "differs", 0.30, "class: fixed")])
    assert contradictions(named).empty


def test_write_and_collect(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SANITYLIB_RESULTS", str(tmp_path))
    write_claims([claims_frame([claim("02_cascading", "agrees", 0.5)]),
                  claims_frame([])], "cascading")
    write_claims(claims_frame([claim("11_after_the_paper", "differs", 0.5)]), "followups")
    write_claims(claims_frame([claim("09_findings", "agrees", 0.5)]), "findings")
    collected = collect_claims(tmp_path)
    assert collected["chapter"].tolist() == ["02_cascading", "11_after_the_paper"]
    assert collected["setting"].tolist() == ["", ""]


def test_a_ceiling_near_the_floor_cannot_decide() -> None:
    """Two honestly trained models whose maps barely agree (ceiling 0.07 against a band up to
    0.06, past 0.8 of the scale): a similarity of 0.10 cannot say whether the maps changed."""
    reading, _, reason = similarity_reading(0.07, 0.13, 16, 0.0, 0.06, 0.07)
    assert reading == "inconclusive" and "too close to the random floor" in reason
    assert similarity_reading(0.20, 0.30, 16, 0.0, 0.06, 0.5)[0] == "still similar"
    assert similarity_reading(0.00, 0.03, 16, 0.0, 0.06, 0.5)[0] == "like random maps"
    assert similarity_reading(0.07, 0.13, 16, 0.0, 0.06, -0.1)[0] == "inconclusive"
    assert similarity_reading(0.20, 0.30, 16, 0.0, 0.06, 0.08)[0] == "still similar"  # 0.75
    assert similarity_reading(0.07, 0.13, 16, 0.0, 0.06)[0] == "still similar"  # no ceiling


def test_the_settings_that_change_a_map_join_its_claim() -> None:
    """Two chapters averaging VarGrad over 8 and over 5 noise samples make two claims, not one."""
    options = {"vargrad": {"samples": 8, "seed": 0}, "integrated_gradients": {"steps": 10}}
    assert method_setting("vargrad", options) == "samples: 8"
    assert method_setting("gradient", options) == ""
    summary = interval_summary(pd.concat([
        scores({(i, 0): 0.2 for i in range(4)}, "vargrad"),
        scores({(i, 0): 0.01 * i for i in range(4)}, "gradient")]).assign(model="cnn"),
        ["model", "method", "metric"])
    floor = pd.DataFrame({"metric": ["spearman_abs"], "mean": [0.0], "high": [0.05]})
    claims = similarity_claims(summary, floor, {"vargrad": "changes", "gradient": "changes"},
                               chapter="03", test="t", source="s", statement="{method}",
                               statistic="x", setting="class: fixed",
                               options={"cnn": options})
    assert claims.set_index("method")["setting"].to_dict() == {
        "vargrad": "class: fixed; samples: 8", "gradient": "class: fixed"}
