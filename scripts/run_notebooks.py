"""Execute the book's notebooks with papermill under a profile of parameters.

Usage: python scripts/run_notebooks.py --profile book [--only 01_models ...] [--force] [--out DIR]

The notebooks come from ``_toc.yml`` (``book/executed/NAME`` is the output of
``notebooks/NAME.ipynb``); ``profiles.yml`` gives each profile's parameters. Only parameters a
notebook declares in its ``parameters`` cell are passed to it.

An executed notebook is kept, not run again, when its execution key is unchanged: the key hashes
everything that produced it (the notebook, its parameters, the library's code, this script, the
pinned environment, the Python version, the device, the ``SANITYLIB_*`` settings (but where the
seeds run, :data:`WHERE_NOT_WHAT`), the offline
data files outside the pinned environment, and the results files the chapters before it wrote),
and the results files it wrote must still be there with the bytes they had. Anything else, or
``--force``, runs it again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import papermill
import yaml

ROOT = Path(__file__).resolve().parent.parent
#: Where the executed notebook records how it was made.
BUILD_METADATA = "sanitylib_build"


def toc_notebooks() -> list[str]:
    """Notebook names in the order of the book's table of contents."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = []
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        for chapter in part["chapters"]:
            path = Path(chapter["file"])
            if path.parent.as_posix() == "book/executed":
                names.append(path.name)
    return names


def parameters_for(profile: dict, name: str, notebook: Path) -> dict:
    """The profile's common parameters merged with the notebook's own, filtered to those declared."""
    declared = set(papermill.inspect_notebook(str(notebook)))
    merged = {**(profile.get("common") or {}), **((profile.get("notebooks") or {}).get(name) or {})}
    return {k: v for k, v in merged.items() if k in declared}


CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
#: The heading above a chapter's check cells (removed from the book with them).
CHECKS_HEADING = "## Checks"
#: Outputs that are matplotlib's return values, not content (``Text(0.5, 1.0, '...')``).
STRAY_RESULT = re.compile(r"^(Text|\[<matplotlib|<matplotlib|<Figure size)")


def numbered_figures(cells: list) -> list:
    """Each output that :func:`sanitylib.figures.pages.show` captioned becomes its own cell, its
    code removed and its caption and name in myst-nb's ``figure`` metadata (a numbered figure);
    the outputs after it go on in a further cell, so that the page keeps their order."""
    from sanitylib.figures.pages import FIGURE_METADATA

    shaped = []
    for cell in cells:
        outputs = cell.get("outputs", []) if cell.cell_type == "code" else []
        if not any(FIGURE_METADATA in o.get("metadata", {}) for o in outputs):
            shaped.append(cell)
            continue
        cell.outputs, current = [], cell
        shaped.append(cell)
        for output in outputs:
            figure = output.get("metadata", {}).get(FIGURE_METADATA)
            if figure or current is None:
                # myst-nb skips a code cell with no source, outputs and all: a comment, hidden
                current = nbformat.v4.new_code_cell(f"# {figure['name'] if figure else 'output'}",
                                                    metadata={"tags": ["remove-input"]})
                shaped.append(current)
            current.outputs.append(output)
            if figure:
                current.metadata["mystnb"] = {"figure": dict(figure)}
                current = None
    return shaped


def tidy_for_reading(path: Path) -> None:
    """Shape an executed notebook for the book: code folded behind "show code" (``hide-input``),
    captioned figures numbered (:func:`numbered_figures`),
    check cells, their "Checks" heading and the notebook's own default parameters removed (the injected parameters are
    shown once), stray matplotlib return values and stderr dropped."""
    notebook = nbformat.read(path, as_version=4)
    injected = any("injected-parameters" in c.metadata.get("tags", []) for c in notebook.cells)
    for cell in notebook.cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type == "markdown" and cell.source.startswith(CHECKS_HEADING):
            cell.metadata["tags"] = sorted(tags | {"remove-cell"})  # it heads check cells only
        if cell.cell_type != "code":
            continue
        if cell.source.startswith(CHECK_MARK) or ("parameters" in tags and injected):
            tags.add("remove-cell")
        else:
            tags.add("hide-input")
        cell.metadata["tags"] = sorted(tags)
        cell.outputs = [o for o in cell.get("outputs", [])
                        if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                        and not (o.get("output_type") == "execute_result"
                                 and set(o.get("data", {})) == {"text/plain"}
                                 and STRAY_RESULT.match(o["data"]["text/plain"]))]
    notebook.cells = numbered_figures(notebook.cells)
    nbformat.write(notebook, path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _offline_data_files() -> list[Path]:
    """The data files outside the pinned environment: Debian's Fashion-MNIST and the nearest
    ``shared/data/sst2`` folder (the loaders' other sources are pinned packages)."""
    from sanitylib.data.images import DEBIAN_FASHION_DIR
    shared = [a / "shared" / "data" / "sst2" for a in [ROOT, *ROOT.parents]]
    folders = [DEBIAN_FASHION_DIR, *[f for f in shared if f.is_dir()][:1]]
    return sorted(f for folder in folders if folder.is_dir() for f in folder.rglob("*") if f.is_file())


#: Settings that choose where the work runs, not what it computes (the same numbers either way).
WHERE_NOT_WHAT = ("SANITYLIB_WORKERS", "SANITYLIB_SCHEDULER")


def environment_key() -> str:
    """The part of every notebook's execution key that does not depend on the notebook."""
    from sanitylib.infra.device import default_device
    digest = hashlib.sha256()
    files = sorted((ROOT / "sanitylib").rglob("*.py")) + [Path(__file__).resolve(),
                                                          ROOT / "requirements.lock"]
    for path in files + _offline_data_files():  # the repository's files by their relative name
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        digest.update(f"{name}:{_sha256(path)}\n".encode())
    settings = {k: v for k, v in os.environ.items()
                if k.startswith("SANITYLIB_") and k not in WHERE_NOT_WHAT}
    digest.update(json.dumps({"python": sys.version, "device": str(default_device()),
                              "settings": settings}, sort_keys=True).encode())
    return digest.hexdigest()


def execution_key(environment: str, source: Path, profile: str, params: dict,
                  upstream: dict[str, str] | None = None) -> str:
    """SHA-256 of the environment key, the notebook's bytes, the profile, the parameters and
    ``upstream``: the results files (name -> SHA-256) that the chapters before it wrote, which
    it may read (the findings page reads them all)."""
    digest = hashlib.sha256(environment.encode())
    digest.update(_sha256(source).encode())
    digest.update(json.dumps({"profile": profile, "parameters": params,
                              "upstream": upstream or {}}, sort_keys=True).encode())
    return digest.hexdigest()


def _results_state(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in root.rglob("*") if p.is_file()} if root.is_dir() else {}


def build_record(executed: Path) -> dict:
    """What :func:`record_build` stored in ``executed`` (``key``, ``results``); empty when the
    notebook is missing, unreadable (not JSON, truncated) or was not built by this script."""
    try:
        return dict(nbformat.read(executed, as_version=4).metadata.get(BUILD_METADATA) or {})
    except (OSError, ValueError):
        return {}


def up_to_date(executed: Path, key: str, results_root: Path) -> bool:
    """True when ``executed`` was made under ``key`` and every results file it wrote is unchanged."""
    record = build_record(executed)
    if record.get("key") != key:
        return False
    return all((results_root / name).is_file() and _sha256(results_root / name) == sha
               for name, sha in (record.get("results") or {}).items())


def record_build(executed: Path, key: str, results_root: Path,
                 before: dict[str, tuple[int, int]]) -> int:
    """Store the key and the results files the run wrote (new or changed) in the notebook."""
    after = _results_state(results_root)
    written = sorted(name for name, state in after.items() if before.get(name) != state)
    notebook = nbformat.read(executed, as_version=4)
    notebook.metadata[BUILD_METADATA] = {
        "key": key, "results": {name: _sha256(results_root / name) for name in written}}
    nbformat.write(notebook, executed)
    return len(written)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="book")
    parser.add_argument("--only", nargs="*", default=None, help="notebook names to run")
    parser.add_argument("--force", action="store_true",
                        help="run every notebook even when its execution key is unchanged")
    parser.add_argument("--out", type=Path, default=ROOT / "book" / "executed",
                        help="folder of the executed notebooks (default: book/executed)")
    args = parser.parse_args()
    # papermill's log_output goes through its logger: show cell output (training epochs) live.
    logging.basicConfig(format="%(message)s")
    logging.getLogger("papermill").setLevel(logging.INFO)
    profiles = yaml.safe_load((ROOT / "profiles.yml").read_text())
    if args.profile not in profiles:
        print(f"unknown profile {args.profile!r}; valid choices: {', '.join(profiles)}")
        return 2
    profile = profiles[args.profile] or {}
    order = toc_notebooks()
    names = order
    if args.only:
        unknown = sorted(set(args.only) - set(order))
        if unknown:
            print(f"unknown notebook(s) {unknown}; valid choices: {', '.join(order)}")
            return 2
        names = [n for n in order if n in args.only]
    # The kernels inherit these: results and caches land in the repository, not in notebooks/.
    os.environ.setdefault("SANITYLIB_RESULTS", str(ROOT / "results"))
    os.environ.setdefault("SANITYLIB_CACHE", str(ROOT / ".cache"))
    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    results_root = Path(os.environ["SANITYLIB_RESULTS"])
    start = time.perf_counter()
    environment = environment_key()
    upstream: dict[str, str] = {}  # results files the chapters so far wrote -> SHA-256
    for name in order:
        source, executed = ROOT / "notebooks" / f"{name}.ipynb", out_dir / f"{name}.ipynb"
        if name in names:
            i = names.index(name) + 1
            params = parameters_for(profile, name, source)
            key = execution_key(environment, source, args.profile, params, upstream)
            if not args.force and up_to_date(executed, key, results_root):
                print(f">> [{i}/{len(names)}] {name}: unchanged (key {key[:12]}), kept "
                      f"{executed.name} and its results", flush=True)
            else:
                print(f"\n>> [{i}/{len(names)}] {name} (profile {args.profile}; {len(names) - i} "
                      f"left after this) parameters: {params}", flush=True)
                t0 = time.perf_counter()
                before = _results_state(results_root)
                papermill.execute_notebook(str(source), str(executed), parameters=params,
                                           kernel_name="python3", progress_bar=True,
                                           log_output=True, cwd=str(ROOT / "notebooks"))
                tidy_for_reading(executed)
                n_written = record_build(executed, key, results_root, before)
                print(f">> {name} done in {time.perf_counter() - t0:.0f} s ({n_written} results "
                      "files)", flush=True)
        # what this chapter wrote (run now, kept, or not selected) is upstream of the next ones
        upstream.update(build_record(executed).get("results") or {})
    print(f"\n>> {len(names)} notebook(s) in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
