"""The book's results files, declared once: every table a chapter writes under ``results/``.

Each :class:`ResultTable` names its folder, its file, the chapter (notebook) that writes it and
the columns it must hold. Chapters write through :func:`write_result` and read another chapter's
numbers through :func:`read_result`, both by the table's key ``"folder/name"``; a folder belongs to
one chapter, so no chapter writes into another's (``tests/test_tables.py`` reads the notebooks to
hold them to it). A profile may add columns after the declared ones (say, a label of its own),
never drop one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sanitylib.infra.results import results_dir

__all__ = ["CLAIM_COLUMNS", "TABLES", "ResultTable", "read_result", "result_tables",
           "write_result"]

#: The columns of every chapter's claims table (:mod:`sanitylib.experiments.claims`).
CLAIM_COLUMNS = ("claim", "source", "chapter", "test", "model", "dataset", "method", "metric",
                 "setting", "statistic", "n_images", "n_seeds", "estimate", "low", "high",
                 "floor", "floor_high", "ceiling", "boundary", "expected", "verdict", "reason")


@dataclass(frozen=True)
class ResultTable:
    """One tidy CSV file under ``results/``: ``<folder>/<name>.csv``, written by ``chapter``, with
    at least ``columns`` (first, in this order; a profile may add more after them)."""

    folder: str
    name: str
    chapter: str
    columns: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.folder}/{self.name}"

    def path(self, root: Path | None = None) -> Path:
        """Where the table lies under ``root`` (default: the results folder)."""
        return (Path(root) if root is not None else results_dir()) / self.folder / f"{self.name}.csv"


def _declare(tables: Iterable[ResultTable]) -> dict[str, ResultTable]:
    declared: dict[str, ResultTable] = {}
    owners: dict[str, str] = {}
    for table in tables:
        if table.key in declared:
            raise ValueError(f"results table {table.key} is declared twice")
        if owners.setdefault(table.folder, table.chapter) != table.chapter:
            raise ValueError(f"results folder {table.folder} is declared by two chapters: "
                             f"{owners[table.folder]} and {table.chapter}")
        declared[table.key] = table
    return declared


def _chapter(chapter: str, folder: str, **tables: Sequence[str]) -> list[ResultTable]:
    return [ResultTable(folder, name, chapter, tuple(columns)) for name, columns in tables.items()]


def _table(key: str) -> ResultTable:
    if key not in TABLES:
        raise ValueError(f"unknown results table {key!r}; declared: {', '.join(TABLES)}")
    return TABLES[key]


def result_tables(chapter: str | None = None) -> list[ResultTable]:
    """The declared tables, or those ``chapter`` writes."""
    return [t for t in TABLES.values() if chapter is None or t.chapter == chapter]


def write_result(table: pd.DataFrame, key: str) -> None:
    """Write ``table`` as the declared results table ``key`` (``"folder/name"``): its declared
    columns first, one header row, no index (``table.pipe(write_result, key)`` in a chapter).
    ValueError naming the columns it lacks."""
    spec = _table(key)
    missing = [c for c in spec.columns if c not in table.columns]
    if missing:
        raise ValueError(f"results table {key} lacks its declared column(s) {missing}; it has "
                         f"{list(table.columns)}")
    ordered = [*spec.columns, *(c for c in table.columns if c not in spec.columns)]
    path = spec.path()
    path.parent.mkdir(parents=True, exist_ok=True)
    table[ordered].to_csv(path, index=False)


def read_result(key: str, root: Path | None = None, **options: object) -> pd.DataFrame | None:
    """The results table ``key`` as written under ``root`` (default: the results folder), or
    None when its chapter has not run; ``options`` go to :func:`pandas.read_csv`."""
    path = _table(key).path(root)
    return pd.read_csv(path, **options) if path.exists() else None  # type: ignore[arg-type]


#: Columns shared by several tables: a randomization run's scores, a training run's record, the
#: band of two unrelated random maps, an interval over per-image means, a perturbation ceiling,
#: the scores of two models' maps.
INTERVAL = ("mean", "low", "high", "n", "n_seeds", "n_scores", "n_undefined")
RUN_SCORES = ("model", "dataset", "method", "order", "init", "batchnorm", "target", "block",
              "step", "metric", "seed", "image", "value")
TRAINING = ("architecture", "dataset", "labels", "label_noise", "train_size", "epochs",
            "batch_size", "lr", "seed", "stop_at_train_accuracy", "source", "train_accuracy",
            "test_accuracy", "epochs_run", "train_seconds", "paper_train_accuracy",
            "paper_test_accuracy")
RANDOM_BAND = ("metric", "mean", "low", "high", "n")
STEP_SUMMARY = ("model", "dataset", "method", "metric", "block", "step", *INTERVAL)
CEILING = ("method", "metric", "mean", "low", "high", "n", "n_undefined", "model", "dataset")
PAIR_SCORES = ("model", "dataset", "label_noise", "seed", "method", "metric", "image", "value")

#: Every results table of the book, by key ``"folder/name"``: the columns each must hold.
TABLES: dict[str, ResultTable] = _declare([
    *_chapter("01_models", "models",
              accuracy=TRAINING,
              claims=CLAIM_COLUMNS),
    *_chapter("02_cascading", "cascading",
              scores=RUN_SCORES,
              baseline=(*RANDOM_BAND, "model", "dataset"),
              summary=STEP_SUMMARY,
              verdict=("model", "dataset", "order", "method", "metric", "mean", "low", "high",
                       "n", "n_seeds", "n_scores", "n_undefined", "random_mean", "random_low",
                       "random_high", "random_n", "verdict", "paper", "ceiling", "position",
                       "on the scale"),
              imagenet_top_classes=("network", "photograph", "rank", "class", "probability"),
              ceiling=CEILING,
              claims=CLAIM_COLUMNS),
    *_chapter("03_independent", "independent",
              scores=RUN_SCORES,
              baseline=(*RANDOM_BAND, "model", "dataset"),
              summary=STEP_SUMMARY,
              variants=RUN_SCORES,
              verdict_by_init=("model", "dataset", "order", "method", "metric", "mean", "low",
                               "high", "n", "n_seeds", "n_scores", "n_undefined", "random_mean",
                               "random_low", "random_high", "random_n", "verdict", "paper",
                               "ceiling", "position", "on the scale", "init"),
              claims=CLAIM_COLUMNS),
    *_chapter("04_data_randomization", "data_randomization",
              scores=PAIR_SCORES,
              accuracy=TRAINING,
              predictions=("model", "dataset", "label_noise", "seed", "image", "true_model_class",
                           "permuted_model_class"),
              baseline=RANDOM_BAND,
              summary=("model", "dataset", "method", "metric", "mean", "low", "high", "n",
                       "n_seeds", "n_scores", "n_undefined"),
              verdict=("model", "dataset", "method", "metric", "mean", "low", "high", "n",
                       "n_seeds", "n_scores", "n_undefined", "random_mean", "random_low",
                       "random_high", "random_n", "verdict", "paper", "ceiling", "position",
                       "on the scale"),
              seed_ceiling=CEILING,
              noise_scores=PAIR_SCORES,
              noise_accuracy=TRAINING,
              noise_summary=("model", "dataset", "label_noise", "method", "metric", "mean", "low",
                             "high", "n", "n_seeds", "n_scores", "n_undefined"),
              noise_drop_shares=("method", "start", "at", "end", "start_low", "start_high",
                                 "end_low", "end_high", "drop", "share", "n", "n_seeds"),
              claims=CLAIM_COLUMNS),
    *_chapter("05_edge_detectors", "edges",
              detectors=("inputs", "max |conv - 4√2 skimage| / max skimage",
                         "share of pixels on a Canny edge"),
              scores=("model", "dataset", "variant", "method", "detector", "metric", "image",
                      "value"),
              summary=("model", "dataset", "variant", "method", "detector", "metric", "mean",
                       "low", "high", "n", "n_seeds", "n_scores", "n_undefined"),
              ranking_trained=("method", "detector", "metric", "mean"),
              training_effect=("model", "dataset", "method", "detector", "metric", "mean", "low",
                               "high", "n", "n_seeds", "n_scores", "n_undefined", "comparison"),
              photographs_scores=("model", "method", "detector", "metric", "image", "value"),
              photographs_summary=("model", "method", "detector", "metric", "mean", "low", "high",
                                   "n", "n_seeds", "n_scores", "n_undefined"),
              photographs_training_effect=("model", "dataset", "method", "detector", "metric",
                                           "mean", "low", "high", "n", "n_seeds", "n_scores",
                                           "n_undefined"),
              claims=CLAIM_COLUMNS),
    *_chapter("06_theory", "theory",
              linear=("data", "seed", "noise", "map", "metric", "image", "value",
                      "max_deviation_from_w"),
              linear_summary=("data", "map", "metric", "mean", "low", "high", "n", "n_seeds",
                              "n_scores", "n_undefined"),
              one_layer_conv=("data", "net", "seed", "method", "detector", "metric", "image",
                              "value"),
              one_layer_conv_summary=("data", "net", "method", "detector", "metric", "mean",
                                      "low", "high", "n", "n_seeds", "n_scores", "n_undefined"),
              input_dominance=("data", "noise", "map", "metric", "image", "value"),
              input_dominance_summary=("data", "map", "metric", "noise", "mean", "low", "high",
                                       "n", "n_seeds", "n_scores", "n_undefined"),
              claims=CLAIM_COLUMNS),
    *_chapter("07_input_multiplier", "input_multiplier",
              similarity_scores=RUN_SCORES,
              baseline=RANDOM_BAND,
              similarity_summary=("method", "metric", "block", "step", *INTERVAL),
              local_global_gap=("local", "global", "metric", "local_mean", "local_low",
                                "local_high", "global_mean", "global_low", "global_high", "gap"),
              quality_scores=("network", "method", "block", "step", "metric", "seed", "image",
                              "value"),
              quality_summary=("method", "metric", "block", "step", *INTERVAL),
              claims=CLAIM_COLUMNS),
    *_chapter("07_input_multiplier", "smoothness",
              accuracy=("network", "test_accuracy", "train_accuracy", "seconds"),
              function_along_dimensions=("model", "dimension", "offset", "output", "slope",
                                         "state"),
              slope_jumps=("model", "jump", "state"),
              quality_scores=("network", "method", "block", "step", "metric", "seed", "image",
                              "value", "state"),
              quality_summary=("network", "state", "metric", "method", "mean", "low", "high", "n",
                               "n_seeds", "n_scores", "n_undefined"),
              quality_ratio=("state", "metric", "method", "smoothed / original")),
    *_chapter("08_text", "text",
              accuracy=("encoder", "pooling", "labels", "train_size", "epochs", "batch_size",
                        "lr", "head_lr", "trainable_layers", "max_length", "seed",
                        "stop_at_train_accuracy", "dev_size", "source", "train_accuracy",
                        "dev_accuracy", "epochs_run", "train_seconds", "reference_model",
                        "reference_dev_accuracy"),
              randomization_scores=("seed", "step", "block", "granularity", "method", "metric",
                                    "sentence", "value"),
              baseline=RANDOM_BAND,
              randomization_per_trial=("seed", "step", "block", "granularity", "method", "metric",
                                       "value"),
              median_cosine_by_block=("granularity", "method", "block", "median"),
              median_after_full_randomization=("granularity", "method", "metric", "median"),
              ceiling=("method", "metric", "mean", "low", "high", "n", "n_undefined"),
              scaled=("step", "block", "method", "metric", "value", "statistic", "floor",
                      "ceiling", "position", "verdict"),
              quality=("step", "block", "method", "sentence", "infidelity", "max_sensitivity"),
              data_randomization_scores=("granularity", "method", "metric", "sentence", "value"),
              data_randomization_summary=("granularity", "method", "metric", "mean"),
              data_randomization_quality=("method", "sentence", "infidelity", "max_sensitivity"),
              claims=CLAIM_COLUMNS),
    *_chapter("09_findings", "findings",
              claims=CLAIM_COLUMNS),
    *_chapter("11_after_the_paper", "followups",
              scores=("model", "dataset", "test", "method", "block", "step", "metric", "image",
                      "seed", "value", "bins", "h_original", "h_randomized", "target", "other",
                      "note"),
              summary=("model", "dataset", "test", "method", "metric", "mean", "low", "high", "n",
                       "n_seeds", "n_scores", "n_undefined"),
              floor=("metric", "mean", "low", "high", "n", "model"),
              ceiling=("method", "metric", "mean", "low", "high", "n", "n_undefined", "model"),
              scaled=("model", "dataset", "test", "method", "metric", "mean", "low", "high", "n",
                      "n_seeds", "n_scores", "n_undefined", "floor", "ceiling", "position",
                      "verdict", "sanity"),
              recommendation=("method", "test", "value"),
              claims=CLAIM_COLUMNS),
    *_chapter("12_protocols", "architectures",
              summary=("protocol", "order", "method", "metric", "step", "block", "mean", "low",
                       "high", "n", "n_seeds", "n_scores", "n_undefined", "architecture"),
              accuracy=("architecture", "dataset", "labels", "label_noise", "train_size",
                        "epochs", "batch_size", "lr", "seed", "stop_at_train_accuracy", "source",
                        "train_accuracy", "test_accuracy", "epochs_run", "train_seconds",
                        "paper_train_accuracy", "paper_test_accuracy", "parameters"),
              scores=("architecture", "dataset", "protocol", "method", "order", "block", "step",
                      "seed", "image", "metric", "value"),
              census=("architecture", "dataset", "protocol", "order", "batchnorm", "seed", "step",
                      "block", "image", "share_zero", "share_upper", "logit_std",
                      "logit_std_relative", "rectifier_values"),
              baseline=(*RANDOM_BAND, "model", "dataset"),
              ceiling=("method", "metric", "mean", "low", "high", "n", "n_undefined", "model",
                       "dataset", "protocol"),
              claims=CLAIM_COLUMNS),
    *_chapter("13_ground_truth", "ground_truth",
              accuracy=("model", "dataset", "train_accuracy", "test_accuracy", "low", "high",
                        "n_test", "chance", "epochs_run"),
              scores=("model", "dataset", "method", "metric", "image", "value", "chance",
                      "scaled"),
              summary=("model", "dataset", "method", "metric", "mean", "low", "high", "n",
                       "n_seeds", "n_scores", "n_undefined", "raw_mean", "chance"),
              deletion_curves=("model", "dataset", "method", "fraction", "image", "value"),
              deletion_gains=("model", "dataset", "method", "metric", "image", "value"),
              recommendation=("model", "method", "criterion", "reading", "n", "claims"),
              claims=CLAIM_COLUMNS),
])
