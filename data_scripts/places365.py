"""Places365, an OOD test set of the CIFAR-10 benchmark: a fixed random 10,000 of the 328,500 Places365 test images
(Zhou et al. 2017), resized to 32x32.

No list of the 10k images used in the literature is published, so one was drawn once and ships with the scripts:
`places365_test_10k.txt`, one file name per line, sorted. It was made by `generate_list()`:
numpy's legacy `RandomState(SEED=0).permutation(328500)[:10000] + 1` (RandomState's stream is frozen by numpy, so
this stays reproducible), sorted, as `Places365_test_%08d.jpg`. The script checks the shipped file (md5, count,
uniqueness, sorted, valid names) before using it.

Source: test_256.tar (the 256x256 test images, about 4.4 GB, no published md5), kept in ROOT/downloads/; only the
10,000 listed images are extracted, into ROOT/raw/places365/. Each is resized so the shorter side is 32 (bilinear,
antialiased) and centre-cropped to 32x32 RGB, in list order. Output: ROOT/ood32/places365.pt, 10,000 x 3 x 32 x 32
uint8, no labels."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .archives import (clear_folder, fetch_and_extract, list_images, load_images32, official_only,
                       ood32_path, raw_dir, write_ood32)
from .common import DataScriptError, is_prepared, md5sum

NAME = "places365"
URL = "http://data.csail.mit.edu/places/places365/test_256.tar"
FILENAME = "test_256.tar"
MD5 = None  # none published
N_TOTAL = 328_500
N_IMAGES = 10_000
SEED = 0
LIST_FILE = Path(__file__).with_name("places365_test_10k.txt")
LIST_MD5 = "32cd0a795d0ed952c7f3683eba7dbd69"
_NAME_RE = re.compile(r"Places365_test_(\d{8})\.jpg")


def file_name(i: int) -> str:
    return f"Places365_test_{i:08d}.jpg"


def generate_list(seed: int = SEED, n: int = 10_000, total: int = 328_500) -> list[str]:
    "The seeded draw that produced the shipped list (run once; the script itself reads the shipped file)."
    idx = np.sort(np.random.RandomState(seed).permutation(total)[:n]) + 1
    return [file_name(int(i)) for i in idx]


def write_list(path=None, seed: int = SEED):
    "How the shipped list was written: `python -c 'from data_scripts.places365 import write_list; write_list()'`."
    Path(path or LIST_FILE).write_text("\n".join(generate_list(seed)) + "\n")


def validate_list(names, n: int | None = None, total: int | None = None, where="") -> list[str]:
    "Check a list of Places365 test file names: `n` unique, sorted, well-formed names numbered 1..`total`."
    n = N_IMAGES if n is None else n
    total = N_TOTAL if total is None else total
    if len(names) != n:
        raise DataScriptError(f"places365 list {where}: {len(names)} names, expected {n}")
    if len(set(names)) != len(names):
        raise DataScriptError(f"places365 list {where}: duplicate names")
    if names != sorted(names):
        raise DataScriptError(f"places365 list {where}: names are not sorted")
    for s in names:
        m = _NAME_RE.fullmatch(s)
        if m is None or not 1 <= int(m.group(1)) <= total:
            raise DataScriptError(f"places365 list {where}: invalid name {s!r}")
    return names


def read_list(path=None) -> list[str]:
    "The shipped list of 10,000 test images, after checking its md5 and contents."
    path = Path(path or LIST_FILE)
    if path.is_dir():
        raise DataScriptError(f"the Places365 subset list {path} is a folder")
    if not path.exists():
        raise DataScriptError(f"the Places365 subset list {path} is missing; restore it from the repository")
    if md5sum(path) != LIST_MD5:
        raise DataScriptError(f"the Places365 subset list {path} was modified (md5 {md5sum(path)}, expected "
                              f"{LIST_MD5}); restore it from the repository")
    return validate_list(path.read_text().split(), where=str(path))


def prepare(root, cache=None, source="auto", log=print):
    out = ood32_path(root, NAME)
    if is_prepared(root, NAME, out, log):
        return
    official_only(NAME, source)
    names = read_list()
    wanted = set(names)
    archive, folder = fetch_and_extract(URL, root, FILENAME, MD5, raw_dir(root, NAME), log,
                                        members=lambda m: m.rsplit("/", 1)[-1] in wanted)
    by_name = {p.name: p for p in list_images(folder)}
    missing = [s for s in names if s not in by_name]
    if missing:
        clear_folder(folder)   # extracted again next time
        raise DataScriptError(f"places365: {len(missing)} of the {len(names)} listed images are not in {archive} "
                              f"(first: {missing[0]}); it may be truncated: delete it and run again")
    paths = [by_name[s] for s in names]  # exactly N_IMAGES: read_list checked the list, the loop above the files
    images = load_images32(paths, resize=True, log=log, name=NAME)
    write_ood32(root, NAME, images, None, log, source=URL, list_file=Path(LIST_FILE).name, list_md5=LIST_MD5,
                seed=SEED, n=len(paths), files=names,
                preprocessing="shorter side to 32 (bilinear, antialiased), centre crop 32x32, RGB")
