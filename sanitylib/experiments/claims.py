"""Claims as data: every conclusion of the book computed from its scores, with its n.

A *claim* is one statement of a paper (Adebayo et al. 2018; Kokhlikyan et al. 2021; the
follow-up literature) tested on one model, dataset, method and metric. It is a record
(:data:`COLUMNS`): the words, where they come from, what was measured (the statistic, the number
of independent images and of seeds behind it, the estimate and its interval), the references
that give the number a meaning (the random floor, the ceiling where one was measured), what the
source expects, and one verdict in :data:`VERDICTS` from a single decision rule, :func:`decide`.
The chapters emit claims (:func:`write_claims`), the findings page collects them
(:func:`collect_claims`), and each chapter's "What this run shows" is written from them
(:func:`describe`); no sentence that states a result is typed by hand.

**Intervals.** The images (or sentences) are the independent units; randomization and training
seeds are nested inside them, since the same images recur under every seed. The interval is a
t interval over the per-image means (each image's scores averaged over seeds first), so its
degrees of freedom are the number of images, not images times seeds, and it is clipped to the
metric's range (:data:`sanitylib.methods.similarity.METRIC_RANGES`).

**Decision rule.** The source predicts on which side of a *boundary* the statistic falls. For a
similarity to the trained model's maps the boundary separates "like random maps" from "still
similar", and reconciles the two readings the book used to print side by side: the top of the
band of two unrelated random maps (the strict test) and a fifth of the way from the floor to the
ceiling (the effect-size reading, :data:`sanitylib.experiments.ceiling.CUTOFFS`), whichever is
higher. A claim *agrees* when the whole interval lies on the predicted side, *differs* when it
lies wholly on the other, and is *inconclusive* when the interval straddles the boundary (the
data cannot tell the floor from the source's expectation), when the ceiling is too close to the
floor for the two readings to differ (:data:`SEPARATION`), or when it rests on fewer than
:data:`MIN_INDEPENDENT` independent observations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sanitylib.experiments.ceiling import CUTOFFS
from sanitylib.experiments.imagenet import NETWORK_LABELS
from sanitylib.experiments.intervals import CONFIDENCE, UNITS, interval_summary
from sanitylib.experiments.tables import CLAIM_COLUMNS, read_result, result_tables, write_result
from sanitylib.methods.similarity import lower_is_similar

__all__ = ["COLUMNS", "CONFIDENCE", "DATASET_LABELS", "MAP_SETTINGS", "MIN_INDEPENDENT",
           "MODEL_LABELS", "READINGS", "SEPARATION", "UNITS", "VERDICTS", "boundary",
           "claims_frame", "claims_table", "collect_claims", "concat_claims", "contradictions",
           "count_verdicts",
           "decide", "describe", "describe_n", "interval_summary", "method_setting", "outcome",
           "setting", "similarity_claims", "similarity_reading", "threshold_claims",
           "verdict_list", "without_map_settings", "write_claims"]

VERDICTS = ("agrees", "differs", "inconclusive")
#: Fewer independent observations than this cannot decide a claim.
MIN_INDEPENDENT = 3
#: Every claim's fields, in the order of a chapter's claims table.
COLUMNS = list(CLAIM_COLUMNS)
#: How the claims name the book's models.
MODEL_LABELS = {"cnn": "CNN", "mlp": "MLP", "cnn_bn": "CNN + batch norm",
                "resnet_bn": "ResNet (ReLU)", "resnet_bn_relu6": "ResNet (ReLU6)",
                "vit": "ViT (ReLU MLP)", **NETWORK_LABELS}
#: How the claims name the book's datasets.
DATASET_LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "sst2": "SST-2",
                  "patch": "planted patch", "patch_control": "patch control",
                  "block": "BlockMNIST"}
#: What a source can expect of a statistic: that it lies above or below the boundary.
SIDES = ("above", "below")


def boundary(floor_mean: float, floor_high: float, ceiling: float = math.nan,
             metric: str = "") -> float:
    """Where "like random maps" ends for a similarity: the top of the random band, or a fifth of
    the way from the floor's mean to the ceiling (:data:`CUTOFFS`), whichever is further from the
    floor. For a distance (:func:`~sanitylib.methods.similarity.lower_is_similar`) lower is more similar, and the boundary lies below
    the floor. Without a ceiling, or one no more similar than the floor, the band alone."""
    sign = -1.0 if lower_is_similar(metric) else 1.0
    edge = sign * floor_high
    if not (math.isnan(ceiling) or math.isnan(floor_mean)) and sign * (ceiling - floor_mean) > 0:
        edge = max(edge, sign * (floor_mean + CUTOFFS[0] * (ceiling - floor_mean)))
    return sign * edge


def outcome(low: float, high: float, n: int, edge: float) -> tuple[str, str]:
    """Which side of ``edge`` the interval ``[low, high]`` lies on: ``("above" | "below" |
    "inconclusive", reason)``; inconclusive below :data:`MIN_INDEPENDENT` observations."""
    if n < MIN_INDEPENDENT:
        plural = "s" * (n != 1)
        return "inconclusive", (f"{n} independent observation{plural} (at least "
                                f"{MIN_INDEPENDENT} are needed)")
    if any(map(math.isnan, (low, high, edge))):
        return "inconclusive", "undefined (no defined scores, or no reference)"
    if low > edge:
        return "above", f"the interval [{low:.2f}, {high:.2f}] lies above {edge:.2f}"
    if high < edge:
        return "below", f"the interval [{low:.2f}, {high:.2f}] lies below {edge:.2f}"
    return "inconclusive", f"the interval [{low:.2f}, {high:.2f}] contains {edge:.2f}"


def decide(low: float, high: float, n: int, edge: float, expected: str) -> tuple[str, str]:
    """The decision rule: ``("agrees" | "differs" | "inconclusive", reason)`` for a source that
    expects the statistic ``expected`` ("above" or "below") ``edge``."""
    if expected not in SIDES:
        raise ValueError(f"expected must be one of {', '.join(SIDES)}, got {expected!r}")
    side, reason = outcome(low, high, n, edge)
    if side == "inconclusive":
        return side, reason
    return ("agrees" if side == expected else "differs"), reason


def setting(target: str = "recompute", init: str = "default", **more: object) -> str:
    """The named setting of a claim, in one spelling for every chapter: the class explained
    ("class: recomputed" after every step, as the original code; "class: fixed", as Quantus),
    the re-initialization when it is not each layer's own, then ``more`` as "key: value"."""
    parts = [f"class: {'recomputed' if target == 'recompute' else target}"]
    if init != "default":
        parts.append(f"init: {init}")
    parts += [f"{k.replace('_', ' ')}: {v}" for k, v in more.items()]
    return "; ".join(parts)


#: The random band may reach at most this far up the floor-to-ceiling scale: where "still
#: similar" begins on that scale (:data:`CUTOFFS`). Beyond it the band of random maps overlaps
#: "still similar", the ceiling is too close to the floor for any similarity to separate the two
#: readings, and the claim is inconclusive.
SEPARATION = CUTOFFS[1]
#: The two readings of a similarity to the trained model's maps, and the undecided one.
READINGS = ("like random maps", "still similar", "inconclusive")


def similarity_reading(low: float, high: float, n: int, floor_mean: float, floor_high: float,
                       ceiling: float = math.nan, metric: str = "") -> tuple[str, float, str]:
    """The decision rule read without a source's expectation (for a user's model in
    :func:`sanitylib.check`): ``(reading, boundary, reason)``, the reading one of
    :data:`READINGS` ("like random maps" when the interval lies wholly on the random side of
    :func:`boundary`, "still similar" when wholly on the other side). Inconclusive also when a
    ceiling was measured and the random band reaches past :data:`SEPARATION` of the way up to
    it (or it is not above the floor at all)."""
    edge = boundary(floor_mean, floor_high, ceiling, metric)
    sign = -1.0 if lower_is_similar(metric) else 1.0
    if not math.isnan(ceiling) and not math.isnan(floor_mean):
        span, band = sign * (ceiling - floor_mean), sign * (floor_high - floor_mean)
        if span <= 0 or band / span >= SEPARATION:
            return "inconclusive", edge, (
                f"the ceiling {ceiling:.2f} is too close to the random floor {floor_mean:.2f} "
                f"(band up to {floor_high:.2f}): maps that should agree are themselves nearly "
                "like random ones, so no similarity can tell the two readings apart")
    side, reason = outcome(low, high, n, edge)
    similar = "below" if lower_is_similar(metric) else "above"
    reading = side if side == "inconclusive" else \
        ("still similar" if side == similar else "like random maps")
    return reading, edge, reason


#: The settings of a method that change its maps (how many samples or steps a map averages).
MAP_SETTINGS = ("steps", "samples")


def method_setting(method: str, options: Mapping[str, Mapping[str, object]] | None) -> str:
    """The settings of ``method`` in ``options`` (per-method keyword options, as
    :func:`sanitylib.experiments.parameter_randomization.method_options` gives them) that change
    its maps, for a claim's setting: ``"samples: 8"``, ``"steps: 10; samples: 8"``, or ``""``."""
    chosen = (options or {}).get(method, {})
    return "; ".join(f"{k}: {chosen[k]}" for k in MAP_SETTINGS if k in chosen)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def without_map_settings(setting: str) -> str:
    """A setting without its :data:`MAP_SETTINGS` (for grouping claims in sentences)."""
    return _join(*(p for p in setting.split("; ") if p.split(":")[0] not in MAP_SETTINGS))


def claims_frame(records: Sequence[Mapping[str, object]] | pd.DataFrame) -> pd.DataFrame:
    """Claims in :data:`COLUMNS` order (missing fields empty); every verdict must be one of
    :data:`VERDICTS`."""
    table = pd.DataFrame(records)
    for column in COLUMNS:
        if column not in table:
            table[column] = np.nan if column in ("floor", "floor_high", "ceiling") else ""
    table = table[COLUMNS].reset_index(drop=True)
    bad = set(table["verdict"]) - set(VERDICTS)
    if bad:
        raise ValueError(f"unknown verdicts {sorted(bad)}; valid: {', '.join(VERDICTS)}")
    for column in ("n_images", "n_seeds"):
        table[column] = table[column].astype(int)
    return table


def _get(row: Mapping[str, object], column: str, default: float = math.nan) -> float:
    value = row.get(column, default)
    return default if value is None or pd.isna(value) else float(value)


def similarity_claims(summary: pd.DataFrame, floor: pd.DataFrame,
                      expectations: Mapping[str, str], *, chapter: str, test: str, source: str,
                      statement: str, statistic: str, ceiling: pd.DataFrame | None = None,
                      setting: str = "", labels: Mapping[str, str] | None = None,
                      options: Mapping[str, Mapping[str, Mapping[str, object]]] | None = None
                      ) -> pd.DataFrame:
    """Claims about similarities to the trained model's maps.

    Args:
        summary: :func:`interval_summary` rows with ``method`` and ``metric`` (and ``model``,
            ``dataset`` where there are several).
        floor: the random-map band per ``metric`` (``mean``, ``high``; matched on ``model`` and
            ``dataset`` too where both tables have them).
        expectations: method -> "changes" (the source expects maps like random ones) or
            "remains" (still similar); methods missing here make no claim.
        statement: the claim's words, formatted with ``method`` (its label), ``model``,
            ``dataset`` and ``expectation`` ("become like random maps" or "stay similar").
        ceiling: the ceiling per ``method`` and ``metric`` (``mean``; matched as ``floor``).
        labels: method names for the words.
        options: per model, the per-method options the maps were made with; the settings that
            change a method's maps (:func:`method_setting`) join its claim's ``setting``, so
            two chapters that average a different number of samples are not compared as one.
    """
    bad = set(expectations.values()) - {"changes", "remains"}
    if bad:
        raise ValueError(f"expectations must be 'changes' or 'remains', got {sorted(bad)}")
    labels = labels or {}
    keys = [c for c in ("model", "dataset") if c in floor and c in summary]
    merged = summary.merge(floor[[*keys, "metric", "mean", "high"]]
                           .rename(columns={"mean": "floor", "high": "floor_high"}),
                           on=[*keys, "metric"], how="left")
    if ceiling is not None:
        ckeys = [c for c in ("model", "dataset") if c in ceiling and c in summary]
        merged = merged.merge(ceiling[[*ckeys, "method", "metric", "mean"]]
                              .rename(columns={"mean": "ceiling"}),
                              on=[*ckeys, "method", "metric"], how="left")
    records = []
    for row in merged.to_dict("records"):
        expected = expectations.get(row["method"])
        if expected is None:
            continue
        metric = str(row["metric"])
        reading, edge, reason = similarity_reading(
            _get(row, "low"), _get(row, "high"), int(row["n"]), _get(row, "floor"),
            _get(row, "floor_high"), _get(row, "ceiling"), metric)
        wanted = "like random maps" if expected == "changes" else "still similar"
        verdict = reading if reading == "inconclusive" else \
            ("agrees" if reading == wanted else "differs")
        records.append({
            "claim": statement.format(
                method=labels.get(row["method"], row["method"]),
                model=MODEL_LABELS.get(row.get("model", ""), row.get("model", "")),
                dataset=DATASET_LABELS.get(row.get("dataset", ""), row.get("dataset", "")),
                expectation="become like random maps" if expected == "changes" else "stay similar"),
            "source": source, "chapter": chapter, "test": test, "model": row.get("model", ""),
            "dataset": row.get("dataset", ""), "method": row["method"], "metric": metric,
            "setting": _join(setting, method_setting(
                row["method"], (options or {}).get(row.get("model", ""), {}))),
            "statistic": statistic, "n_images": int(row["n"]),
            "n_seeds": int(row.get("n_seeds", 1)), "estimate": row["mean"], "low": row["low"],
            "high": row["high"], "floor": _get(row, "floor"), "floor_high": _get(row, "floor_high"),
            "ceiling": _get(row, "ceiling"), "boundary": edge, "expected": expected,
            "verdict": verdict, "reason": reason})
    return claims_frame(records)


def threshold_claims(summary: pd.DataFrame, *, threshold: float | str, expected: str,
                     chapter: str, test: str, source: str, statement: str, statistic: str,
                     setting: str = "", labels: Mapping[str, str] | None = None,
                     expectation: str | None = None) -> pd.DataFrame:
    """Claims that a statistic lies ``expected`` ("above" or "below") a ``threshold`` (a number,
    or a column of ``summary`` per row): a paired difference above 0, a ratio below 1, an
    accuracy above the paper's. ``summary`` as for :func:`similarity_claims`; ``statement`` is
    formatted with ``method`` (its label), ``model``, ``dataset`` and ``threshold``."""
    labels = labels or {}
    records = []
    for row in summary.to_dict("records"):
        edge = float(row[threshold]) if isinstance(threshold, str) else float(threshold)
        verdict, reason = decide(_get(row, "low"), _get(row, "high"), int(row["n"]), edge,
                                 expected)
        method = str(row.get("method", ""))
        records.append({
            "claim": statement.format(method=labels.get(method, method),
                                      model=MODEL_LABELS.get(row.get("model", ""),
                                                             row.get("model", "")),
                                      dataset=DATASET_LABELS.get(row.get("dataset", ""),
                                                                 row.get("dataset", "")),
                                      threshold=f"{edge:g}"),
            "source": source, "chapter": chapter, "test": test, "model": row.get("model", ""),
            "dataset": row.get("dataset", ""), "method": method,
            "metric": str(row.get("metric", "")), "setting": setting, "statistic": statistic,
            "n_images": int(row["n"]), "n_seeds": int(row.get("n_seeds", 1)),
            "estimate": row["mean"], "low": row["low"], "high": row["high"], "boundary": edge,
            "expected": expectation or f"{expected} {edge:g}", "verdict": verdict,
            "reason": reason})
    return claims_frame(records)


def concat_claims(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Several claims tables as one, empty ones left out (an empty table when all are)."""
    parts = [c for c in parts if len(c)]
    return claims_frame(pd.concat(parts, ignore_index=True) if parts else [])


def write_claims(claims: pd.DataFrame | Sequence[pd.DataFrame], folder: str) -> None:
    """Write a chapter's claims as its results table ``<folder>/claims``
    (:func:`sanitylib.experiments.tables.write_result`)."""
    if not isinstance(claims, pd.DataFrame):
        claims = concat_claims(claims)
    write_result(claims_frame(claims), f"{folder}/claims")


def collect_claims(root: Path | None = None) -> pd.DataFrame:
    """Every chapter's claims table under ``root`` (default: the results folder) in one table,
    in chapter order (the findings page's own is left out)."""
    text = ["claim", "source", "chapter", "test", "model", "dataset", "method", "metric",
            "setting", "statistic", "expected", "verdict", "reason"]
    read = [read_result(t.key, root, dtype={c: str for c in text}, keep_default_na=False,
                        na_values={c: ["", "nan", "NaN"] for c in COLUMNS if c not in text})
            for t in result_tables() if t.name == "claims" and t.folder != "findings"]
    tables = [t for t in read if t is not None]
    if not tables:
        return claims_frame([])
    table = claims_frame(pd.concat(tables, ignore_index=True))
    return table.sort_values("chapter", kind="stable").reset_index(drop=True)


#: What makes two claims about "the same thing": the same test, model, data, method, metric,
#: statistic and setting.
SAME = ["test", "model", "dataset", "method", "metric", "statistic", "setting"]


def contradictions(claims: pd.DataFrame) -> pd.DataFrame:
    """Pairs of claims from different chapters about the same thing (:data:`SAME`) that
    contradict each other: one agrees and the other differs with the same expectation, or their
    intervals do not overlap (two numbers for one test with no setting named to explain them).
    Empty when the book is consistent."""
    rows = []
    for _, group in claims.groupby(SAME, dropna=False, sort=False):
        records = group.to_dict("records")
        for i, a in enumerate(records):
            for b in records[i + 1:]:
                if a["chapter"] == b["chapter"]:
                    continue
                opposite = {a["verdict"], b["verdict"]} == {"agrees", "differs"} \
                    and a["expected"] == b["expected"]
                apart = a["high"] < b["low"] or b["high"] < a["low"]
                if opposite or apart:
                    rows.append({**{k: a[k] for k in SAME}, "chapter_a": a["chapter"],
                                 "chapter_b": b["chapter"], "estimate_a": a["estimate"],
                                 "estimate_b": b["estimate"], "verdict_a": a["verdict"],
                                 "verdict_b": b["verdict"],
                                 "why": "opposite verdicts" if opposite else
                                        "intervals do not overlap"})
    return pd.DataFrame(rows, columns=[*SAME, "chapter_a", "chapter_b", "estimate_a",
                                       "estimate_b", "verdict_a", "verdict_b", "why"])


def describe_n(n_images: int, n_seeds: int, unit: str = "image") -> str:
    """"16 images × 3 seeds", "4 photographs, 1 seed": the evidence behind a claim."""
    units = f"{n_images:,} {unit}{'s' * (n_images != 1)}"
    return f"{units} × {n_seeds} seeds" if n_seeds > 1 else f"{units}, 1 seed"


def _value(row: Mapping[str, object]) -> str:
    return f"{row['estimate']:.2f} [{row['low']:.2f}, {row['high']:.2f}]"


def count_verdicts(counts: Mapping[str, int]) -> str:
    """"5 agree, 1 differs, 0 are inconclusive": the verdict counts in words."""
    plural = {"agrees": "agree", "differs": "differ", "inconclusive": "are inconclusive"}
    singular = {"agrees": "agrees", "differs": "differs", "inconclusive": "is inconclusive"}
    return ", ".join(f"{counts.get(v, 0)} {(singular if counts.get(v, 0) == 1 else plural)[v]}"
                     for v in VERDICTS)


def describe(claims: pd.DataFrame, model_labels: Mapping[str, str] | None = None,
             method_labels: Mapping[str, str] | None = None, unit: str = "image") -> str:
    """"What this run shows": a Markdown list written from ``claims``, one item per test, model
    and dataset, naming which claims agree, differ and are inconclusive, with their estimates,
    intervals and n. Nothing in it is typed by hand."""
    if claims.empty:
        return "This run made no claims (its sections did not run)."
    model_labels = {**MODEL_LABELS, **(model_labels or {})}
    method_labels = method_labels or {}
    counts = claims["verdict"].value_counts()
    lines = [f"Of {len(claims)} claims tested in this chapter, {count_verdicts(counts)}."]
    base = claims["setting"].fillna("").astype(str).map(without_map_settings)
    for (test, model, dataset, setting), group in claims.assign(base=base).groupby(
            ["test", "model", "dataset", "base"], sort=False, dropna=False):
        where = model_labels.get(model, str(model).upper() if model else "")
        where += f" on {DATASET_LABELS.get(dataset, dataset)}" \
            if isinstance(dataset, str) and dataset else ""
        head = f"**{test}**" + (f", {where}" if where else "") \
            + (f" ({setting})" if isinstance(setting, str) and setting else "")
        parts = []
        for verdict in VERDICTS:
            rows = group[group.verdict == verdict]
            if rows.empty:
                continue
            items = ", ".join(
                f"{method_labels.get(r['method'], r['method']) or r['statistic']} "
                f"{_value(r)}, {describe_n(int(r['n_images']), int(r['n_seeds']), unit)}"
                for r in rows.to_dict("records"))
            parts.append(f"{verdict}: {items}")
        lines.append(f"* {head}: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def claims_table(claims: pd.DataFrame, unit: str = "image") -> pd.DataFrame:
    """The claims for reading (at most five columns): the claim, the measured estimate with its
    interval, its n, the boundary it was judged against and the verdict."""
    return pd.DataFrame({
        "claim": claims["claim"],
        "measured": [_value(r) for r in claims.to_dict("records")],
        "n": [describe_n(int(a), int(b), unit) for a, b in zip(claims["n_images"],
                                                                claims["n_seeds"])],
        "boundary": claims["boundary"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}"),
        "verdict": claims["verdict"]})


def verdict_list(claims: pd.DataFrame, labels: Mapping[str, str] | None = None,
                 unit: str = "image") -> str:
    """The claims' verdicts in words, for a sentence: "agrees for IG (local) 0.31 [0.2, 0.42]
    (8 images × 10 seeds); inconclusive for ..."; "no claim" for none."""
    labels = labels or {}
    parts = []
    for verdict in VERDICTS:
        rows = claims[claims.verdict == verdict]
        if len(rows):
            parts.append(f"{verdict} for " + ", ".join(
                f"{labels.get(r.method, r.method)} {r.estimate:.3g} [{r.low:.3g}, {r.high:.3g}] "
                f"({describe_n(int(r.n_images), int(r.n_seeds), unit)})"
                for r in rows.itertuples()))
    return "; ".join(parts) or "no claim"
