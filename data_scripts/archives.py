"""Plumbing shared by the data sets that are downloaded as archives (the CIFAR-10 and ImageNet benchmarks).

Layout under the data root ROOT:

- ROOT/downloads/<file>      the downloaded archives, kept (a partial download, <file>.part, resumes);
- ROOT/raw/<set>/            extracted archives that are read again (DTD, CIFAR-10 staging); `.complete` marks a
                             finished extraction, anything else there is wiped and extracted again;
- ROOT/ood32/<set>.pt        the 32x32 OOD sets of the CIFAR-10 benchmark (`common.save_image_set`, written atomically);
- ROOT/imagenet_ood/<set>/   image folders of the ImageNet benchmark, renamed into place only when complete;
- ROOT/manifest.json         every prepared file (sha256, size) and folder (file count, listing hash), see
                             `common.record`: a prepared set that does not match it is prepared again.

32x32 preprocessing (what the CIFAR baselines do for OOD sets): images that are not 32x32 are resized so the
shorter side is 32 (bilinear, antialiased) and centre-cropped to 32x32; sets that must already be 32x32 are checked.
Every image is converted to RGB."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .common import DataScriptError, download, is_prepared, save_image_set, safe_extract

# the suffixes `ssod.data.image_folder` reads (ssod.data.IMAGE_EXTS)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SIZE = 32


def downloads_dir(root) -> Path:
    return Path(root) / "downloads"


def raw_dir(root, name) -> Path:
    return Path(root) / "raw" / name


def ood32_path(root, name) -> Path:
    return Path(root) / "ood32" / f"{name}.pt"


def imagenet_ood_dir(root, name) -> Path:
    return Path(root) / "imagenet_ood" / name


def official_only(name, source):
    "These sets have one source, the official download; refuse the offline package sources clearly."
    if source not in ("auto", "official"):
        raise DataScriptError(f"{name}: no {source!r} source exists for this data set, only the official download "
                              "(use --source official or auto)")


def fetch(url, root, filename, md5, log=print) -> Path:
    "Download `url` to ROOT/downloads/`filename` (resumable, md5-checked; an existing good file is reused)."
    dest = downloads_dir(root) / filename
    if not dest.exists():
        part = dest.with_name(dest.name + ".part")
        resume = f" (resuming after {part.stat().st_size} bytes)" if part.exists() else ""
        log(f"downloading {url} -> {dest}{resume}")
    return download(url, dest, md5)


def clear_folder(folder: Path):
    "Remove `folder` and the temporary folders `safe_extract` may have left next to it when a run was killed."
    for stale in folder.parent.glob(f".{folder.name}.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)


def extract_fresh(archive, dest, log=print, members=None) -> Path:
    "Extract `archive` into a new `dest` (anything there before is removed). On failure nothing is left behind."
    dest = Path(dest)
    clear_folder(dest)
    log(f"extracting {Path(archive).name} -> {dest}")
    try:
        safe_extract(archive, dest, members=members)
    except BaseException:
        clear_folder(dest)
        raise
    return dest


def extract_once(archive, dest, log=print, members=None) -> Path:
    "Like `extract_fresh`, but a finished extraction (marked by dest/.complete) is reused."
    dest = Path(dest)
    if (dest / ".complete").exists():
        return dest
    extract_fresh(archive, dest, log, members)
    (dest / ".complete").touch()
    return dest


def fetch_and_extract(url, root, filename, md5, dest, log=print, members=None):
    """(archive path, extracted folder): a finished extraction in `dest` is reused without touching the archive
    (which may have been deleted to save space); otherwise download (or reuse) the archive and extract it afresh."""
    archive = downloads_dir(root) / filename
    if (Path(dest) / ".complete").exists():
        return archive, Path(dest)
    archive = fetch(url, root, filename, md5, log)
    return archive, extract_once(archive, dest, log, members)


def list_images(folder) -> list[Path]:
    "Image files under `folder`, recursively, sorted by path; hidden files (e.g. DTD's `.directory`) are skipped."
    folder = Path(folder)
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out += [Path(dirpath) / f for f in filenames if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(out)


def check_count(name, paths, expected, where, archive=None, discard=None):
    """Raise a clear error when `paths` does not hold `expected` images; `discard`: an extracted folder to remove
    first, so that the next run extracts again."""
    if len(paths) != expected:
        if discard is not None:
            clear_folder(Path(discard))
        hint = (f"; the archive may be truncated or a different version: delete {archive} and run again"
                if archive is not None else "")
        raise DataScriptError(f"{name}: found {len(paths)} images in {where}, expected {expected}{hint}")


def read_rgb(path) -> np.ndarray:
    "Decode an image file to H x W x 3 uint8 (RGB), with a clear error for a broken file."
    from PIL import Image
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError (truncated), SyntaxError, ...
        raise DataScriptError(f"cannot decode image {path} ({type(e).__name__}: {e}); delete the extracted folder "
                              "and the archive and run again") from e


def resize_center_crop(img: np.ndarray, size: int = SIZE) -> np.ndarray:
    """H x W x 3 uint8 -> 3 x size x size uint8: shorter side resized to `size` (bilinear, antialiased), centre crop.
    torchvision v2 Resize(size, antialias=True) + CenterCrop, as the 32x32 OOD sets of the CIFAR-10 benchmark are made."""
    import torch
    from torchvision.transforms.v2 import functional as TF
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
    if t.shape[1:] != (size, size):
        t = TF.resize(t, [size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        t = TF.center_crop(t, [size, size])
    return t.contiguous().numpy()


def load_images32(paths, resize: bool, size: int = SIZE, log=print, name="") -> np.ndarray:
    """Decode `paths` to N x 3 x size x size uint8. resize=False: every image must already be size x size
    (a clear error names the first that is not); resize=True: shorter side to `size`, centre crop."""
    out = np.empty((len(paths), 3, size, size), np.uint8)
    for i, p in enumerate(paths):
        img = read_rgb(p)
        if resize:
            out[i] = resize_center_crop(img, size)
        else:
            if img.shape[:2] != (size, size):
                raise DataScriptError(f"{name}: {p} is {img.shape[1]}x{img.shape[0]}, expected {size}x{size}; "
                                      "the archive is not the expected version")
            out[i] = img.transpose(2, 0, 1)
        if log and (i + 1) % 2000 == 0:
            log(f"{name}: decoded {i + 1}/{len(paths)} images")
    return out


def write_ood32(root, name, images, labels=None, log=print, **meta) -> Path:
    "Write ROOT/ood32/<name>.pt atomically (it appears only when complete) and record it in the manifest."
    path = ood32_path(root, name)
    save_image_set(path, images, labels, root=root, name=name, **meta)
    log(f"{name}: {len(images)} images -> {path}")
    return path


def install_folder(staging: Path, final: Path):
    "Rename a finished staging folder onto `final` (which must not exist)."
    final = Path(final)
    if final.exists() or final.is_symlink():
        raise DataScriptError(f"{final} appeared while it was being prepared; remove it and run again")
    os.replace(staging, final)
    return final


def prepare_folder32(name, root, source, log, url, filename, md5, n_images, resize, raw=None):
    """The flow of an archive of images that becomes ROOT/ood32/<name>.pt: download (resumable, md5-checked),
    extract into ROOT/raw/<name>/ (once), check the image count, decode to 32x32 RGB, write atomically."""
    out = ood32_path(root, name)
    if is_prepared(root, name, out, log):
        return out
    official_only(name, source)
    archive, folder = fetch_and_extract(url, root, filename, md5, raw or raw_dir(root, name), log)
    return convert_folder32(name, root, folder, n_images, resize, log, archive, source=url, md5=md5 or "")


def convert_folder32(name, root, folder, n_images, resize, log=print, archive=None, **meta):
    "ROOT/ood32/<name>.pt from an extracted folder of images: count checked, decoded to 32x32 RGB in path order."
    paths = list_images(folder)
    check_count(name, paths, n_images, folder, archive, discard=folder if archive is not None else None)
    images = load_images32(paths, resize=resize, log=log, name=name)
    return write_ood32(root, name, images, None, log, n=len(paths),
                       preprocessing="shorter side to 32 (bilinear, antialiased), centre crop 32x32, RGB" if resize
                       else "none (32x32 RGB as distributed)",
                       files=[p.relative_to(folder).as_posix() for p in paths], **meta)
