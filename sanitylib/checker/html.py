"""The report of :func:`sanitylib.check`: one self-contained HTML page, a tidy CSV, a JSON file.

The page embeds its figures as PNG data and needs no network: the mask grid of the first input
(the layout of Adebayo et al. 2018, Fig. 2), the similarity curves with the band of two
unrelated random maps, and the verdict table with what each verdict means.
"""

from __future__ import annotations

import base64
import html
import io
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from sanitylib.checker.verdicts import VERDICT_MEANING
from sanitylib.figures.plotting import METRIC_LABELS, mask_grid, similarity_curves
from sanitylib.methods.registry import LABELS

__all__ = ["render", "write_report"]

_STYLE = """
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: right; }
td.text { text-align: left; }
th { background: #eee; }
td.passed { background: #e3f4e3; } td.failed { background: #fbe3e3; }
td.inconclusive { background: #eeeeee; }
p.warning { background: #fbe3e3; border: 2px solid #c0392b; padding: 0.6em; font-weight: bold; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figures(report) -> list[tuple[str, str]]:
    figures = []
    if report.maps and report.image is not None:
        ends = [report.steps[0], report.steps[1], report.steps[-1]] \
            if len(report.steps) > 2 else list(report.steps)
        fig = mask_grid(report.maps, ends, report.methods, report.image, labels=LABELS)
        fig.set_size_inches(fig.get_size_inches() * 1.8)  # few columns: draw them large
        caption = ("The first input: its map under the trained model, after the first "
                   "randomization step and after the last (absolute maps, one row per method)")
        figures.append((caption, _png(fig)))
        for mode in ("absolute", "signed"):
            fig = mask_grid(report.maps, report.steps, report.methods, report.image, mode=mode,
                            labels=LABELS)
            caption = (f"Every step, {mode} maps, first input: the trained model's map, then "
                       "each randomization step")
            figures.append((caption, _png(fig)))
    if report.summary is not None:
        rows = report.summary[report.summary.test.str.startswith("parameters")]
        fig = similarity_curves(rows, report.baseline, list(report.baseline.metric),
                                report.methods, report.steps, LABELS, METRIC_LABELS)
        caption = ("Similarity to the trained model's maps (mean and 95 % interval over inputs "
                   "and seeds); grey: two unrelated random maps")
        figures.append((caption, _png(fig)))
    return figures


def _answers(report) -> str:
    """One row per test and method: its verdict on the primary metric, n, what it means."""
    rows = []
    classes = {"like random maps": "passed", "still similar": "failed"}
    for a in report.answers():
        evidence = f"{a['n']} inputs" + (f" × {a['n_seeds']} seeds" if a["n_seeds"] > 1 else "")
        rows.append(
            f"<tr><td>{html.escape(a['test'])}</td>"
            f"<td><b>{html.escape(LABELS.get(a['method'], a['method']))}</b></td>"
            f"<td class='{classes.get(a['verdict'], 'inconclusive')}'>"
            f"{html.escape(a['verdict'])}</td>"
            f"<td>{a['mean']:.2f} [{a['low']:.2f}, {a['high']:.2f}]</td><td>{evidence}</td>"
            f"<td class='text'>{html.escape(a['answer'])}</td></tr>")
    metric = METRIC_LABELS.get(report.answers()[0]["metric"], "") if rows else ""
    return (f"<p>One answer per method, on the {html.escape(metric)} after the last step "
            "(mean and 95 % interval over the inputs):</p><table><tr><th>test</th>"
            "<th>method</th><th>verdict</th><th>similarity</th><th>n</th><th>what it means</th>"
            f"</tr>{''.join(rows)}</table>")


def _verdict_table(report) -> str:
    head = ("<tr><th>test</th><th>method</th><th>metric</th><th>similarity</th>"
            "<th>95 % interval</th><th>n</th><th>random band</th><th>verdict</th><th>paper</th>"
            "</tr>")
    rows = []
    classes = {"like random maps": "passed", "still similar": "failed"}
    for r in report.verdicts.itertuples():
        evidence = f"{r.n} inputs" + (f" × {r.n_seeds} seeds" if r.n_seeds > 1 else "")
        rows.append(
            f"<tr><td>{html.escape(r.test)}</td><td>{html.escape(LABELS.get(r.method, r.method))}"
            f"</td><td>{html.escape(METRIC_LABELS.get(r.metric, r.metric))}</td>"
            f"<td>{r.mean:.2f}</td><td>[{r.low:.2f}, {r.high:.2f}]</td><td>{evidence}</td>"
            f"<td>[{r.random_low:.2f}, {r.random_high:.2f}]</td>"
            f"<td class='{classes.get(r.verdict, 'inconclusive')}' title='{html.escape(r.reason)}'>"
            f"{html.escape(r.verdict)}</td>"
            f"<td>{html.escape(str(r.paper))}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _weights_warning(report) -> str:
    """A warning at the top of a report about a network that was never trained."""
    weights = str(report.settings.get("weights", ""))
    if not weights.startswith("random"):
        return ""
    return ("<p class='warning'>This report is about a network with random weights that was "
            "never trained (asked for with --random-weights). Its verdicts say nothing about a "
            "trained model of this architecture.</p>")


def render(report) -> str:
    """The report as one HTML page."""
    settings = "".join(f"<li><code>{html.escape(k)}</code>: {html.escape(str(v))}</li>"
                       for k, v in report.settings.items())
    refused = "".join(f"<li><b>{html.escape(LABELS.get(m, m))}</b>: {html.escape(why)}</li>"
                      for m, why in report.refused.items())
    figures = "".join(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,"
                      f"{data}'><figcaption>{html.escape(caption)}</figcaption></figure>"
                      for caption, data in _figures(report))
    meanings = "".join(f"<li><b>{html.escape(v)}</b>: {html.escape(m)}</li>"
                       for v, m in VERDICT_MEANING.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Sanity checks: {html.escape(report.model)}</title><style>{_STYLE}</style></head>
<body>
<h1>Sanity checks for saliency maps: {html.escape(report.model)}</h1>
{_weights_warning(report)}<p>The model parameter randomization test of Adebayo et al. (2018), "Sanity Checks for Saliency
Maps" (NeurIPS): the model's blocks are re-initialized one after the other and each method's
maps are compared with those of the trained model. A method that explains the model must change.</p>
<h2>Settings</h2><ul>{settings}</ul>
<p>Blocks, top to bottom ({len(report.blocks)}): {html.escape(', '.join(report.blocks))}.</p>
{f'<h2>Methods that could not run</h2><ul>{refused}</ul>' if refused else ''}
<h2>Answers</h2>{_answers(report)}
<h2>Every metric</h2>{_verdict_table(report)}
<p>How to read them:</p><ul>{meanings}</ul>
<p>"paper" is what Adebayo et al. found for that method on their networks.</p>
<h2>Figures</h2>{figures}
<p>Made by sanitylib; every number is in <code>scores.csv</code> and <code>verdict.json</code>.</p>
</body></html>
"""


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
