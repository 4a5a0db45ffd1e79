"""ImageNet-1k (ILSVRC2012), the in-distribution set of the ImageNet benchmark. Not downloaded: its licence requires
each user to obtain it from image-net.org. Register your copy with

    python -m data_scripts.prepare imagenet --imagenet-dir /path/to/ILSVRC2012 --root ROOT

The folder must hold train/ and val/, each with the 1,000 class folders named by WordNet id (n01440764, ...) and
images inside them; val/ must be sorted into class folders too (the raw release puts the 50,000 validation images in
one folder; sort them e.g. with the devkit's ground truth or the common `valprep.sh`). The check reports every
problem it finds: missing train/ or val/, a wrong number of class folders, folders that are not WordNet ids, images
lying directly in train/ or val/, empty class folders, and class folders present in one split but not the other.

Where it is recorded: a symbolic link ROOT/imagenet -> the (absolute, resolved) folder, created atomically (a temporary
link renamed onto ROOT/imagenet). `ssod.data` reads ROOT/imagenet/train and ROOT/imagenet/val through it. If
ROOT/imagenet is already a real folder it is checked in place and used as it is. Running again without
--imagenet-dir (or with the same folder) prints "ready"; with another folder the link is re-pointed after that folder
passes the check."""
from __future__ import annotations

import os
import re
from pathlib import Path

from .archives import IMAGE_SUFFIXES
from .common import DataScriptError

N_CLASSES = 1000
WNID = re.compile(r"n\d{8}")
SPLITS = ("train", "val")
USAGE = "python -m data_scripts.prepare imagenet --imagenet-dir /path/to/ILSVRC2012"


def link_path(root) -> Path:
    return Path(root) / "imagenet"


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")


def _has_image(folder: str) -> bool:
    "Whether `folder` holds an image file at any depth (stops at the first one)."
    todo = [folder]
    while todo:
        sub = []
        with os.scandir(todo.pop()) as it:
            for e in it:   # scandir is lazy: a class folder of 1,300 images costs one entry, not a full listing
                if e.is_dir():
                    sub.append(e.path)
                elif _is_image(e.name):
                    return True
        todo += sub
    return False


def _few(names, k=5) -> str:
    names = sorted(names)
    return ", ".join(names[:k]) + (f", ... ({len(names)} in all)" if len(names) > k else "")


def check_structure(folder, n_classes: int | None = None) -> dict:
    """Check an ImageNet folder (train/ and val/ organised by class folder). Raises `DataScriptError` listing every
    problem; returns {split: sorted class names}."""
    n_classes = N_CLASSES if n_classes is None else n_classes
    folder = Path(folder)
    if not folder.is_dir():
        raise DataScriptError(f"--imagenet-dir {folder} is not a folder")
    problems, classes = [], {}
    for split in SPLITS:
        d = folder / split
        if not d.is_dir():
            problems.append(f"{d} is missing (expected {split}/<wnid>/<images>)")
            continue
        with os.scandir(d) as it:
            entries = list(it)
        dirs = sorted(e.name for e in entries if e.is_dir())
        loose = [e.name for e in entries if not e.is_dir() and _is_image(e.name)]
        if loose:
            hint = (" sort the validation images into class folders (e.g. with the devkit ground truth or valprep.sh)"
                    if split == "val" else " every image must be inside its class folder")
            problems.append(f"{d} holds {len(loose)} image files directly ({_few(loose, 3)}):{hint}")
        bad = [n for n in dirs if not WNID.fullmatch(n)]
        if bad:
            problems.append(f"{d} has folders that are not WordNet-id class folders like n01440764: {_few(bad)}")
        good = [n for n in dirs if WNID.fullmatch(n)]
        if len(good) != n_classes:
            problems.append(f"{d} has {len(good)} class folders, expected {n_classes}")
        empty = [n for n in good if not _has_image(os.path.join(d, n))]
        if empty:
            problems.append(f"{d} has class folders without images: {_few(empty)}")
        classes[split] = good
    if len(classes) == len(SPLITS) and set(classes["train"]) != set(classes["val"]):
        only_t = set(classes["train"]) - set(classes["val"])
        only_v = set(classes["val"]) - set(classes["train"])
        problems.append("train/ and val/ have different classes"
                        + (f"; only in train/: {_few(only_t)}" if only_t else "")
                        + (f"; only in val/: {_few(only_v)}" if only_v else ""))
    if problems:
        raise DataScriptError(f"{folder} is not an ImageNet folder this project can use:\n  - "
                              + "\n  - ".join(problems))
    return classes


def _link(src: Path, link: Path):
    "Point `link` at `src` atomically (a temporary link renamed onto it)."
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.link")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(src, tmp, target_is_directory=True)
    try:
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def prepare(root, cache=None, source="auto", log=print, imagenet_dir=None):
    "Check the user's ImageNet folder and record it as the symlink ROOT/imagenet (`source` is not used)."
    link = link_path(root)
    exists = link.is_symlink() or link.exists()
    if imagenet_dir is None:
        if not exists:
            raise DataScriptError(f"ImageNet is not downloaded by these scripts (its licence asks each user to get it "
                                  f"from https://image-net.org). Get ILSVRC2012, then run `{USAGE} --root {root}`")
        if link.is_symlink() and not all((link / s).is_dir() for s in SPLITS):
            raise DataScriptError(f"{link} points to {os.readlink(link)}, which has no train/ and val/ any more "
                                  f"(moved?); run `{USAGE} --root {root}` again")
        if link.is_symlink():
            log(f"imagenet: ready in {link} -> {os.readlink(link)}")
            return
        check_structure(link)   # a real folder put there by hand
        log(f"imagenet: ready in {link}")
        return
    src = Path(imagenet_dir).expanduser().resolve()
    if link.is_symlink() and link.resolve() == src and all((src / s).is_dir() for s in SPLITS):
        log(f"imagenet: ready in {link} -> {src}")
        return
    if exists and not link.is_symlink() and link.resolve() == src:
        check_structure(src)
        log(f"imagenet: ready in {link} (checked in place)")
        return
    check_structure(src)
    if exists and not link.is_symlink():
        raise DataScriptError(f"{link} is a real folder or file, not a link this script made; move it away (or run "
                              f"without --imagenet-dir to use it as it is) and run again")
    old = os.readlink(link) if link.is_symlink() else None
    _link(src, link)
    log(f"imagenet: {src} passed the check; recorded as {link} -> {src}" + (f" (was -> {old})" if old else ""))
