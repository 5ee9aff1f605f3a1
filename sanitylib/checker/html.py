"""The report of :func:`sanitylib.check`: one self-contained HTML page, a tidy CSV, a JSON file.

The page answers first and details after:

- **Answers**: one row per method (per test, when ``compare_with`` adds the data randomization
  test) with one verdict, the book's decision rule on the primary metric (the paper's Spearman
  rank correlation of absolute maps, where it was computed), the number of inputs behind it, the
  similarity with its 95 % interval and one sentence saying what it means.
- **Details**: every metric's reading (at most six columns), the mask grid of the first input
  with the trained model's maps and the last step's drawn large (one row per method), the
  similarity curves with the band of two unrelated random maps, every step's maps, the settings.

Every figure is embedded as PNG data inside a ``<figure>`` with a ``<figcaption>``, so the page
needs no network. The page's content sits in ``<main class="report">`` and every style rule is
scoped to ``.report``: :func:`embeddable` turns a written page into a fragment that another page
(the book's chapter "Check your own model") shows whole without its own styles being touched.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from sanitylib.checker.verdicts import VERDICT_MEANING, change_words
from sanitylib.checker.verdicts import number_text as _number
from sanitylib.figures.pages import label
from sanitylib.figures.plotting import METRIC_LABELS, mask_grid, similarity_curves
from sanitylib.figures.style import PAGE_WIDTH
from sanitylib.methods.registry import LABELS

__all__ = ["embeddable", "render", "write_report"]

#: Styles of the page itself (only in the standalone page, never in a fragment).
_PAGE_STYLE = "body { margin: 0; padding: 0 1em; background: #fff; }"
#: Styles of the report, every rule scoped to ``.report``.
_STYLE = """
.report { font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222;
  line-height: 1.45; }
.report p, .report li, .report td, .report th, .report figcaption { overflow-wrap: break-word; }
.report table.answers { width: 100%; }
.report table { border-collapse: collapse; font-size: 0.92em; margin: 0.6em 0 1.2em;
  max-width: 100%; }
.report caption { text-align: left; font-weight: bold; padding: 0.3em 0; }
.report td, .report th { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: right;
  vertical-align: top; white-space: normal; }
.report th { background: #eee; text-align: left; }
.report td.text { text-align: left; }
.report td.passed { background: #e3f4e3; } .report td.failed { background: #fbe3e3; }
.report td.inconclusive { background: #eeeeee; }
.report td small, .report th small { color: #555; font-weight: normal; }
.report p.warning { background: #fbe3e3; border: 2px solid #c0392b; padding: 0.6em;
  font-weight: bold; }
.report figure { margin: 1em 0 1.6em; }
.report figure img { display: block; max-width: 100%; height: auto; }
.report figure figcaption { font-size: 0.92em; color: #333; margin-top: 0.4em;
  text-align: left; font-family: sans-serif; font-weight: normal; }
.report code { background: #f4f4f4; padding: 0 0.2em; }
"""

#: A verdict's colour class, its one word, and the words of its first sentence.
_CLASSES = {"like random maps": "passed", "still similar": "failed", "inconclusive": "inconclusive"}
_WORDS = {"like random maps": "passes", "still similar": "fails", "inconclusive": "cannot tell"}
#: Steps per band of the every-step grids: thumbnails of about 0.6 in on the page.
_PER_ROW = 7
#: How the report names the settings of :func:`sanitylib.check`.
_SETTING_LABELS = {"weights": "weights", "order": "order of re-initialization",
                   "init": "re-initialization", "seeds": "randomization seeds",
                   "target": "class explained", "ig_steps": "Integrated Gradients steps",
                   "samples": "samples per map (SmoothGrad, VarGrad)",
                   "inputs": "inputs (count, channels, height, width)", "device": "device",
                   "compare_with": "data randomization test (--compare-with)"}


def _e(value: object) -> str:
    return html.escape(str(value))


def _interval(mean: float, low: float, high: float) -> str:
    if math.isnan(mean):
        return "—"
    return f"{_number(mean)} <small>[{_number(low)}, {_number(high)}]</small>"


def _fit(fig) -> None:
    """Shrink ``fig`` until its saved image (the tight box around everything drawn, titles and
    labels that reach outside the axes included) is no wider than the page: shown at its own
    size in the book's column, never scaled down."""
    for _ in range(4):
        fig.canvas.draw()
        drawn = fig.get_tightbbox().width + 2 * plt.rcParams["savefig.pad_inches"]
        if drawn <= PAGE_WIDTH:
            return
        width, height = fig.get_size_inches()
        scale = max(0.5, (width - (drawn - PAGE_WIDTH) - 0.02) / width)
        fig.set_size_inches(width * scale, height * scale)


def _png(fig) -> str:
    _fit(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _test_title(test: str) -> str:
    """The reader's name of a test of the check."""
    if test == "data randomization":
        return "Data randomization test (Adebayo et al. 2018, Section 5)"
    order = test.partition(", ")[2].replace("_", "-")
    return f"Model parameter randomization test, {order} (Adebayo et al. 2018, Section 4)"


def _last_column(report) -> str:
    """The title of the grid's last column."""
    if str(report.settings.get("order")) == "independent":
        return f"block {report.steps[-1]} random"
    return "all blocks random"


def _verdict_cell(verdict: str, reason: str = "") -> str:
    title = f" title='{_e(reason)}'" if reason else ""
    return (f"<td class='text {_CLASSES.get(verdict, 'inconclusive')}'{title}>"
            f"<b>{_e(_WORDS.get(verdict, verdict))}</b><br><small>{_e(verdict)}</small></td>")


def _evidence(row: dict) -> str:
    seeds = int(row["n_seeds"])
    return f"{int(row['n'])}" + (f"<br><small>× {seeds} seeds</small>" if seeds > 1 else "")


def _answers(report) -> str:
    """One table per test, one row per method: the verdict on the primary metric, n, the
    similarity and its interval, and what it means (:meth:`CheckReport.answers`)."""
    rows = report.answers()
    tests = list(dict.fromkeys(r["test"] for r in rows))
    metric = METRIC_LABELS.get(rows[0]["metric"], rows[0]["metric"]) if rows else ""
    tables = []
    for test in tests:
        body = "".join(
            f"<tr><td class='text'><b>{_e(LABELS.get(r['method'], r['method']))}</b></td>"
            f"{_verdict_cell(r['verdict'], r['reason'])}<td>{_evidence(r)}</td>"
            f"<td>{_interval(r['mean'], r['low'], r['high'])}</td>"
            f"<td class='text'>{_e(r['answer'])}</td></tr>"
            for r in rows if r["test"] == test)
        caption = f"<caption>{_e(_test_title(test))}</caption>" if len(tests) > 1 else ""
        tables.append(
            f"<table class='answers'>{caption}<tr><th>method</th><th>verdict</th>"
            f"<th>inputs</th><th>{_e(metric)} <small>[95 % interval]</small></th>"
            f"<th>what it means</th></tr>{body}</table>")
    intro = (f"<p>One verdict per method, read on the {_e(metric)} of each method's maps after "
             "the last step with the trained model's (mean over the inputs, 95 % interval over "
             "the inputs, seeds averaged within each input). A method <b>passes</b> when the "
             "whole interval lies on the side of two unrelated random maps, <b>fails</b> when it "
             "lies wholly above them, and the run <b>cannot tell</b> otherwise.</p>")
    return intro + "".join(tables)


def _metric_table(report) -> str:
    """Every metric's reading, one table per test: method (and what the paper found), metric,
    similarity and interval, the random band, the reading."""
    tables = []
    tests = list(dict.fromkeys(report.verdicts["test"]))
    for test in tests:
        part = report.verdicts[report.verdicts.test == test]
        body = []
        for method in dict.fromkeys(part["method"]):
            rows = part[part.method == method].to_dict("records")
            paper = rows[0]["paper"]
            head = (f"<td class='text' rowspan='{len(rows)}'><b>"
                    f"{_e(LABELS.get(method, method))}</b>"
                    + (f"<br><small>paper: {_e(paper)}</small>" if isinstance(paper, str)
                       and paper else "") + "</td>")
            for i, r in enumerate(rows):
                body.append(
                    f"<tr>{head if i == 0 else ''}"
                    f"<td class='text'>{_e(METRIC_LABELS.get(r['metric'], r['metric']))}</td>"
                    f"<td>{_interval(r['mean'], r['low'], r['high'])}</td>"
                    f"<td>[{_number(r['random_low'])}, {_number(r['random_high'])}]</td>"
                    f"{_verdict_cell(r['verdict'], r['reason'])}</tr>")
        tables.append(
            f"<table class='metrics'><caption>{_e(_test_title(test))}</caption>"
            "<tr><th>method</th><th>metric</th><th>similarity <small>[95 % interval]</small>"
            "</th><th>random maps <small>[band]</small></th><th>reading</th></tr>"
            f"{''.join(body)}</table>")
    return "".join(tables)


def _scaled(fig, factor: float):
    """``fig`` drawn ``factor`` times larger, but no wider than the page."""
    width = float(fig.get_size_inches()[0])
    fig.set_size_inches(fig.get_size_inches() * min(factor, PAGE_WIDTH / width))
    return fig


def _grid_figures(report) -> list[tuple[str, str]]:
    """The first input's mask grid: the trained model's maps and the last step's, large, then
    every step."""
    if not report.maps or report.image is None:
        return []
    first, last = report.steps[0], report.steps[-1]
    ends = {"trained model": report.maps[first], _last_column(report): report.maps[last]}
    fig = _scaled(mask_grid(ends, list(ends), report.methods, report.image, labels=LABELS), 1.6)
    caption = ("The first input (left) and each method's map of it (absolute values, one row "
               "per method): under the trained model, then "
               f"{change_words(report.verdicts.test.iloc[0], report.steps[-1])}. A method that passes shows a "
               "different map in the last column; one that fails shows nearly the same map twice.")
    figures = [(caption, _png(fig))]
    for mode in ("absolute", "signed"):
        fig = mask_grid(report.maps, report.steps, report.methods, report.image, mode=mode,
                        labels=LABELS, per_row=_PER_ROW)
        colours = ("grey: 0 to the largest value" if mode == "absolute"
                   else "red positive, blue negative")
        caption = (f"Every step, {mode} maps of the first input ({colours}): the trained "
                   "model's map (original), then each step, titled with the block just "
                   f"re-initialized ({len(report.blocks)} blocks, "
                   f"{report.settings.get('order', '')} order).")
        figures.append((caption, _png(fig)))
    return figures


def _figures(report) -> list[tuple[str, str]]:
    figures = _grid_figures(report)
    if report.summary is not None:
        rows = report.summary[report.summary.test.str.startswith("parameters")]
        metrics = list(report.baseline.metric)
        fig = similarity_curves(rows, report.baseline, metrics, report.methods, report.steps,
                                LABELS, METRIC_LABELS)
        caption = ("Similarity of each method's maps to the trained model's, step by step (mean "
                   "and 95 % interval over the inputs, one panel per metric); grey band: two "
                   "unrelated random maps. A method that passes falls into the grey band by the "
                   "last step.")
        figures.insert(1, (caption, _png(fig)))
    return figures


def _weights_warning(report) -> str:
    """A warning at the top of a report about a network that was never trained."""
    weights = str(report.settings.get("weights", ""))
    if not weights.startswith("random"):
        return ""
    return ("<p class='warning'>This report is about a network with random weights that was "
            "never trained (asked for with --random-weights). Its verdicts say nothing about a "
            "trained model of this architecture.</p>")


#: How the report words the class explained (``target``).
_TARGETS = {"recompute": "each model's own predicted class, recomputed after every step",
            "fixed": "the trained model's predicted class throughout"}


def _setting(value: object, key: str = "") -> str:
    if key == "target":
        return _TARGETS.get(str(value), str(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def render(report) -> str:
    """The report as one HTML page."""
    settings = "".join(f"<li>{_e(_SETTING_LABELS.get(k, k.replace('_', ' ')))}: "
                       f"{_e(_setting(v, k))}</li>" for k, v in report.settings.items())
    refused = "".join(f"<li><b>{_e(LABELS.get(m, m))}</b>: {_e(why)}</li>"
                      for m, why in report.refused.items())
    figures = "".join(f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"
                      f"<figcaption>{_e(caption)}</figcaption></figure>"
                      for caption, data in _figures(report))
    meanings = "".join(f"<li><b>{_e(v)}</b> ({_e(_WORDS[v])}): {_e(m)}</li>"
                       for v, m in VERDICT_MEANING.items())
    answers = report.answers()
    primary = METRIC_LABELS.get(answers[0]["metric"], "") if answers else ""
    name = label(report.model)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sanity checks: {_e(name)}</title><style>{_PAGE_STYLE}</style>
<style id="sanitylib-report-style">{_STYLE}</style></head>
<body><main class="report">
<h1>Sanity checks for saliency maps: {_e(name)}</h1>
{_weights_warning(report)}<p>The model parameter randomization test of Adebayo et al. (2018), "Sanity Checks for Saliency
Maps" (NeurIPS): the model's blocks are re-initialized one after the other and each method's maps
are compared with those of the trained model. A method that explains the model must change.</p>
<h2>Answers</h2>{_answers(report)}
{f'<h2>Methods that could not run</h2><ul>{refused}</ul>' if refused else ''}
<h2>Details</h2>
<h3>Every metric</h3>
<p>The answers above are read on the {_e(primary)}, the paper's measure. The other metrics weigh
other features of a map (signs, local structure, edges) and can read differently; hover over a
reading for its reason.</p>
{_metric_table(report)}
<p>How to read them:</p><ul>{meanings}</ul>
<p>"paper" is what Adebayo et al. found for that method on their networks.</p>
<h3>Figures</h3>{figures}
<h3>Settings</h3><ul>{settings}</ul>
<p>Blocks, top to bottom ({len(report.blocks)}): {_e(', '.join(report.blocks))}.</p>
<p>Made by sanitylib; every number is in <code>scores.csv</code> and <code>verdict.json</code>.</p>
</main></body></html>
"""


_MAIN = re.compile(r'<main class="report">(.*)</main>', re.DOTALL)
_OWN_STYLE = re.compile(r'<style id="sanitylib-report-style">(.*?)</style>', re.DOTALL)
_HEADING = re.compile(r"<(/?)h([1-4])>")


#: The embedded report, between two rules so that a reader sees where it ends (no side
#: borders or padding: its figures keep the column's full width).
_EMBEDDED = (".sanitylib-report > .report { margin: 0.5em 0 2em; padding: 0.2em 0; "
             "border-top: 3px solid #ddd; border-bottom: 3px solid #ddd; }")
#: Opens the report of an embedded fragment on a page of its own (a Blob URL: no file needed).
_OPEN = ("var f=this.closest('.sanitylib-report');"
         "var page='<!DOCTYPE html><html lang=\\'en\\'><head><meta charset=\\'utf-8\\'>"
         "<title>'+f.querySelector('h3').textContent+'</title><style>'+f.querySelector('style').textContent"
         "+'</style></head><body>'+f.querySelector('div.report').outerHTML+'</body></html>';"
         "window.open(window.URL.createObjectURL(new Blob([page],{type:'text/html'})),'_blank');"
         "return false;")


def embeddable(page: str, name: str = "report.html") -> str:
    """A written ``report.html`` as an HTML fragment for another page: a link that opens the
    report on a page of its own (``name`` says which file it is), then its content in a
    ``<div class="report">`` with its own styles (all scoped to ``.report``, so they cannot
    restyle the page around it), headings two levels down (an h1 becomes h3) so that they sit
    under the page's own, figures still embedded as PNG data."""
    main, style = _MAIN.search(page), _OWN_STYLE.search(page)
    if main is None or style is None:
        raise ValueError("not a sanitylib report page (no <main class=\"report\">)")
    body = _HEADING.sub(lambda m: f"<{m.group(1)}h{int(m.group(2)) + 2}>", main.group(1))
    link = (f'<p><a href="#" onclick="{html.escape(_OPEN)}">Open the report on a page of its '
            f"own</a> (as <code>{_e(name)}</code> shows it in a browser).</p>")
    return (f'<div class="sanitylib-report"><style>{style.group(1)}{_EMBEDDED}</style>{link}'
            f'<div class="report">{body}</div></div>')


def write_report(report, folder: Path) -> Path:
    """Write ``report.html``, ``scores.csv`` and ``verdict.json`` into ``folder`` atomically
    (a temporary sibling folder renamed at the end; an existing report is replaced)."""
    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()) and not (folder / "verdict.json").exists():
        raise ValueError(f"{folder} exists and is not a sanitylib report; choose another folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        report.scores.to_csv(staging / "scores.csv", index=False)
        (staging / "verdict.json").write_text(json.dumps(
            {"model": report.model, "settings": report.settings, "blocks": report.blocks,
             "refused": report.refused, "answers": report.answers(),
             "verdicts": report.verdict_records()}, indent=2))
        report.to_html(staging / "report.html")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
