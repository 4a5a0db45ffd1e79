"""The OOD test sets of the ImageNet benchmark curated by Huang & Li (MOS, CVPR 2021): iNaturalist, SUN and Places,
10,000 images each, with concepts that do not overlap ImageNet-1k. (The fourth, Textures, is the full DTD: see dtd.py.)

Source: <name>.tar.gz from the MOS release (pages.cs.wisc.edu/~huangrui/imagenet_ood_dataset/), md5-checked, kept in
ROOT/downloads/. Each archive is extracted into ROOT/imagenet_ood/.<set>.partial/, its image count checked, and the
folder renamed to ROOT/imagenet_ood/<set>/ only then (the archive's own sub-folders are kept, e.g.
inaturalist/iNaturalist/images/*.jpg; `ssod.data` lists the images recursively). Images are stored as distributed."""
from __future__ import annotations

from .archives import (check_count, clear_folder, extract_fresh, fetch, imagenet_ood_dir, install_folder,
                       list_images, official_only)
from .common import DataScriptError, is_prepared, keep_as_bad, record

BASE = "http://pages.cs.wisc.edu/~huangrui/imagenet_ood_dataset/"
# set name -> (archive file name, md5, number of images)
SETS = {
    "inaturalist": ("iNaturalist.tar.gz", "5be6ea8aa027d7b631916427b32cb335", 10_000),
    "sun": ("SUN.tar.gz", "8469c3ada62211477954ec1be53b12d0", 10_000),
    "places": ("Places.tar.gz", "b5cb5eba2754ae2a28beea8718db699a", 10_000),
}


def url(name) -> str:
    return BASE + SETS[name][0]


def prepare(name, root, cache=None, source="auto", log=print):
    if name not in SETS:
        raise DataScriptError(f"unknown ImageNet OOD set {name!r}; known: {sorted(SETS)}")
    final = imagenet_ood_dir(root, name)
    if is_prepared(root, name, final, log):
        return
    official_only(name, source)
    filename, md5, n_images = SETS[name]
    archive = fetch(url(name), root, filename, md5, log)
    staging = final.with_name(f".{name}.partial")
    try:
        extract_fresh(archive, staging, log)
        install(name, root, staging, n_images, log, archive)
    finally:
        clear_folder(staging)


def install(name, root, staging, n_images, log=print, archive=None, fixture=False):
    "Rename a complete folder of `n_images` images onto ROOT/imagenet_ood/<name>/ and record it in the manifest."
    final = imagenet_ood_dir(root, name)
    check_count(name, list_images(staging), n_images, staging, archive)
    if final.exists() or final.is_symlink():   # not as the manifest says: set aside now the new copy is complete
        log(f"{name}: kept the folder that was there as {keep_as_bad(final)}")
    install_folder(staging, final)
    record(root, [final], name, fixture=fixture)
    log(f"{name}: {n_images} images -> {final}")
