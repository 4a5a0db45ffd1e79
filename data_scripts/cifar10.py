"""CIFAR-10 (Krizhevsky 2009), the in-distribution set of the CIFAR-10 benchmark: 50,000 train / 10,000 test 32x32 RGB.

Source: the official archive torchvision downloads (`torchvision.datasets.CIFAR10.url`, checked against
torchvision's md5, copied below), fetched with the resumable `common.download` into ROOT/downloads/ and unpacked
with `common.safe_extract` into ROOT/raw/cifar10/ (removed afterwards).
Output: ROOT/cifar-10-batches-py/, torchvision's own layout (`CIFAR10(ROOT, download=False)` reads it); every batch
file is checked against torchvision's md5 before the folder is moved into place, and recorded in ROOT/manifest.json.
An existing folder with the right checksums (e.g. from an earlier `CIFAR10(ROOT, download=True)`) is reported ready
(and recorded)."""
from __future__ import annotations

import shutil
from pathlib import Path

from .archives import extract_fresh, fetch, install_folder, official_only, raw_dir
from .common import DataScriptError, check_md5, keep_as_bad, md5sum, record, record_verified


# torchvision.datasets.CIFAR10's url, filename, tgz_md5, base_folder and file md5s (a test checks they still agree)
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FILENAME = "cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
FILES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}


def folder(root) -> Path:
    return Path(root) / FOLDER


def paths(root) -> list[Path]:
    "The batch files, in ROOT/cifar-10-batches-py/."
    return [folder(root) / f for f in FILES]


def is_ready(root) -> bool:
    return all((folder(root) / f).exists() and md5sum(folder(root) / f) == m for f, m in FILES.items())


def prepare(root, cache=None, source="auto", log=print):
    if folder(root).exists():
        if is_ready(root):
            record_verified(root, paths(root), "cifar10", log)
            log(f"cifar10: ready in {folder(root)}")
            return
        log(f"cifar10: {folder(root)} is incomplete or its checksums differ from torchvision's; preparing it again")
    official_only("cifar10", source)
    archive = fetch(URL, root, FILENAME, MD5, log)
    staging = extract_fresh(archive, raw_dir(root, "cifar10"), log)
    try:
        src = staging / FOLDER
        if not src.is_dir():
            raise DataScriptError(f"{archive} has no {FOLDER}/ folder; delete it and run again")
        for f, m in FILES.items():
            if not (src / f).exists():
                raise DataScriptError(f"{archive} lacks {FOLDER}/{f}; delete it and run again")
            check_md5(src / f, m, source=archive)
        if folder(root).exists() or folder(root).is_symlink():  # an incomplete or corrupted earlier copy: kept
            log(f"cifar10: kept the folder that was there as {keep_as_bad(folder(root))}")
        install_folder(src, folder(root))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    record(root, paths(root), "cifar10")
    log(f"cifar10: {len(FILES)} batch files -> {folder(root)}")
