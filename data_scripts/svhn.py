"""SVHN (Netzer et al. 2011), an OOD test set of the CIFAR-10 benchmark: the first 1,000 test images of each digit.

Source: the official test split file `test_32x32.mat` (what `torchvision.datasets.SVHN(split="test")` downloads),
md5-checked, kept in ROOT/downloads/. The .mat holds X (32, 32, 3, N) uint8 and y (N, 1) with labels 1..10, where 10
means digit 0 (mapped to 0, as torchvision does). For each digit 0..9 the first `PER_CLASS` (1,000) images in file
order are kept; the selected images stay in file order. Output: ROOT/ood32/svhn.pt, 10,000 x 3 x 32 x 32 uint8,
labels = digits."""
from __future__ import annotations

import numpy as np

from .archives import fetch, official_only, ood32_path, write_ood32
from .common import DataScriptError, is_prepared

NAME = "svhn"
URL = "http://ufldl.stanford.edu/housenumbers/test_32x32.mat"
FILENAME = "test_32x32.mat"
MD5 = "eb5a983be6a315427106f1b164d9cef3"
PER_CLASS = 1000
N_CLASSES = 10


def read_mat(path):
    "X, y of an SVHN .mat file as N x 3 x 32 x 32 uint8 images and int64 digits 0..9."
    from scipy.io import loadmat
    try:
        mat = loadmat(path)
    except Exception as e:  # scipy raises ValueError/TypeError/OSError on a corrupted file
        raise DataScriptError(f"{path} is not a readable .mat file ({type(e).__name__}: {e}); "
                              "delete it and run again") from e
    if "X" not in mat or "y" not in mat:
        raise DataScriptError(f"{path} has no X / y arrays (found {sorted(k for k in mat if not k.startswith('__'))})")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
        raise DataScriptError(f"{path}: X is {x.dtype} {x.shape}, expected uint8 (32, 32, 3, N)")
    if len(y) != x.shape[3]:
        raise DataScriptError(f"{path}: {len(y)} labels for {x.shape[3]} images")
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise DataScriptError(f"{path}: labels outside 1..10 ({y.min()}..{y.max()})")
    y = y.astype(np.int64) % 10  # 10 is digit 0
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y


def first_per_class(labels, per_class, n_classes=N_CLASSES) -> np.ndarray:
    "Indices (in file order) of the first `per_class` images of each class; error if a class has fewer."
    chosen = []
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise DataScriptError(f"svhn: class {c} has only {len(idx)} images, {per_class} needed")
        chosen.append(idx[:per_class])
    return np.sort(np.concatenate(chosen))


def convert(root, mat_path, per_class=PER_CLASS, log=print, **meta):
    "ROOT/ood32/svhn.pt from a test-split .mat file: the first `per_class` images of each digit, in file order."
    x, y = read_mat(mat_path)
    idx = first_per_class(y, per_class)
    return write_ood32(root, NAME, x[idx], y[idx], log, per_class=per_class, classes=[str(c) for c in range(N_CLASSES)],
                       indices=idx.tolist(), selection="first PER_CLASS test images of each digit, in file order", **meta)


def prepare(root, cache=None, source="auto", log=print):
    if is_prepared(root, NAME, ood32_path(root, NAME), log):
        return
    official_only(NAME, source)
    convert(root, fetch(URL, root, FILENAME, MD5, log), PER_CLASS, log, source=URL, md5=MD5)
