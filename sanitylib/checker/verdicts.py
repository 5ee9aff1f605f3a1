"""What the check's verdicts mean: the decision rule applied to its table, and the words of the
report (one line per verdict, one answer per method)."""

from __future__ import annotations

import pandas as pd

from sanitylib.experiments.claims import similarity_reading

__all__ = ["ANSWERS", "PRIMARY_METRIC", "VERDICT_MEANING", "read_verdicts"]

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
#: The one-line answer per verdict.
ANSWERS = {
    "like random maps": "passes: once the test has changed the model, its maps are no more like "
                        "the trained model's than random maps, so they depend on what changed",
    "still similar": "fails: its maps stay similar to the trained model's after the change, so "
                     "they do not show what the model learned",
    "inconclusive": "cannot tell from {n} inputs: give more inputs (--max-inputs) or seeds",
}


def read_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The book's decision rule (:func:`sanitylib.experiments.claims.similarity_reading`) on a
    table of final similarities against the random band: ``verdict`` (one of
    :data:`~sanitylib.experiments.claims.READINGS`), the ``boundary`` and the ``reason``."""
    readings = [similarity_reading(r["low"], r["high"], int(r["n"]), r["random_mean"],
                                   r["random_high"], metric=r["metric"])
                for r in verdicts.to_dict("records")]
    return verdicts.assign(verdict=[r[0] for r in readings], boundary=[r[1] for r in readings],
                           reason=[r[2] for r in readings])
