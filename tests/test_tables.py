"""The results files as a contract (issue 24): every table declared once, written and read through
one API, each folder written by one chapter only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from sanitylib.experiments import tables
from sanitylib.experiments.tables import (
    TABLES,
    ResultTable,
    read_result,
    result_tables,
    write_result,
)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _written(code: str) -> set[str]:
    keys = set(re.findall(r'write_result, "([\w/]+)"\)', code))
    for start in (m.end() for m in re.finditer(r"write_claims\(", code)):
        depth, end = 1, start
        while depth:  # to the call's closing parenthesis: its last argument is the folder
            depth += {"(": 1, ")": -1}.get(code[end], 0)
            end += 1
        folder = re.findall(r'"(\w+)"', code[start:end])[-1]
        keys.add(f"{folder}/claims")
    return keys


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_a_chapter_writes_its_own_declared_tables_through_the_api(notebook):
    code = _code(notebook)
    written = _written(code)
    assert written == {t.key for t in result_tables(notebook.stem)}
    read = set(re.findall(r'read_result\("([\w/]+)"', code))
    assert read <= set(TABLES), read - set(TABLES)
    assert ".to_csv(" not in code and "pd.read_csv(" not in code
    if notebook.stem != "10_check_your_model":  # its reports are folders of their own
        assert "results_dir(" not in code


def test_every_declared_chapter_has_a_notebook():
    assert {t.chapter for t in TABLES.values()} <= {p.stem for p in NOTEBOOKS.glob("*.ipynb")}


def test_writing_checks_columns_and_puts_the_declared_ones_first(tmp_path, monkeypatch):
    monkeypatch.setenv("SANITYLIB_RESULTS", str(tmp_path))
    table = pd.DataFrame({"extra": [1], "n": [3], "metric": ["ssim"], "mean": [0.5], "low": [0.4],
                          "high": [0.6], "model": ["cnn"], "dataset": ["mnist"]})
    write_result(table, "cascading/baseline")
    written = pd.read_csv(tmp_path / "cascading" / "baseline.csv")
    assert list(written.columns) == [*TABLES["cascading/baseline"].columns, "extra"]
    assert read_result("cascading/baseline").equals(written)
    assert read_result("cascading/summary") is None
    with pytest.raises(ValueError, match=r"cascading/baseline lacks its declared column\(s\) \['n'\]"):
        write_result(table.drop(columns="n"), "cascading/baseline")
    with pytest.raises(ValueError, match="unknown results table 'cascading/scorez'; declared: "):
        write_result(table, "cascading/scorez")


def test_a_folder_belongs_to_one_chapter():
    with pytest.raises(ValueError, match="declared by two chapters: 02_cascading and 03_independent"):
        tables._declare([ResultTable("cascading", "scores", "02_cascading", ("value",)),
                         ResultTable("cascading", "variants", "03_independent", ("value",))])
    with pytest.raises(ValueError, match="declared twice"):
        tables._declare([ResultTable("a", "b", "c", ()), ResultTable("a", "b", "c", ())])
