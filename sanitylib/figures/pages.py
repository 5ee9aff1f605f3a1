"""How a chapter shows its results on the page: numbered figures with captions, and tables a
reader takes in at a glance.

- :func:`show` displays a figure with its caption and its name attached to the output;
  ``scripts/run_notebooks.py`` makes each such output a numbered MyST figure (myst-nb's
  ``figure`` cell metadata), so the prose can cite it as {numref}`name`. Before that it checks
  the figure as the page shows it: no wider than the text column (:data:`PAGE_WIDTH`), no text
  under :data:`MIN_FONT_SIZE` points.
- :func:`readable` displays a table with at most :data:`MAX_COLUMNS` columns (index included),
  human labels for methods, metrics, models, datasets and networks, two decimals, whole numbers
  as integers and undefined values as "—". Wider data stays in the chapter's CSV.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.text import Text
from pandas.io.formats.style import Styler

from sanitylib.experiments.claims import DATASET_LABELS, MODEL_LABELS
from sanitylib.experiments.imagenet import NETWORK_LABELS
from sanitylib.figures.style import MIN_FONT_SIZE, PAGE_WIDTH
from sanitylib.methods.edges import DETECTOR_LABELS
from sanitylib.methods.registry import LABELS
from sanitylib.methods.similarity import METRIC_LABELS

__all__ = ["FIGURE_METADATA", "MAX_COLUMNS", "check_readable", "label", "readable", "show"]

#: The key of a displayed figure's output metadata that holds its caption and name.
FIGURE_METADATA = "sanitylib_figure"
#: The widest table a page shows; the rest of the data stays in the CSV.
MAX_COLUMNS = 6
#: Names of columns that are not self-explanatory once their underscores become spaces.
COLUMN_LABELS = {"train_size": "training images", "epochs_run": "epochs", "lr": "learning rate",
                 "n_images": "images", "n_seeds": "seeds", "n_scores": "scores",
                 "n_undefined": "undefined", "arch": "model", "architecture": "model"}
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def check_readable(fig: Figure) -> None:
    """Refuse a figure the page would shrink (wider than :data:`PAGE_WIDTH` inches) or whose text
    is smaller than :data:`MIN_FONT_SIZE` points."""
    width = float(fig.get_size_inches()[0])
    if width > PAGE_WIDTH + 1e-6:
        raise ValueError(f"the figure is {width:.2f} in wide; the text column shows at most "
                         f"{PAGE_WIDTH} in at full size (sanitylib.figures.style.page_size)")
    # the texts as made (no draw: rendering once more per figure would cost the book minutes);
    # tick labels that only a draw creates take rcParams' sizes, which use_book_style sets
    small = sorted({f"{t.get_text()!r} at {t.get_fontsize():.1f} pt"
                    for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
                    and t.get_fontsize() < MIN_FONT_SIZE - 1e-6})
    if small:
        raise ValueError(f"text under {MIN_FONT_SIZE} pt: {', '.join(small[:5])}"
                         + (f" and {len(small) - 5} more" if len(small) > 5 else ""))


def show(fig: Figure, caption: str, name: str) -> None:
    """Display ``fig`` as the book's numbered figure ``name`` (lower case words joined by "-",
    unique in the book) with ``caption`` (MyST): what it shows and what to look for."""
    from IPython.display import display

    if not _NAME.match(name):
        raise ValueError(f"figure name {name!r}: use lower-case words joined by '-'")
    if not caption.strip():
        raise ValueError(f"figure {name!r} needs a caption")
    check_readable(fig)
    display(fig, metadata={FIGURE_METADATA: {"caption": caption, "name": name}})
    plt.close(fig)


def label(value: object, labels: Mapping[str, str] | None = None) -> object:
    """The reader's name of a method, metric, model, dataset, network or detector (``labels``
    first); another identifier with its underscores as spaces; anything else as it is."""
    if not isinstance(value, str):
        return value
    for names in (labels or {}, LABELS, METRIC_LABELS, NETWORK_LABELS, MODEL_LABELS,
                  DATASET_LABELS, DETECTOR_LABELS, COLUMN_LABELS):
        if value in names:
            return names[value]
    return value.replace("_", " ") if _IDENTIFIER.match(value) else value


def _whole(column: pd.Series) -> bool:
    """A float column of counts: whole numbers, some of them at least 2."""
    values = column.dropna().to_numpy(dtype=float)
    return bool(len(values)) and bool(np.all(values == np.round(values))) \
        and float(np.abs(values).max()) >= 2


def _number(value: object, whole: bool, labels: Mapping[str, str] | None = None) -> str:
    if value is None or (isinstance(value, (float, np.floating)) and not np.isfinite(value)):
        return "—" if value is None or np.isnan(value) else ("∞" if value > 0 else "−∞")
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)) or whole:
        return f"{int(value):,}".replace("-", "−")
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if 0 < abs(v) < 0.005:
            mantissa, exponent = f"{v:.1e}".split("e")
            return f"{mantissa}×10{str(int(exponent)).translate(_SUPERSCRIPT)}".replace("-", "−")
        return f"{v:,.2f}".replace("-", "−")
    return "—" if pd.isna(value) else str(label(value, labels))


def readable(table: pd.DataFrame, labels: Mapping[str, str] | None = None,
             integers: Iterable[str] = ()) -> Styler:
    """``table`` for reading: at most :data:`MAX_COLUMNS` columns (a named index counts), labels
    for identifiers in the header, the index and the cells (``labels`` first), two decimals
    (two significant digits, as 6.9×10⁻⁴, under 0.005), integers for counts (``integers`` or whole-number
    columns) and "—" for undefined values. Refuses a wider table, naming its columns."""
    shown = table.shape[1] + (0 if isinstance(table.index, pd.RangeIndex) else table.index.nlevels)
    if shown > MAX_COLUMNS:
        raise ValueError(f"a table on the page has at most {MAX_COLUMNS} columns (index "
                         f"included); this one has {shown}: {list(table.columns)}. Show fewer "
                         "and leave the rest in the chapter's CSV")
    whole = {c for c in table.columns if c in set(integers)
             or (pd.api.types.is_float_dtype(table[c]) and _whole(table[c]))}
    renamed = table.rename(index=lambda v: label(v, labels), columns=lambda v: label(v, labels))
    renamed.columns.names = [label(n, labels) for n in renamed.columns.names]
    renamed.index.names = [label(n, labels) for n in renamed.index.names]
    styler = renamed.style
    for original, shown_as in zip(table.columns, renamed.columns):
        styler = styler.format(lambda v, w=original in whole: _number(v, w, labels),
                               subset=[shown_as])
    if isinstance(table.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    return styler
