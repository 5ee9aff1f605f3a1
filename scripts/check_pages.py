"""The book's pages as a reader sees them, checked in headless Chromium (``make test``).

Usage: python scripts/check_pages.py [--profile smoke] [--site DIR]

Executes the chapters under ``--profile`` (the smoke profile by default: ``make test`` has just
run the same notebooks under nbval, so their computations come from the cache), builds the book
from them with the flags of ``make html`` into ``--site``, then opens every chapter page and
every ``sanitylib check`` report the chapters wrote at 1280 px (``scripts/audit_pages.py``): no
element may scroll sideways or overflow the text column, no table may show more than six
columns, raw identifiers, ``nan`` or more than two decimals, and every output figure needs a
caption. Exits 1 and lists the problems when a page fails; skips, saying so, without Chromium.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from audit_pages import audit, browser

ROOT = Path(__file__).resolve().parent.parent
#: What a book build reads besides the executed notebooks.
SOURCES = ["_config.yml", "_toc.yml", "book/intro.md", "book/reference.md", "book/references.bib",
           "book/_static"]


def stage(site: Path) -> None:
    """Copy the book's sources into ``site`` (the executed notebooks go to site/book/executed)."""
    for name in SOURCES:
        source, target = ROOT / name, site / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("mathjax"))
        else:
            shutil.copy2(source, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--site", type=Path, default=ROOT / ".cache" / "pages-site")
    args = parser.parse_args(argv)
    chromium = browser()
    if chromium is None:
        print(">> chromium is not installed: the pages' browser check is skipped "
              "(make test installs it where apt works)")
        return 0
    site = args.site.resolve()
    stage(site)
    python = sys.executable
    subprocess.run([python, str(ROOT / "scripts" / "run_notebooks.py"), "--profile", args.profile,
                    "--out", str(site / "book" / "executed")], check=True)
    shutil.rmtree(site / "_build", ignore_errors=True)
    subprocess.run([str(Path(python).parent / "jupyter-book"), "build", str(site), "--builder",
                    "html", "--warningiserror", "--nitpick", "--keep-going", "--quiet"],
                   check=True)
    pages = sorted((site / "_build" / "html" / "book" / "executed").glob("*.html"))
    results = Path(os.environ.get("SANITYLIB_RESULTS", ROOT / "results"))
    pages += sorted(results.rglob("report.html"))
    failed = []
    for page in pages:
        found = audit(page, chromium)
        print(f"{page.name}: {found['images']} figure(s), {len(found['problems'])} problem(s)")
        for problem in found["problems"]:
            print("   ", problem)
        if found["problems"]:
            failed.append(page.name)
    if not pages:
        print(">> no page was built")
        return 1
    print(f">> {len(pages)} page(s) opened at 1280 px; "
          + (f"{len(failed)} failed: {', '.join(failed)}" if failed else "all readable"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
