"""Fixtures: small synthetic stand-ins for the data sets of the paper's benchmarks, in their exact on-disk layouts, so
that the paper's path (CIFAR-10 at 224, ImageNet folders, torchrun) can be tested without the internet.

    python -m data_scripts.prepare fixtures --root /tmp/ssod-fixtures    # never into a root that holds real data

What is written, and which real code then reads it:

- CIFAR-10: ROOT/cifar-10-batches-py/ with `data_batch_1..5`, `test_batch` and `batches.meta`, pickled dicts with
  `data` (N x 3072 uint8, channel-major) and `labels`, as in the official archive; `ssod.data` reads them.
- SVHN: the test split's `test_32x32.mat` (X 32 x 32 x 3 x N uint8, y N x 1 with 10 for digit 0), converted by
  `svhn.convert` (first images of each digit) into ROOT/ood32/svhn.pt.
- LSUN, iSUN: folders of 32x32 images as the archives hold them; Places365: 256x256 `Places365_test_*.jpg`; DTD:
  `dtd/images/<47 classes>/*.jpg` of varied sizes; converted by the sets' own code (`archives.convert_folder32`,
  `dtd.convert`) into ROOT/ood32/<set>.pt, and DTD installed as ROOT/imagenet_ood/textures_imagenet/.
- OpenOOD v1.5 (CIFAR-10): its distributed files, `benchmark_imglist.zip` and one zip of PNGs per source set, written to
  ROOT/downloads/ and prepared by `openood.prepare` (lists, archives, sha256 pins, 32x32 conversion) into ROOT/openood32/.
- ImageNet: an ILSVRC2012-style tree, train/ and val/ with the 1,000 WordNet-id class folders, checked and linked as
  ROOT/imagenet by `imagenet.prepare(imagenet_dir=...)`, as a user's copy is; the MOS class groups through
  `mos_groups.write_groups` from a list file in the MOS format; iNaturalist, SUN and Places folders with the
  archives' inner layout (`iNaturalist/images/*.jpg`), installed by `imagenet_ood.install`.

Sizes are scaled down, explicitly (`SIZES`), except where a split of the real data depends on them: the validation
splits the project carves out of the training sets (5,000 images of CIFAR-10, 10,000 of ImageNet) need more training
images than that, so CIFAR-10 gets 5 x 1,100 and ImageNet 1,000 classes x 11 (tiny 32x32 JPEGs). Every prepared file
and folder is recorded in ROOT/manifest.json with `"fixture": true`; `ssod.manifest.fixture_sets` reads that mark, every
run record made from such data lists the sets under `data.fixtures`, and every table made from such records says so."""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ssod.data import CIFAR10_BATCHES, CIFAR10_CLASSES
from ssod.files import atomic_path
from ssod.manifest import manifest_sets, read_manifest

from . import cifar10 as cifar10_script, dtd, imagenet, imagenet_ood, mos_groups, svhn
from .archives import clear_folder, convert_folder32, imagenet_ood_dir, install_folder, raw_dir
from .common import DataScriptError, record

SEED = 20241127
SIZES = {"cifar10_train_batch": 1_100, "cifar10_test": 500, "svhn_per_class": 10, "ood32": 100, "dtd_per_class": 2,
         "imagenet_classes": 1_000, "imagenet_train_per_class": 11, "imagenet_val_per_class": 1, "imagenet_ood": 100}
SETS = ("cifar10", "svhn", "lsun", "isun", "places365", "dtd", "textures_imagenet", "imagenet", "mos_groups",
        *imagenet_ood.SETS)
MOS_INNER = {"inaturalist": "iNaturalist", "sun": "SUN", "places": "Places"}


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng([SEED, *name.encode()])


def _images(rng, n, h, w, labels=None, n_classes=10) -> np.ndarray:
    "n x h x w x 3 uint8: smooth random colour fields, brighter in one channel per class (something to learn)."
    base = rng.integers(0, 256, (n, max(2, h // 8), max(2, w // 8), 3)).astype(np.float32)
    big = np.repeat(np.repeat(base, -(-h // base.shape[1]), axis=1), -(-w // base.shape[2]), axis=2)[:, :h, :w]
    if labels is not None:
        big[np.arange(n), :, :, np.asarray(labels) % 3] += 40 + 60 * (np.asarray(labels) / n_classes)[:, None, None]
    return np.clip(big + rng.normal(0, 12, big.shape), 0, 255).astype(np.uint8)


def _save(array: np.ndarray, path: Path, fmt: str):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    path.write_bytes(buf.getvalue())


def _fresh(folder: Path) -> Path:
    "An empty `folder` (whatever was there removed)."
    clear_folder(folder)
    folder.mkdir(parents=True)
    return folder


def refuse_real_data(root):
    "Fixtures get a root of their own: stop when the manifest lists any real (unmarked) data set, or ROOT/imagenet is one."
    real = sorted({str(d) for d in manifest_sets(read_manifest(root, DataScriptError), fixture=False)})
    link = imagenet.link_path(root)
    if (link.is_symlink() or link.exists()) and Path(link.resolve()) != raw_dir(root, "ILSVRC2012").resolve():
        real.append(f"imagenet ({link})")
    if real:
        raise DataScriptError(f"{root} holds real data sets ({', '.join(real)}); fixtures are synthetic stand-ins and get "
                              "a data root of their own: choose another --root")


def cifar10(root, log=print):
    "ROOT/cifar-10-batches-py/ in the official python format."
    rng, folder = _rng("cifar10"), cifar10_script.folder(root)
    staging = _fresh(folder.with_name(f".fixture-{folder.name}"))   # not .<name>.*: clear_folder removes those
    sizes = {b: SIZES["cifar10_train_batch"] for b in CIFAR10_BATCHES["train"]}
    sizes |= {b: SIZES["cifar10_test"] for b in CIFAR10_BATCHES["test"]}
    for name, n in sizes.items():
        labels = rng.integers(0, 10, n)
        x = _images(rng, n, 32, 32, labels).transpose(0, 3, 1, 2).reshape(n, 3072)
        obj = {"batch_label": f"fixture {name}", "labels": labels.tolist(), "data": x,
               "filenames": [f"fixture_{name}_{i:05d}.png" for i in range(n)]}
        (staging / name).write_bytes(pickle.dumps(obj, protocol=2))
    meta = {"num_cases_per_batch": SIZES["cifar10_train_batch"], "label_names": CIFAR10_CLASSES, "num_vis": 3072}
    (staging / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    clear_folder(folder)
    install_folder(staging, folder)
    record(root, cifar10_script.paths(root), "cifar10", fixture=True)
    n_train = len(CIFAR10_BATCHES["train"]) * SIZES["cifar10_train_batch"]
    log(f"cifar10 (fixture): {n_train} train + {SIZES['cifar10_test']} test -> {folder}")


def svhn_set(root, log=print):
    "test_32x32.mat with 12 images per digit in a shuffled order, converted as the real file is."
    from scipy.io import savemat
    rng = _rng("svhn")
    digits = rng.permutation(np.repeat(np.arange(10), SIZES["svhn_per_class"] + 2))
    x = _images(rng, len(digits), 32, 32)
    mat = raw_dir(root, "svhn") / svhn.FILENAME
    mat.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(mat) as tmp:
        savemat(tmp, {"X": np.ascontiguousarray(x.transpose(1, 2, 3, 0)), "y": np.where(digits == 0, 10, digits)[:, None]})
    svhn.convert(root, mat, SIZES["svhn_per_class"], log, source="fixture", fixture=True)


def folder32_sets(root, log=print):
    "LSUN and iSUN (32x32 as distributed) and Places365 (256x256, resized), each a folder converted by its set's code."
    n = SIZES["ood32"]
    specs = {"lsun": ("LSUN/test", "{:03d}.jpg", 32, False), "isun": ("iSUN/iSUN_patches", "x_{}.jpeg", 32, False),
             "places365": ("test_256", "Places365_test_{:08d}.jpg", 256, True)}
    for name, (inner, pattern, size, resize) in specs.items():
        rng, folder = _rng(name), _fresh(raw_dir(root, name))
        for i, img in enumerate(_images(rng, n, size, size)):
            _save(img, folder / inner / pattern.format(i + 1), "JPEG")
        convert_folder32(name, root, folder, n, resize, log, source="fixture", fixture=True)


def dtd_sets(root, log=print):
    "dtd/images/<47 classes>/ of varied sizes: ROOT/ood32/dtd.pt and ROOT/imagenet_ood/textures_imagenet/."
    rng, images = _rng("dtd"), _fresh(raw_dir(root, "dtd")) / "dtd" / "images"
    for c in range(dtd.N_CLASSES):
        for i in range(SIZES["dtd_per_class"]):
            h, w = rng.integers(36, 80, 2)
            _save(_images(rng, 1, int(h), int(w))[0], images / f"class{c:02d}" / f"class{c:02d}_{i:04d}.jpg", "JPEG")
    paths, classes = dtd.listing(images, dtd.N_CLASSES * SIZES["dtd_per_class"], dtd.N_CLASSES)
    dtd.convert(root, images, paths, classes, log, source="fixture", fixture=True)
    clear_folder(imagenet_ood_dir(root, "textures_imagenet"))   # a fixture replaced is not kept as .bad
    dtd.install_textures_imagenet(root, images, paths, classes, log, fixture=True)


def imagenet_sets(root, log=print):
    "An ILSVRC2012-style tree registered as a user's copy is, the MOS groups of its classes, and the 3 MOS OOD folders."
    rng, tree = _rng("imagenet"), _fresh(raw_dir(root, "ILSVRC2012"))
    wnids = [f"n{10_000_000 + 7 * i:08d}" for i in range(SIZES["imagenet_classes"])]
    for split, per in (("train", SIZES["imagenet_train_per_class"]), ("val", SIZES["imagenet_val_per_class"])):
        for k, w in enumerate(wnids):
            for i, img in enumerate(_images(rng, per, 32, 32, np.full(per, k), len(wnids))):
                _save(img, tree / split / w / f"{w}_{split}_{i}.JPEG", "JPEG")
    link = imagenet.link_path(root)
    if link.is_symlink():
        link.unlink()
    imagenet.prepare(root, log=log, imagenet_dir=tree)
    record(root, [tree], "imagenet", fixture=True)
    groups = np.array_split(np.arange(len(wnids)), mos_groups.N_GROUPS)
    lines = [f"val/{wnids[c]}/x.JPEG {g} {j}" for g, members in enumerate(groups) for j, c in enumerate(members)]
    mos_groups.write_groups(root, "\n".join(lines) + "\n", len(wnids), mos_groups.N_GROUPS, log, source="fixture",
                            fixture=True)
    for name, inner in MOS_INNER.items():
        staging = _fresh(imagenet_ood_dir(root, name).with_name(f".fixture-{name}"))
        for i, img in enumerate(_images(_rng(name), SIZES["imagenet_ood"], 40, 48)):
            _save(img, staging / inner / "images" / f"{i:05d}.jpg", "JPEG")
        clear_folder(imagenet_ood_dir(root, name))
        imagenet_ood.install(name, root, staging, SIZES["imagenet_ood"], log, fixture=True)




def openood_sets(root, log=print):
    """OpenOOD v1.5's CIFAR-10 benchmark in its distributed form: a benchmark_imglist.zip with the lists and one zip of
    PNGs per source set in ROOT/downloads/, prepared by `openood.prepare` against pins computed here."""
    import zipfile
    from ssod.manifest import file_digest
    from . import openood
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    sizes = {"train_cifar10.txt": ("cifar10", "train", 200), "val_cifar10.txt": ("cifar10", "test", 30),
             "test_cifar10.txt": ("cifar10", "test", 60), **{lst: (arch, "test", 24)
                                                            for lst, arch in openood.OOD_LISTS.values()}}
    lists, members = {}, {}
    for lst, (arch, split, n) in sizes.items():
        rng = _rng(lst)
        labels = rng.integers(0, 10, n) if arch == "cifar10" else np.full(n, -1)
        rows = []
        for i, img in enumerate(_images(rng, n, 32 if arch != "tin" else 64, 32 if arch != "tin" else 64, labels)):
            inner = f"{split}/{lst[:-4]}_{i:04d}.png"
            members.setdefault(arch, {})[inner] = img
            rows.append(f"{arch}/{inner} {labels[i]}")
        lists[lst] = "\n".join(rows) + "\n"
    pins = {}
    with zipfile.ZipFile(downloads / "openood_benchmark_imglist.zip", "w") as z:
        for lst, text in lists.items():
            z.writestr(f"benchmark_imglist/cifar10/{lst}", text)
    for arch, files in members.items():
        from PIL import Image
        with zipfile.ZipFile(downloads / f"openood_{arch}.zip", "w") as z:
            for inner, img in files.items():
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="PNG")
                z.writestr(inner, buf.getvalue())
    for name in ("benchmark_imglist", *members):
        pins[name] = file_digest(downloads / f"openood_{name}.zip", "sha256")
    clear_folder(raw_dir(root, "openood"))
    for name in openood.SETS:
        openood.prepare(name, root, log=log, pins=pins, fixture=True)


BENCHMARKS = {"cifar10": (cifar10, svhn_set, folder32_sets, dtd_sets), "imagenet": (imagenet_sets,),
              "openood_cifar10": (openood_sets,)}


def prepare(root, cache=None, source="auto", log=print, benchmarks=("cifar10", "imagenet")):
    "The fixtures of `benchmarks` under `root` (refused where the root holds real data)."
    root = Path(root)
    refuse_real_data(root)
    for b in benchmarks:
        for write in BENCHMARKS[b]:
            write(root, log)
    log(f"fixtures of {', '.join(benchmarks)} -> {root} (synthetic; the manifest marks them \"fixture\")")
