"""Execute the book's notebooks with papermill under a profile of parameters.

Usage: python scripts/run_notebooks.py --profile book [--only 01_models ...]

The notebooks come from ``_toc.yml`` (``book/executed/NAME`` is the output of
``notebooks/NAME.ipynb``); ``profiles.yml`` gives each profile's parameters. Only parameters a
notebook declares in its ``parameters`` cell are passed to it.
"""

from __future__ import annotations

import argparse
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
#: Outputs that are matplotlib's return values, not content (``Text(0.5, 1.0, '...')``).
STRAY_RESULT = re.compile(r"^(Text|\[<matplotlib|<matplotlib|<Figure size)")


def tidy_for_reading(path: Path) -> None:
    """Shape an executed notebook for the book: code folded behind "show code" (``hide-input``),
    check cells and the notebook's own default parameters removed (the injected parameters are
    shown once), stray matplotlib return values and stderr dropped."""
    notebook = nbformat.read(path, as_version=4)
    injected = any("injected-parameters" in c.metadata.get("tags", []) for c in notebook.cells)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
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
    nbformat.write(notebook, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="book")
    parser.add_argument("--only", nargs="*", default=None, help="notebook names to run")
    args = parser.parse_args()
    # papermill's log_output goes through its logger: show cell output (training epochs) live.
    logging.basicConfig(format="%(message)s")
    logging.getLogger("papermill").setLevel(logging.INFO)
    profiles = yaml.safe_load((ROOT / "profiles.yml").read_text())
    if args.profile not in profiles:
        print(f"unknown profile {args.profile!r}; valid choices: {', '.join(profiles)}")
        return 2
    profile = profiles[args.profile] or {}
    names = toc_notebooks()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            print(f"unknown notebook(s) {unknown}; valid choices: {', '.join(names)}")
            return 2
        names = [n for n in names if n in args.only]
    # The kernels inherit these: results and caches land in the repository, not in notebooks/.
    os.environ.setdefault("SANITYLIB_RESULTS", str(ROOT / "results"))
    os.environ.setdefault("SANITYLIB_CACHE", str(ROOT / ".cache"))
    out_dir = ROOT / "book" / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for i, name in enumerate(names, 1):
        source = ROOT / "notebooks" / f"{name}.ipynb"
        params = parameters_for(profile, name, source)
        print(f"\n>> [{i}/{len(names)}] {name} (profile {args.profile}; {len(names) - i} left "
              f"after this) parameters: {params}", flush=True)
        t0 = time.perf_counter()
        papermill.execute_notebook(str(source), str(out_dir / f"{name}.ipynb"), parameters=params,
                                   kernel_name="python3", progress_bar=True, log_output=True,
                                   cwd=str(ROOT / "notebooks"))
        tidy_for_reading(out_dir / f"{name}.ipynb")
        print(f">> {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"\n>> {len(names)} notebook(s) in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
