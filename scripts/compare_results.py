"""Compare two ``results/`` trees CSV by CSV: did a refactoring keep every number?

Usage: python scripts/compare_results.py BEFORE AFTER [--tolerance 0]

Every CSV under BEFORE must exist under AFTER with the same columns and rows; numeric columns are
compared within ``--tolerance`` (0: bit for bit), the others exactly. Files only in AFTER are
listed (new results). Exits 1 and names each difference when any is found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def differences(before: pd.DataFrame, after: pd.DataFrame, tolerance: float) -> list[str]:
    """What differs between two tables, one line per problem (empty: they agree)."""
    if list(before.columns) != list(after.columns):
        return [f"columns {list(before.columns)} -> {list(after.columns)}"]
    if len(before) != len(after):
        return [f"{len(before)} rows -> {len(after)} rows"]
    problems = []
    for column in before.columns:
        a, b = before[column], after[column]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            same = (np.abs(x - y) <= tolerance) | (np.isnan(x) & np.isnan(y))
            if not same.all():
                worst = np.nanmax(np.abs(x - y))
                problems.append(f"{column}: {int((~same).sum())} values differ (max {worst:.3g})")
        elif not a.fillna("<NA>").astype(str).equals(b.fillna("<NA>").astype(str)):
            problems.append(f"{column}: {int((a.astype(str) != b.astype(str)).sum())} values differ")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.0)
    parser.add_argument("--ignore", nargs="*", default=["train_seconds"],
                        help="columns not compared (wall-clock timings)")
    args = parser.parse_args()
    failed = False
    names = sorted(p.relative_to(args.before) for p in args.before.rglob("*.csv"))
    for name in names:
        other = args.after / name
        if not other.exists():
            print(f"MISSING {name}")
            failed = True
            continue
        before, after = (pd.read_csv(p).drop(columns=args.ignore, errors="ignore")
                         for p in (args.before / name, other))
        problems = differences(before, after, args.tolerance)
        print(f"{'DIFFERS' if problems else 'same   '} {name}")
        for problem in problems:
            print(f"        {problem}")
        failed |= bool(problems)
    for extra in sorted(p.relative_to(args.after) for p in args.after.rglob("*.csv")):
        if extra not in names:
            print(f"new     {extra}")
    print(f"{len(names)} files compared: {'differences found' if failed else 'all identical'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
