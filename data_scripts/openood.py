"""OpenOOD v1.5's CIFAR-10 benchmark (Zhang et al., "OpenOOD v1.5: Enhanced Benchmark for Out-of-Distribution
Detection", 2023), on its own image lists: ID CIFAR-10 (train 50,000; validation 1,000 and test 9,000 of the official
test split, as OpenOOD holds them out); near-OOD CIFAR-100 and TinyImageNet (its classes that overlap CIFAR-10
removed); far-OOD MNIST, SVHN, Textures and Places365; OpenOOD's validation OOD images (a held-out TinyImageNet list)
tune the detectors.

Sources: OpenOOD's own distribution, the files its `scripts/download/download.py` fetches from Google Drive by id:
`benchmark_imglist.zip` (every benchmark's lists, `benchmark_imglist/cifar10/<split>.txt`, one "path label" per line)
and one image archive per source set (`images_classic/<set>/...`), kept in ROOT/downloads/ and checked against the
sha256 pins in `PINS`. A file that does not match its pin is kept as `<file>.bad` and the set is refused. A pin not
yet known (None) is computed on the first download, printed, and recorded in the manifest with the prepared set:
put it in `PINS` so that every later copy is checked against it.

Each list becomes ROOT/openood32/<set>.pt (the ID set: `openood_cifar10_<split>.pt`), N x 3 x 32 x 32 uint8 in list
order with the list's labels, every image resized as OpenOOD's test pre-processing does (shorter side to 32, centre
crop), and recorded in ROOT/manifest.json with its list and the archives' sha256."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ssod.manifest import file_digest

from .archives import clear_folder, downloads_dir, extract_once, load_images32, raw_dir
from .common import ChecksumError, DataScriptError, download, is_prepared, keep_as_bad, save_image_set

URL = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"
# Google Drive ids of OpenOOD's files (its scripts/download/download.py)
DRIVE_IDS = {"benchmark_imglist": "1lI1j0_fDDvjIt9JlWAw09X8ks-yrR_H1", "cifar10": "1Co32RiiWe16lTaiOU6JMMnyUYS41IlO1",
             "cifar100": "1PGKheHUsf29leJPPGuXqzLBMwl8qMF8_", "tin": "1PZ-ixyx52U989IKsMA2OT-24fToTrelC",
             "mnist": "1CCHAGWqA1KJTFFswuF9cbhmB-j98Y1Sb", "svhn": "1DQfc11HOtB1nEwqS4pWUFp8vtQ3DczvI",
             "texture": "1OSz1m3hHfVWbRdmMwKbUzoU8Hg9UKcam", "places365": "1Ec-LRSTf6u5vEctKX9vRp9OA6tqnJ0Ay"}
# sha256 of each downloaded archive; None: not pinned yet (see the module's docstring)
PINS: dict = {name: None for name in DRIVE_IDS}
# set -> (list file under benchmark_imglist/cifar10/, the image archive it reads)
ID_SPLITS = {"train": "train_cifar10.txt", "val": "val_cifar10.txt", "test": "test_cifar10.txt"}
OOD_LISTS = {"openood_cifar100": ("test_cifar100.txt", "cifar100"), "openood_tin": ("test_tin.txt", "tin"),
             "openood_mnist": ("test_mnist.txt", "mnist"), "openood_svhn": ("test_svhn.txt", "svhn"),
             "openood_texture": ("test_texture.txt", "texture"), "openood_places365": ("test_places365.txt", "places365"),
             "openood_val_tin": ("val_tin.txt", "tin")}
SETS = ("openood_cifar10", *OOD_LISTS)
FOLDER = "openood32"


def out_path(root, name: str, split: str | None = None) -> Path:
    return Path(root) / FOLDER / (f"{name}_{split}.pt" if split else f"{name}.pt")


def fetch_pinned(name: str, root, pins: dict, log=print, url: str | None = None) -> tuple:
    "(archive path, its sha256): ROOT/downloads/openood_<name>.zip, downloaded once and checked against `pins`."
    dest = downloads_dir(root) / f"openood_{name}.zip"
    if not dest.exists():
        log(f"downloading OpenOOD's {name} archive -> {dest}")
    download(url or URL.format(id=DRIVE_IDS[name]), dest)
    got = file_digest(dest, "sha256")
    pin = pins.get(name)
    if pin is None:
        log(f"openood: {dest.name} has sha256 {got} (not pinned yet: put it in data_scripts/openood.py PINS)")
    elif got != pin:
        bad = keep_as_bad(dest)
        raise ChecksumError(f"checksum mismatch for {dest}: expected sha256 {pin}, got {got}; kept the file as {bad}. "
                            "Run the script again to download it again, or put OpenOOD's file there by hand")
    return dest, got


def read_imglist(path: Path) -> list:
    "[(relative image path, int label)] of an OpenOOD list file ('path label' per line)."
    rows = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataScriptError(f"{path}, line {i}: expected 'path label', got {line[:80]!r}")
        rows.append((parts[0], int(parts[1])))
    if not rows:
        raise DataScriptError(f"{path} lists no images")
    return rows


def _lists(root, pins, log) -> tuple:
    "The extracted list folder of OpenOOD's CIFAR-10 benchmark, and the list archive's sha256."
    archive, sha = fetch_pinned("benchmark_imglist", root, pins, log)
    folder = extract_once(archive, raw_dir(root, "openood") / "benchmark_imglist", log)
    found = sorted(folder.rglob("test_cifar10.txt"))
    if not found:
        clear_folder(folder)
        raise DataScriptError(f"{archive} holds no cifar10/test_cifar10.txt: not OpenOOD v1.5's benchmark_imglist.zip")
    return found[0].parent, sha


def _images(root, archive_name, pins, log) -> tuple:
    """The folder the lists' paths ('<set>/...') are relative to, with `archive_name` extracted into
    images_classic/<set>/ (an archive whose entries sit under a top folder <set>/ is read through it)."""
    archive, sha = fetch_pinned(archive_name, root, pins, log)
    classic = raw_dir(root, "openood") / "images_classic"
    folder = extract_once(archive, classic / archive_name, log)
    inner = [p for p in folder.iterdir() if not p.name.startswith(".")]
    nested = len(inner) == 1 and inner[0].is_dir() and inner[0].name == archive_name
    return (folder if nested else classic), sha


def convert(name: str, rows: list, images_root: Path, dest: Path, root, log=print, **meta) -> Path:
    "ROOT/openood32/<file> from a list's rows: decoded in list order, resized to 32x32 as OpenOOD tests."
    paths = [images_root / p for p in (r[0] for r in rows)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataScriptError(f"{name}: {len(missing)} of {len(paths)} listed images are missing, e.g. {missing[0]}; the "
                              "archive is not the one the list was made for: delete it from downloads/ and run again")
    x = load_images32(paths, resize=True, log=log, name=name)
    labels = np.asarray([r[1] for r in rows], np.int64)
    save_image_set(dest, x, labels, root=root, name=name, **meta)
    log(f"{name}: {len(x)} images -> {dest}")
    return dest


def prepare(name: str, root, cache=None, source="auto", log=print, pins: dict | None = None, fixture: bool = False):
    "Set `name` of OpenOOD v1.5's CIFAR-10 benchmark (SETS) under ROOT/openood32/."
    if source not in ("auto", "official"):
        raise DataScriptError(f"{name}: the only source is OpenOOD's download (use --source official or auto)")
    pins = PINS if pins is None else pins
    jobs = ([(name, out_path(root, name, s), lst, "cifar10") for s, lst in ID_SPLITS.items()]
            if name == "openood_cifar10" else [(name, out_path(root, name), *OOD_LISTS[name])])
    if all(is_prepared(root, label, dest, log) for label, dest, *_ in jobs):
        return [dest for _, dest, *_ in jobs]
    lists, list_sha = _lists(root, pins, log)
    archive_name = jobs[0][3]   # one archive serves every list of a set (the ID splits: cifar10): hashed once
    images_root, sha = _images(root, archive_name, pins, log)
    for label, dest, list_file, _ in jobs:
        rows = read_imglist(lists / list_file)
        convert(label, rows, images_root, dest, root, log, source="OpenOOD v1.5 (its Google Drive files)",
                imglist=f"benchmark_imglist/cifar10/{list_file}", sha256={"benchmark_imglist": list_sha,
                                                                          archive_name: sha}, fixture=fixture)
    return [dest for _, dest, *_ in jobs]
