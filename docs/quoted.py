"""Every result a page quotes is in a committed table or record.

A result is a number quoted to two or more decimals (the project quotes its results so; settings such as alpha 1.5 or
rho 0.8 have one decimal or none). Each must be found, rounded to the decimals it is quoted with, as it stands or as a
percentage of a fraction, sign aside, among the numbers of the committed tables (`figures/*.md`), of the run records
(`record.json`) under any `figures/...` folder the page names, or of any file under `figures/` it names (a benchmark's
output, `figures/recipe_runs/compile_step.txt`). Code spans and blocks are commands, not quotes.

    python docs/quoted.py README.md docs/study.md      # prints every number it cannot find, exits 1 if any
    python docs/quoted.py                              # README.md and every guide in docs/
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
QUOTED = re.compile(r"(?<![\w.-])[-+−]?\d+\.\d{2,}(?![\d.])")
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
FOLDER = re.compile(r"figures/[\w.-]+(?:/[\w.-]+)*")


def quoted_numbers(text: str) -> list:
    "The results a page quotes, in order, as written (code spans and blocks left out)."
    return [m.group() for m in QUOTED.finditer(CODE.sub(" ", text))]


def table_values(root: Path = ROOT) -> set:
    "Every number in the committed tables, figures/*.md."
    return {abs(float(m)) for p in (root / "figures").glob("*.md") for m in NUMBER.findall(p.read_text())}


def _json_numbers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield abs(float(value))
    elif isinstance(value, dict):
        for v in value.values():
            yield from _json_numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_numbers(v)


def record_values(text: str, root: Path = ROOT) -> set:
    "Every number in the run records under the figures/ folders a page names, and in the files under figures/ it names."
    out = set()
    for name in set(FOLDER.findall(text)):
        path = root / name.rstrip("./")
        files = sorted(path.glob("**/record.json")) if path.is_dir() else [path] if path.is_file() else []
        for f in files:
            if f.suffix == ".json":
                out.update(_json_numbers(json.loads(f.read_text())))
            elif f.suffix in (".md", ".txt", ".csv"):   # figures are not read (png, pdf)
                out.update(abs(float(m)) for m in NUMBER.findall(f.read_text()))
    return out


def found(number: str, values) -> bool:
    "Whether a quoted number is one of `values` rounded to its decimals, as it stands or as a percentage, sign aside."
    digits = len(number.split(".")[1])
    x = round(abs(float(number.replace("−", "-"))), digits)
    return any(round(v, digits) == x or round(100 * v, digits) == x for v in values)


def unsourced(page, root: Path = ROOT) -> list:
    "The numbers a page quotes that no committed table or named record holds."
    text = (root / page).read_text()
    values = table_values(root) | record_values(text, root)
    return [n for n in quoted_numbers(text) if not found(n, values)]


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Print every result a page quotes that no committed table or named record "
                                 "holds; exit 1 if any.")
    ap.add_argument("pages", nargs="*", help=f"pages relative to the checkout (default: {', '.join(PAGES)})")
    missing = {p: unsourced(p) for p in (ap.parse_args(argv).pages or PAGES)}
    for page, numbers in missing.items():
        if numbers:
            print(f"{page}: {', '.join(numbers)}")
    return 1 if any(missing.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
