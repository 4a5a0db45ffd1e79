"""Describable Textures (DTD, Cimpoi et al. 2014): all 5,640 images of its 47 classes, used twice:

- `dtd`: an OOD test set of the CIFAR-10 benchmark, every image resized so the shorter side is 32 (bilinear,
  antialiased) and centre-cropped to 32x32 RGB. Output: ROOT/ood32/dtd.pt, 5,640 x 3 x 32 x 32 uint8, labels = index
  of the class in sorted class names (meta["classes"]), images in sorted path order (class, then file name).
- `textures_imagenet`: an OOD test set of the ImageNet benchmark, the original images.
  Output: ROOT/imagenet_ood/textures_imagenet/<class>/<file>.jpg (hard links to the extracted files where the file
  system allows, copies elsewhere); the folder is renamed into place only when complete.

Source: dtd-r1.0.1.tar.gz (official, md5-checked), downloaded once into ROOT/downloads/ and extracted once into
ROOT/raw/dtd/ (dtd/images/<class>/*.jpg; the hidden `.directory` files some class folders hold are ignored);
both sets are built from that extraction."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .archives import (check_count, fetch_and_extract, imagenet_ood_dir, install_folder, list_images,
                       load_images32, official_only, ood32_path, raw_dir, write_ood32, clear_folder)
from .common import DataScriptError, is_prepared, keep_as_bad, record

URL = "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz"
FILENAME = "dtd-r1.0.1.tar.gz"
MD5 = "fff73e5086ae6bdbea199a49dfb8a4c1"
N_IMAGES = 5_640
N_CLASSES = 47


def _images(root, log):
    "Download and extract (once) the archive; return (images folder, sorted image paths, sorted class names)."
    archive, folder = fetch_and_extract(URL, root, FILENAME, MD5, raw_dir(root, "dtd"), log)
    images = folder / "dtd" / "images"
    if not images.is_dir():
        clear_folder(folder)
        raise DataScriptError(f"{archive} has no dtd/images/ folder; delete it and run again")
    return (images, *listing(images, N_IMAGES, N_CLASSES, archive, discard=folder))


def listing(images, n_images, n_classes, archive=None, discard=None):
    "(sorted image paths, sorted class names) of a dtd/images/ folder, with its class and image counts checked."
    classes = sorted(d.name for d in images.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) != n_classes:
        if discard is not None:
            clear_folder(discard)
        raise DataScriptError(f"dtd: {len(classes)} class folders in {images}, expected {n_classes}; the archive may "
                              f"be truncated or a different version: delete {archive} and run again")
    paths = list_images(images)
    check_count("dtd", paths, n_images, images, archive, discard=discard)
    return paths, classes


def convert(root, images, paths, classes, log=print, **meta):
    "ROOT/ood32/dtd.pt from dtd/images/<class>/*.jpg: every image to 32x32, labels = class index."
    index = {c: i for i, c in enumerate(classes)}
    labels = [index[p.relative_to(images).parts[0]] for p in paths]
    x = load_images32(paths, resize=True, log=log, name="dtd")
    return write_ood32(root, "dtd", x, labels, log, n=len(paths), classes=classes,
                       files=[p.relative_to(images).as_posix() for p in paths],
                       preprocessing="shorter side to 32 (bilinear, antialiased), centre crop 32x32, RGB", **meta)


def prepare(root, cache=None, source="auto", log=print):
    "The 32x32 CIFAR-benchmark version: ROOT/ood32/dtd.pt."
    if is_prepared(root, "dtd", ood32_path(root, "dtd"), log):
        return
    official_only("dtd", source)
    convert(root, *_images(root, log), log, source=URL, md5=MD5)


def _link_or_copy(src: Path, dst: Path):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def prepare_textures_imagenet(root, cache=None, source="auto", log=print):
    "The full-resolution ImageNet-benchmark version: ROOT/imagenet_ood/textures_imagenet/<class>/*.jpg."
    final = imagenet_ood_dir(root, "textures_imagenet")
    if is_prepared(root, "textures_imagenet", final, log):
        return
    official_only("textures_imagenet", source)
    install_textures_imagenet(root, *_images(root, log), log)


def install_textures_imagenet(root, images, paths, classes, log=print, fixture=False):
    "ROOT/imagenet_ood/textures_imagenet/<class>/*.jpg from dtd/images/, renamed into place when complete."
    final = imagenet_ood_dir(root, "textures_imagenet")
    stale = final.exists() or final.is_symlink()   # not as the manifest says: set aside once the new copy is complete
    staging = final.with_name(f".{final.name}.partial")
    clear_folder(staging)
    try:
        for c in classes:
            (staging / c).mkdir(parents=True)
        for p in paths:
            _link_or_copy(p, staging / p.relative_to(images))
        if stale:
            log(f"textures_imagenet: kept the folder that was there as {keep_as_bad(final)}")
        install_folder(staging, final)
    finally:
        clear_folder(staging)
    record(root, [final], "textures_imagenet", fixture=fixture)
    log(f"textures_imagenet: {len(paths)} images in {len(classes)} classes -> {final}")
