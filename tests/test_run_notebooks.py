"""The book build's execution cache: a notebook is kept only when nothing that made it changed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "run_notebooks.py"
spec = importlib.util.spec_from_file_location("run_notebooks", SCRIPT)
run_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_notebooks)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path, str]:
    """An executed notebook that wrote one results file (plus one that was there before)."""
    results = tmp_path / "results"
    (results / "chapter").mkdir(parents=True)
    (results / "other.csv").write_text("a\n1\n")
    before = run_notebooks._results_state(results)
    (results / "chapter" / "table.csv").write_text("x,y\n1,2\n")
    executed = tmp_path / "executed.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), executed)
    assert run_notebooks.record_build(executed, "k1", results, before) == 1
    return executed, results, "k1"


def test_kept_when_key_and_results_unchanged(built):
    executed, results, key = built
    record = nbformat.read(executed, as_version=4).metadata[run_notebooks.BUILD_METADATA]
    assert list(record["results"]) == ["chapter/table.csv"]
    assert run_notebooks.up_to_date(executed, key, results)


def test_rebuilt_when_key_differs(built):
    executed, results, _ = built
    assert not run_notebooks.up_to_date(executed, "k2", results)


@pytest.mark.parametrize("change", ["delete", "edit"])
def test_rebuilt_when_a_results_file_changed(built, change):
    executed, results, key = built
    table = results / "chapter" / "table.csv"
    table.unlink() if change == "delete" else table.write_text("x,y\n1,3\n")
    assert not run_notebooks.up_to_date(executed, key, results)


def test_rebuilt_when_notebook_missing_or_corrupt(built):
    executed, results, key = built
    executed.write_text("{ not json")
    assert not run_notebooks.up_to_date(executed, key, results)
    executed.unlink()
    assert not run_notebooks.up_to_date(executed, key, results)


def test_execution_key_covers_notebook_profile_and_parameters(tmp_path: Path):
    source = tmp_path / "n.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), source)
    base = run_notebooks.execution_key("env", source, "book", {"n": 1})
    assert base == run_notebooks.execution_key("env", source, "book", {"n": 1})
    assert base != run_notebooks.execution_key("env2", source, "book", {"n": 1})
    assert base != run_notebooks.execution_key("env", source, "paper", {"n": 1})
    assert base != run_notebooks.execution_key("env", source, "book", {"n": 2})
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("2")]), source)
    assert base != run_notebooks.execution_key("env", source, "book", {"n": 1})


def test_execution_key_covers_what_earlier_chapters_wrote(tmp_path: Path):
    source = tmp_path / "n.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), source)
    keys = {run_notebooks.execution_key("env", source, "book", {}, upstream)
            for upstream in (None, {"a/t.csv": "1"}, {"a/t.csv": "2"}, {"b/t.csv": "1"})}
    assert len(keys) == 4


def test_build_record_of_a_missing_or_foreign_notebook_is_empty(tmp_path: Path, built):
    assert run_notebooks.build_record(tmp_path / "missing.ipynb") == {}
    foreign = tmp_path / "foreign.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), foreign)
    assert run_notebooks.build_record(foreign) == {}
    assert run_notebooks.build_record(built[0])["key"] == "k1"


def test_environment_key_follows_settings(monkeypatch):
    monkeypatch.setenv("SANITYLIB_DEVICE", "cpu")
    first = run_notebooks.environment_key()
    assert first == run_notebooks.environment_key()
    monkeypatch.setenv("SANITYLIB_TEST_SETTING", "1")
    assert first != run_notebooks.environment_key()
