"""What the check's verdicts mean: the decision rule applied to its table, and the words of the
report (one line per verdict, one answer per method)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from sanitylib.experiments.claims import similarity_reading

__all__ = ["PRIMARY_METRIC", "VERDICT_MEANING", "answer", "change_words", "number_text",
           "read_verdicts"]

#: What each verdict means, for the report.
VERDICT_MEANING = {
    "like random maps": "after the last step the 95 % interval of the mean similarity (over the "
                        "inputs, seeds averaged within each input) lies wholly on the random side "
                        "of the boundary: the maps are no more similar to the trained model's "
                        "than two unrelated random maps, so the method is sensitive to the "
                        "weights randomized (the test is passed)",
    "still similar": "after the last step the interval lies wholly above the boundary: the maps "
                     "remain recognisably similar to the trained model's and do not depend on "
                     "what was randomized (the test is failed)",
    "inconclusive": "the interval contains the boundary, or fewer than 3 inputs stand behind "
                    "it: this run cannot tell; give more inputs",
}

#: The metric of the one-line answers (the paper's main metric).
PRIMARY_METRIC = "spearman_abs"
def number_text(value: float | None) -> str:
    """``value`` with two decimals as the report shows it: "—" when undefined, never "-0.00"."""
    if value is None or math.isnan(value):
        return "—"
    return f"{value + 0.0:.2f}" if round(value, 2) != 0 else "0.00"


def change_words(test: str, last_step: str) -> str:
    """What ``test`` changed by its last step, in words."""
    if test == "data randomization":
        return "in the second model (--compare-with)"
    if test.endswith("independent"):
        return f"with block {last_step} alone re-initialized (the last step)"
    return "with every block re-initialized (the last step)"


def answer(row: Mapping[str, object], change: str) -> str:
    """One sentence: what a method's verdict on the primary metric means, with its numbers
    (``row``: verdict, mean, low, high, n, boundary) and, when the run cannot tell, what to add."""
    mean, boundary, n = float(row["mean"]), float(row["boundary"]), int(row["n"])
    if row["verdict"] == "like random maps":
        return (f"Passes: {change} its maps are no more like the trained model's "
                f"({number_text(mean)}) than two unrelated random maps (boundary "
                f"{number_text(boundary)}), so they depend on what was changed.")
    if row["verdict"] == "still similar":
        return (f"Fails: {change} its maps stay similar to the trained model's "
                f"({number_text(mean)}, beyond the random maps' boundary {number_text(boundary)}), so "
                "they do not show what the changed weights had learned.")
    if n < 3:
        return (f"Cannot tell from {n} input{'s' * (n != 1)}: at least 3 are needed; give more "
                "inputs (--max-inputs).")
    if math.isnan(mean):
        return "Cannot tell: no defined similarity (constant maps); try other inputs."
    return (f"Cannot tell: the interval [{number_text(float(row['low']))}, "
            f"{number_text(float(row['high']))}] contains the boundary {number_text(boundary)} of the "
            "random maps; give more inputs (--max-inputs) or seeds (--seeds).")


def read_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The book's decision rule (:func:`sanitylib.experiments.claims.similarity_reading`) on a
    table of final similarities against the random band: ``verdict`` (one of
    :data:`~sanitylib.experiments.claims.READINGS`), the ``boundary`` and the ``reason``."""
    readings = [similarity_reading(r["low"], r["high"], int(r["n"]), r["random_mean"],
                                   r["random_high"], metric=r["metric"])
                for r in verdicts.to_dict("records")]
    return verdicts.assign(verdict=[r[0] for r in readings], boundary=[r[1] for r in readings],
                           reason=[r[2] for r in readings])
