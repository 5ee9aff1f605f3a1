"""Open book pages and reports in headless Chromium at 1280 px and say what a reader cannot read.

Usage: python scripts/audit_pages.py PAGE.html [PAGE.html ...]   (exit 1 when a page fails)

For every page it reports:

- elements of the text column that scroll sideways (their content is wider than they are) or
  reach past the column's right edge;
- tables of more than six columns, cells with more than two decimals, ``nan`` or raw identifiers;
- noise in outputs (download messages, machine paths, epoch logs) and empty sections;
- output figures (images in a cell's output, or in a report) without a caption (an image must sit
  in a ``<figure>`` with a ``<figcaption>``) or shown smaller than drawn (their text shrinks).

The page is copied beside itself with a script that measures the layout once everything has
loaded and writes the findings into the DOM, which ``chromium --dump-dom`` prints.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: The window a reader's laptop shows.
WINDOW = (1280, 900)
#: Pixels of tolerance for sub-pixel rounding.
SLACK = 2
#: The widest table a page may show; wider data stays in the CSV.
MAX_COLUMNS = 6

_MEASURE = r"""
<script>
window.addEventListener('load', () => {
  const slack = %(slack)d;
  const maxColumns = %(columns)d;
  const column = document.querySelector('article.bd-article') || document.querySelector('main')
      || document.body;
  const right = column.getBoundingClientRect().right;
  const name = (el) => {
    const text = (el.innerText || el.alt || '').trim().replace(/\s+/g, ' ').slice(0, 60);
    return el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
        ? '.' + el.className.trim().split(/\s+/).join('.') : '') + (text ? ' "' + text + '"' : '');
  };
  const problems = [];
  const seen = new Set();
  for (const el of column.querySelectorAll('*')) {
    if (['SCRIPT', 'STYLE', 'MJX-CONTAINER'].includes(el.tagName) || el.closest('mjx-container')
        || el.closest('.headerlink') || el.closest('details:not([open])')) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    const style = getComputedStyle(el);
    if (['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + slack) {
      problems.push({kind: 'scrolls sideways', element: name(el),
                     width: el.scrollWidth, shown: el.clientWidth});
      seen.add(el);
    } else if (box.right > right + slack && ![...seen].some((s) => s.contains(el))) {
      problems.push({kind: 'overflows the column', element: name(el),
                     right: Math.round(box.right), column: Math.round(right)});
      seen.add(el);
    }
  }
  for (const table of column.querySelectorAll('table')) {
    const widest = Math.max(...[...table.rows].map((row) => [...row.cells]
        .reduce((n, cell) => n + (cell.colSpan || 1), 0)));
    if (widest > maxColumns) {
      problems.push({kind: 'table of ' + widest + ' columns', element: name(table)});
    }
    const kinds = new Set();
    for (const cell of table.querySelectorAll('td, th')) {
      const text = cell.innerText.trim();
      let kind = null;
      if (/^[-\u2212]?\d+\.\d{3,}$/.test(text)) kind = 'more than 2 decimals';
      else if (/^(nan|NaN|None|null|inf|-inf)$/.test(text)) kind = 'undefined value not shown as \u2014';
      else if (/^[a-z][a-z0-9]*(_[a-z0-9]+)+$/.test(text) || /^[A-Z0-9]+(_[A-Z0-9]+)+$/.test(text)) kind = 'raw identifier';
      if (kind && !kinds.has(kind)) {
        kinds.add(kind);
        problems.push({kind: kind, element: name(table), cell: text});
      }
    }
  }
  const noise = /(Downloading|Traceback|Warning:|Tried:|epoch \d+\/|\/root\/|\/work\/|\/tmp\/|\/home\/|site-packages)/;
  for (const out of column.querySelectorAll('.cell_output, .report pre')) {
    const found = (out.innerText || '').match(noise);
    if (found) problems.push({kind: 'noise in an output', element: name(out), text: found[0]});
  }
  for (const section of column.querySelectorAll('section')) {
    const content = [...section.children].filter((c) => !/^H[1-6]$/.test(c.tagName)
        && !(c.tagName === 'SPAN' && !c.innerText.trim()));
    if (content.length === 0) problems.push({kind: 'empty section', element: name(section)});
  }
  const images = column.querySelectorAll('.cell_output img, .report img');
  for (const img of images) {
    const shown = img.getBoundingClientRect().width;
    if (img.naturalWidth > 0 && shown < 0.95 * img.naturalWidth) {
      problems.push({kind: 'figure shrunk', element: name(img),
                     percent: Math.round(100 * shown / img.naturalWidth)});
    }
    const figure = img.closest('figure');
    if (!figure || !figure.querySelector('figcaption')
        || !figure.querySelector('figcaption').innerText.trim()) {
      problems.push({kind: 'figure without a caption', element: name(img)});
    }
  }
  const out = document.createElement('pre');
  out.id = 'page-audit';
  out.textContent = JSON.stringify({images: images.length, problems: problems});
  document.body.appendChild(out);
});
</script>
"""


def browser() -> str | None:
    """Debian's chromium, where it is installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def audit(page: Path, chromium: str | None = None) -> dict:
    """``{"images": n, "problems": [...]}`` for ``page`` as Chromium lays it out at 1280 px."""
    chromium = chromium or browser()
    if chromium is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    page = page.resolve()
    probe = page.with_name(f".audit-{page.name}")
    html = page.read_text(encoding="utf-8")
    script = _MEASURE % {"slack": SLACK, "columns": MAX_COLUMNS}
    probe.write_text(html.replace("</body>", script + "</body>") if "</body>" in html
                     else html + script, encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            done = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=10000",
                 "--dump-dom", probe.as_uri()],
                capture_output=True, text=True, timeout=180, check=False)
    finally:
        probe.unlink(missing_ok=True)
    found = re.search(r'<pre id="page-audit"[^>]*>(.*?)</pre>', done.stdout, re.DOTALL)
    if found is None:
        raise RuntimeError(f"chromium did not lay out {page.name}: {done.stderr[-500:]}")
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    args = parser.parse_args(argv)
    failed = 0
    for page in args.pages:
        found = audit(page)
        status = "ok" if not found["problems"] else f"{len(found['problems'])} problem(s)"
        print(f"{page.name}: {found['images']} figure(s), {status}")
        for problem in found["problems"]:
            print("   ", json.dumps(problem, ensure_ascii=False))
        failed += bool(found["problems"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
