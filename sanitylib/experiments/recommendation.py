"""One table that can recommend: sanity, correctness and faithfulness per method, from the claims.

A method is recommended for a model only when it passes all three kinds of test, each decided by
the book's rule on its interval (:func:`sanitylib.experiments.claims.decide`):

- *sanity*: its maps become like random maps when the model's weights are re-initialized from the
  logits down (the cascading chapter) and when the model is trained on permuted labels (the data
  randomization chapter): a similarity below the boundary of the floor-to-ceiling scale;
- *correctness*: on a model of the same architecture trained on planted evidence, its maps put
  their relevance on the evidence (:mod:`sanitylib.experiments.ground_truth`);
- *faithfulness*: deleting its most relevant pixels first lowers the class faster than a random
  order.

Each reading is "passes", "fails" or "cannot tell" (an inconclusive claim); a criterion no
chapter made a claim on is not measured (missing in the table). Everything is read from
``results/<chapter>/claims.csv``; a chapter that has not run leaves its column missing, never
guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from sanitylib.experiments.tables import read_result

__all__ = ["CRITERIA", "CRITERION_LABELS", "READINGS", "criterion_readings", "recommend",
           "recommendation_table", "recommendation_text"]

#: The criteria, each with where its claims are, which tests, and the side a sound method's
#: statistic lies on: ``"changes"`` for the sanity checks (the maps become like random ones),
#: ``"agrees"`` for the others (the claim expects what a sound method does). Correctness asks
#: for relevance on the evidence on every planted construction, and for less of it on the patch
#: when the patch carries no label information (the control model).
CRITERIA = {
    "parameter_randomization": ("cascading", ("Cascading randomization",), "changes"),
    "data_randomization": ("data_randomization", ("Data randomization",), "changes"),
    "correctness": ("ground_truth", ("Relevance mass accuracy", "Uninformative-patch control"),
                    "agrees"),
    "faithfulness": ("ground_truth", ("Deletion",), "agrees"),
}
CRITERION_LABELS = {"parameter_randomization": "param. rand.",
                    "data_randomization": "data rand.", "correctness": "correct",
                    "faithfulness": "faithful"}
READINGS = ("passes", "fails", "cannot tell")


def _reading(row: Mapping[str, object], sound: str) -> str:
    if row["verdict"] == "inconclusive":
        return "cannot tell"
    if sound == "agrees":
        return "passes" if row["verdict"] == "agrees" else "fails"
    changed = (row["verdict"] == "agrees") == (row["expected"] == "changes")
    return "passes" if changed else "fails"


def _combine(readings: Sequence[str]) -> str:
    """Several claims behind one cell (both planted constructions): fails if any fails, passes
    if all pass, else cannot tell."""
    if "fails" in readings:
        return "fails"
    return "passes" if readings and all(r == "passes" for r in readings) else "cannot tell"


def criterion_readings(model: str, dataset: str, metric: str = "spearman_abs", *,
                       root: Path | None = None) -> pd.DataFrame:
    """Per method and criterion of :data:`CRITERIA` for ``model`` (its sanity and faithfulness
    claims on ``dataset``; its correctness claims on any planted dataset): the reading, the
    claims behind it and their smallest n. The sanity checks read ``metric``; faithfulness and
    correctness their own statistic. Columns model, method, criterion, reading, n, claims."""
    rows = []
    for criterion, (folder, tests, sound) in CRITERIA.items():
        claims = read_result(f"{folder}/claims", root)
        if claims is None:
            continue
        part = claims[claims.test.isin(tests) & (claims.model == model)]
        if criterion == "correctness":
            part = part[part.dataset != dataset]
        else:
            part = part[part.dataset == dataset]
        if criterion in ("parameter_randomization", "data_randomization"):
            part = part[part.metric == metric]
        for method, group in part.groupby("method", sort=False):
            readings = [_reading(r, sound) for r in group.to_dict("records")]
            rows.append({"model": model, "method": method, "criterion": criterion,
                         "reading": _combine(readings), "n": int(group["n_images"].min()),
                         "claims": " | ".join(group["claim"])})
    return pd.DataFrame(rows, columns=["model", "method", "criterion", "reading", "n", "claims"])


def recommend(readings: Mapping[str, str]) -> str:
    """The recommendation from one method's readings: "yes" when every criterion passes, "no"
    when one fails, else "cannot tell"."""
    values = [readings.get(c, "not measured") for c in CRITERIA]
    if "fails" in values:
        return "no"
    return "yes" if all(v == "passes" for v in values) else "cannot tell"


def recommendation_table(readings: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """One row per method: the reading of each criterion (missing where not measured) and
    :func:`recommend`'s answer in the column ``recommended``."""
    table = pd.DataFrame(index=list(methods), columns=[*CRITERIA, "recommended"], dtype=object)
    for method in methods:
        mine = readings[readings.method == method].set_index("criterion")["reading"].to_dict()
        for criterion in CRITERIA:
            table.loc[method, criterion] = mine.get(criterion)
        table.loc[method, "recommended"] = recommend(mine)
    return table.rename_axis("method")


def _why(row: pd.Series) -> str:
    """What stops one method: the criteria it fails, else those that cannot tell or were not
    measured."""
    failed = [CRITERION_LABELS[c] for c in CRITERIA if row[c] == "fails"]
    if failed:
        return "fail " + ", ".join(failed)
    unknown = [CRITERION_LABELS[c] for c in CRITERIA if row[c] == "cannot tell"]
    missing = [CRITERION_LABELS[c] for c in CRITERIA if pd.isna(row[c])]
    return "; ".join(part for part in (unknown and "cannot tell on " + ", ".join(unknown),
                                       missing and ", ".join(missing) + " not measured") if part)


def recommendation_text(table: pd.DataFrame, network: str, labels: Mapping[str, str]) -> str:
    """The recommendation in words, computed from :func:`recommendation_table`: which methods
    pass all three kinds of test on ``network``, or that none does; the others grouped by what
    stops them."""
    name = lambda ms: ", ".join(labels.get(m, m) for m in ms)
    passing = [m for m in table.index if table.loc[m, "recommended"] == "yes"]
    groups: dict[str, list[str]] = {}
    for method, row in table.iterrows():
        if method not in passing:
            groups.setdefault(_why(row), []).append(method)
    head = (f"On the {network}, {name(passing)} pass every test of the table" if passing else
            f"On the {network}, no method passes every test of the table")
    rest = "; ".join(f"{name(ms)}: {why}" for why, ms in groups.items())
    return head + (f". The others: {rest}." if passing and rest else f": {rest}." if rest else ".")
