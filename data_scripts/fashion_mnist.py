"""Fashion-MNIST (Xiao et al. 2017), the in-distribution set of the offline `fmnist` benchmark.

Offline source: Debian's `dataset-fashion-mnist` package (installed under /usr/share/datasets/fashion-mnist, or
fetched with `apt-get download` and unpacked without root). Elsewhere: the official download through torchvision.
Output: ROOT/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte, the layout torchvision reads, each checked
against its published md5 and recorded in ROOT/manifest.json."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from ssod.files import atomic_path

from .common import (DataScriptError, OfflineError, check_md5, debian_package_dir, md5sum, record,
                     record_verified)

# md5 of the *uncompressed* IDX files (Debian's .gz files differ from the official ones; their contents do not)
FILES = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"


def raw_dir(root) -> Path:
    return Path(root) / "FashionMNIST" / "raw"


def paths(root) -> list[Path]:
    "The four IDX files, in ROOT/FashionMNIST/raw/."
    return [raw_dir(root) / f for f in FILES]


def not_matching(root) -> list[str]:
    "The raw files that are missing or differ from their published md5."
    return [p.name for p, md5 in zip(paths(root), FILES.values()) if not p.exists() or md5sum(p) != md5]


def _from_gz_dir(src: Path, root):
    for name, md5 in FILES.items():
        gz = src / f"{name}.gz"
        if not gz.exists():
            raise DataScriptError(f"{gz} is missing")
        dest = raw_dir(root) / name
        with atomic_path(dest) as tmp:
            with gzip.open(gz, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            check_md5(tmp, md5, source=gz)


def _find_offline_source(cache) -> Path:
    if all((SYSTEM_DIR / f"{f}.gz").exists() for f in FILES):
        return SYSTEM_DIR
    pkg = debian_package_dir(DEBIAN_PACKAGE, cache)
    return pkg / "usr/share/datasets/fashion-mnist"


def _official(root):
    from torchvision.datasets import FashionMNIST
    try:
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except Exception as e:  # torchvision raises RuntimeError/URLError when offline
        raise OfflineError(f"official Fashion-MNIST download failed: {e}") from e
    for name, md5 in FILES.items():
        check_md5(raw_dir(root) / name, md5)


def prepare(root, cache, source="auto", log=print):
    "Lay out Fashion-MNIST under `root`. `source`: 'auto' (Debian package, then official), 'debian' or 'official'."
    bad = not_matching(root)
    if not bad:
        record_verified(root, paths(root), "fashion_mnist", log)
        log(f"fashion_mnist: ready in {raw_dir(root)}")
        return
    if raw_dir(root).exists():
        log(f"fashion_mnist: {', '.join(bad)} in {raw_dir(root)} missing or not matching the published md5; "
            "preparing it again")
    errors = []
    if source in ("auto", "debian"):
        try:
            src = _find_offline_source(cache)
            _from_gz_dir(src, root)
            record(root, paths(root), "fashion_mnist")
            log(f"fashion_mnist: prepared from Debian package files in {src}")
            return
        except (OfflineError, DataScriptError) as e:
            errors.append(f"debian: {e}")
            if source == "debian":
                raise
    if source in ("auto", "official"):
        try:
            _official(root)
            record(root, paths(root), "fashion_mnist")
            log("fashion_mnist: prepared from the official download")
            return
        except DataScriptError as e:
            errors.append(f"official: {e}")
    raise DataScriptError("could not prepare Fashion-MNIST:\n  " + "\n  ".join(errors))
