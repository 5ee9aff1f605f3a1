"""Pages a student can read (issue 23): captioned figures, readable tables, the browser audit."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest

from sanitylib.figures.pages import (
    FIGURE_METADATA,
    MAX_COLUMNS,
    check_readable,
    label,
    readable,
    show,
)
from sanitylib.figures.style import PAGE_WIDTH

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _script(name: str):
    sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(styler) -> list[list[str]]:
    html = styler.to_html()
    body = html[html.index("<tbody>"):]
    rows = []
    for row in body.split("<tr>")[1:]:
        rows.append([cell.split(">", 1)[1].split("</td>")[0].strip()
                     for cell in row.split("<td")[1:]])
    return rows


def test_readable_labels_rounds_and_marks_undefined():
    table = pd.DataFrame({"method": ["gradient_x_input", "guided_backprop"],
                          "dataset": ["fashion_mnist", "mnist"],
                          "train_size": [4000.0, 1000.0], "mean": [0.123456, np.nan],
                          "tiny": [0.000694, -0.5], "ok": [True, False]})
    cells = _cells(readable(table))
    assert cells[0] == ["Gradient ⊙ Input", "Fashion-MNIST", "4,000", "0.12", "6.9×10⁻⁴", "yes"]
    assert cells[1] == ["Guided BackProp", "MNIST", "1,000", "—", "−0.50", "no"]
    assert _cells(readable(table, labels={"guided_backprop": "GBP"}))[1][0] == "GBP"
    header = readable(table).to_html()
    assert "training images" in header and "train_size" not in header


def test_readable_refuses_a_table_wider_than_the_page():
    wide = pd.DataFrame({f"c{i}": [1.0] for i in range(MAX_COLUMNS + 1)})
    with pytest.raises(ValueError, match=f"at most {MAX_COLUMNS} columns.*c6"):
        readable(wide)
    # a named index counts as a column
    with pytest.raises(ValueError, match="index included"):
        readable(wide.iloc[:, :MAX_COLUMNS].set_index("c0").assign(extra=1.0))
    assert readable(wide.iloc[:, :MAX_COLUMNS]) is not None


def test_label_prefers_the_callers_labels_then_the_registries():
    assert label("gradcam") == "GradCAM"
    assert label("spearman_abs") != "spearman_abs"
    assert label("efficientnet_lite0") == "EfficientNet-Lite0"
    assert label("some_new_thing") == "some new thing"
    assert label("gradcam", {"gradcam": "Grad-CAM"}) == "Grad-CAM"
    assert label(3) == 3


def test_a_figure_too_wide_or_with_small_text_is_refused():
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH + 1, 2))
    with pytest.raises(ValueError, match="wide"):
        check_readable(fig)
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.set_title("tiny", fontsize=7)
    with pytest.raises(ValueError, match="'tiny' at 7.0 pt"):
        check_readable(fig)
    ax.set_title("fine", fontsize=9)
    check_readable(fig)
    plt.close("all")


def test_show_attaches_caption_and_name(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, metadata: shown.append(metadata))
    fig, _ = plt.subplots(figsize=(4, 2))
    show(fig, "What to look for.", "fig-test-one")
    assert shown == [{FIGURE_METADATA: {"caption": "What to look for.", "name": "fig-test-one"}}]
    for name, caption, message in [("Fig 1", "c", "lower-case"), ("fig-x", " ", "caption")]:
        with pytest.raises(ValueError, match=message):
            show(plt.subplots(figsize=(4, 2))[0], caption, name)
    plt.close("all")


def test_captioned_outputs_become_numbered_figure_cells():
    run_notebooks = _script("run_notebooks")
    figure = {"output_type": "display_data", "data": {"image/png": "AAAA"},
              "metadata": {FIGURE_METADATA: {"caption": "A caption.", "name": "fig-a"}}}
    text = nbformat.v4.new_output("stream", name="stdout", text="between\n")
    second = {**figure, "metadata": {FIGURE_METADATA: {"caption": "B.", "name": "fig-b"}}}
    cell = nbformat.v4.new_code_cell("draw()", outputs=[text, figure, text, second])
    plain = nbformat.v4.new_code_cell("x = 1")
    cells = run_notebooks.numbered_figures([plain, cell])
    assert cells[0] is plain and cells[1] is cell and cell.outputs == [text]
    assert [c.metadata.get("mystnb", {}).get("figure", {}).get("name") for c in cells[2:]] == \
        ["fig-a", None, "fig-b"]
    assert cells[2].outputs == [figure] and cells[3].outputs == [text]
    # a comment, not an empty source: myst-nb drops a code cell with no source, outputs and all
    assert [c.source for c in cells[2:]] == ["# fig-a", "# output", "# fig-b"]
    assert all(c.metadata["tags"] == ["remove-input"] for c in cells[2:])


def test_the_audit_finds_what_a_reader_cannot_read(tmp_path):
    audit_pages = _script("audit_pages")
    if audit_pages.browser() is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where apt works)")
    wide = "<tr>" + "".join(f"<td>{v}</td>" for v in
                            ["gradient_x_input", "0.1234", "nan", "a", "b", "c", "d"]) + "</tr>"
    page = tmp_path / "page.html"
    page.write_text(
        "<html><body><main style='width:600px'>"
        f"<table>{wide}</table>"
        "<div class='cell_output'><pre style='overflow-x:auto'>" + "x" * 400 + "</pre>"
        "<img src='data:image/png;base64,iVBORw0KGgo=' width=10 height=10></div>"
        "<div class='cell_output'><pre>Downloading: /root/.cache/x.pth</pre></div>"
        "<div class='cell_output'><figure><img src='data:image/png;base64,iVBORw0KGgo=' "
        "width=10 height=10><figcaption>Fig. 1 ok</figcaption></figure></div>"
        "<section><h2>Checks</h2></section>"
        "</main></body></html>")
    kinds = sorted({p["kind"] for p in audit_pages.audit(page)["problems"]})
    assert kinds == ["empty section", "figure without a caption", "more than 2 decimals",
                     "noise in an output", "raw identifier", "scrolls sideways",
                     "table of 7 columns", "undefined value not shown as —"]
    good = tmp_path / "good.html"
    good.write_text("<html><body><main style='width:600px'><p>Fine.</p></main></body></html>")
    assert audit_pages.audit(good)["problems"] == []
