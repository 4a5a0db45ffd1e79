"""Objects in shared scenes with a background-class correlation rho: the benchmarks `scenes_rho0`, `scenes_rho0.4` and
`scenes_rho0.8`.

The SSOD paper's largest gains are on scene sets (SUN, Places) against an ImageNet classifier that has learned to use
backgrounds ("biased features", Sec. 3.2). This benchmark builds that case offline, with a control:

- **Shared scenes, never shared pixels.** Every photograph of the in-distribution pool is cut into three disjoint
  regions: the first three fifths of its long side for training crops; the rest, halved along the short side, for
  validation and for test crops. ID test backgrounds are the scenes of training, never its pixels.
- **Background-class correlation rho.** The 30 in-distribution photographs form one group of 3 per class. With
  probability rho a garment of class c is pasted onto a crop of a photograph of group c, otherwise onto a crop of any
  in-distribution photograph; validation and test do the same on their regions, so the association holds at test time
  (rho is part of the in-distribution). rho = 0: backgrounds carry no class information. Every rho uses the same
  garments, crops and draws: only the photograph behind an image can differ.
- **Pools.** The 38 photographs of the offline sources (`data_scripts.scenes`: mate-backgrounds, lomiri-wallpapers-16.04
  and -20.04, scikit-image, scikit-learn) are shuffled by name with a fixed seed, before any result was seen: the first
  30 are the in-distribution pool, the last 8 the OOD pool.

OOD sets (2,000 images each), grouped before any result was seen:
- scene: `same_scenes` (test-region crops of in-distribution photographs, no object: the scenes the ID images show)
  and `new_scenes` (crops of OOD-pool photographs);
- object: `digits_same_scenes` (MNIST digits on test-region crops) and `digits_new_scenes` (on OOD-pool photographs);
- texture (`textures56`) and noise (`uniform_noise56`, `gaussian_noise56_sigma64`, `smooth_noise56`), from
  `data_scripts.scenes`;
- covariate shift, reported and never averaged into OOD: `garments_new_scenes` (the ID test garments on OOD-pool
  photographs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import DataScriptError, prepare_built_set
from .scenes import DEBIAN_PHOTOS, PACKAGE_PHOTOS, PLACEMENT_COLUMNS, SIZE, composite, dest, load_photos

SEED = 20261202
RHOS = {"scenes_rho0": 0.0, "scenes_rho0.8": 0.8, "scenes_rho0.4": 0.4}
N_CLASSES, PER_CLASS, N_OOD_POOL, N_OOD = 10, 3, 8, 2000
TRAIN_SHARE = 0.6           # of the long side: training crops; the rest is halved into validation and test
ID_SPLITS = ("train", "val", "test")
SCENE, OBJECT = ("same_scenes", "new_scenes"), ("digits_same_scenes", "digits_new_scenes")
COVARIATE = ("garments_new_scenes",)
OOD_SETS = SCENE + OBJECT + COVARIATE
SETS = tuple(f"{b}_{s}" for b in RHOS for s in ID_SPLITS) + OOD_SETS
OOD_SEED = SEED + 7   # an OOD set's seed is OOD_SEED + its index: fixed when there were two rho, so adding one changes no image
PHOTOS = sorted(set(DEBIAN_PHOTOS) | set(PACKAGE_PHOTOS))


def pools() -> tuple[list, list]:
    "(in-distribution pool of 30 photographs, class c's group being [3c, 3c + 3); OOD pool of 8), a seeded shuffle."
    order = [PHOTOS[i] for i in np.random.default_rng(SEED).permutation(len(PHOTOS))]
    n_id = N_CLASSES * PER_CLASS
    if len(order) < n_id + N_OOD_POOL:
        raise DataScriptError(f"{len(order)} photographs, {n_id + N_OOD_POOL} needed")
    return order[:n_id], order[n_id:n_id + N_OOD_POOL]


def region(photo: np.ndarray, split: str) -> np.ndarray:
    "The part of a photograph a split crops from: train the first 3/5 of the long side, val and test halves of the rest."
    tall = photo.shape[0] > photo.shape[1]
    p = photo.T if tall else photo           # work on a landscape view
    h, w = p.shape
    cut = round(TRAIN_SHARE * w)
    part = {"train": p[:, :cut], "val": p[:h // 2, cut:], "test": p[h // 2:, cut:]}[split]
    return np.ascontiguousarray(part.T if tall else part)


def background_choice(labels: np.ndarray, rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(index into the ID pool of each image's photograph, whether it was drawn from its class's group). Every image
    draws (u, g, a) the same way whatever rho: u < rho takes photograph g of its class's group, else photograph a."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    u, g, a = rng.random(n), rng.integers(PER_CLASS, size=n), rng.integers(N_CLASSES * PER_CLASS, size=n)
    from_group = u < rho
    return np.where(from_group, labels * PER_CLASS + g, a), from_group


def _paste(objects, photos, names, split, seed, choice=None):
    "Composite onto the `split` regions of `names` (None: whole photographs), crop sides scaled to each whole photo."
    backgrounds = {n: photos[n] if split is None else region(photos[n], split) for n in names}
    ref = {n: min(photos[n].shape) for n in names}
    return composite(objects, backgrounds, list(names), seed, SIZE, choice, ref)


def _objects(root, name, split):
    from ssod.data import load_dataset
    ds = load_dataset(name, split, root)
    return ds.images[:, 0].numpy(), ds.labels.numpy(), list(ds.classes)


def build(name: str, root, cache) -> tuple:
    "(images, labels, masks or None, extra tensors, meta) of one set."
    seed = OOD_SEED + OOD_SETS.index(name) if name in OOD_SETS else None
    id_pool, ood_pool = pools()
    common = {"size": SIZE, "placement_columns": PLACEMENT_COLUMNS}
    for bench, rho in RHOS.items():
        if name.startswith(bench + "_"):
            split = name[len(bench) + 1:]
            seed = SEED + 1 + ID_SPLITS.index(split)   # the same draws for every rho
            objects, labels, classes = _objects(root, "fashion_mnist", split)
            choice, from_group = background_choice(labels, rho, seed + 100)
            x, m, place = _paste(objects, load_photos(cache, id_pool), id_pool, split, seed, choice)
            meta = {"source": f"Fashion-MNIST {split} garments on {split} regions of the in-distribution pool, rho {rho}",
                    "classes": classes, "pool": id_pool, "rho": rho, "seed": seed, **common}
            return x, labels, (m if split != "train" else None), {"placement": place, "from_group": from_group}, meta
    if name not in SETS:
        raise DataScriptError(f"unknown set {name!r}; known: {', '.join(SETS)}")
    same = name in ("same_scenes", "digits_same_scenes")
    pool, split = (id_pool, "test") if same else (ood_pool, None)
    if name in SCENE:
        objects, labels, classes = np.zeros((N_OOD, 28, 28), np.uint8), None, []   # no object: a plain crop
    elif name in OBJECT:
        objects, labels, classes = _objects(root, "mnist", "test")
        idx = np.random.default_rng(SEED).permutation(len(objects))[(0 if same else N_OOD):][:N_OOD]  # disjoint digits
        objects, labels = objects[idx], labels[idx]
    else:
        objects, labels, classes = _objects(root, "fashion_mnist", "test")
        idx = np.random.default_rng(SEED).permutation(len(objects))[:N_OOD]
        objects, labels = objects[idx], labels[idx]
    x, m, place = _paste(objects, load_photos(cache, pool), pool, split, seed)
    what = "crops" if name in SCENE else "MNIST test digits" if name in OBJECT else "Fashion-MNIST test garments"
    where = "test regions of the in-distribution pool" if same else "the OOD pool"
    meta = {"source": f"{what} on {where}", "classes": classes, "pool": pool, "seed": seed, **common}
    return x, labels, (None if name in SCENE else m), {"placement": place}, meta


def prepare(name, root, cache=None, source="auto", log=print):
    "Prepare one set (a benchmark name prepares its three ID splits); skipped when prepared and matching the manifest."
    names = [f"{name}_{s}" for s in ID_SPLITS] if name in RHOS else [name]
    cache = Path(cache) if cache is not None else Path(root) / ".cache"
    for n in names:
        if n not in SETS:
            raise DataScriptError(f"unknown set {n!r}; known: {', '.join(SETS)}")

        def built(n=n):
            x, y, masks, extra, meta = build(n, root, cache)
            return x, y, meta, {"masks": masks, "extra": extra}
        prepare_built_set(root, n, dest(root, n), built, log, "scikit-image, scikit-learn and Pillow")
