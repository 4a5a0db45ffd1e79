"""OpenOOD v1.5's CIFAR-10 protocol on fixtures: its distributed files (a list archive and one image archive per source
set) prepared against sha256 pins, a wrong file refused; a run from the command line and from papermill; the record in
OpenOOD's layout with its near / far groups beside the leaderboard's rows."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_scripts import fixtures, openood
from data_scripts.common import ChecksumError

RUN = ["--benchmark", "openood_cifar10", "--arch", "small_resnet", "--epochs", "1", "--batch-size", "32",
       "--precision", "fp32", "--detectors", "msp,knn,ssod", "--detector-params", '{"knn": {"k": 5}}', "--no-tune"]


@pytest.fixture(scope="module")
def openood_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("openood")
    fixtures.prepare(root, log=lambda *a: None, benchmarks=("openood_cifar10",))
    return root


def test_the_sets_follow_the_lists(openood_root):
    import torch
    from ssod.data import load_dataset
    lists = openood.raw_dir(openood_root, "openood") / "benchmark_imglist" / "benchmark_imglist" / "cifar10"
    for name, (lst, _) in openood.OOD_LISTS.items():
        ds = load_dataset(name, "test", openood_root)
        rows = openood.read_imglist(lists / lst)
        assert ds.images.shape == (len(rows), 3, 32, 32) and ds.images.dtype == torch.uint8, name
        assert ds.labels.tolist() == [r[1] for r in rows], name
    for split, lst in openood.ID_SPLITS.items():
        assert len(load_dataset("openood_cifar10", split, openood_root)) == len(openood.read_imglist(lists / lst))


def test_a_file_that_does_not_match_its_pin_is_refused(openood_root, tmp_path):
    root = tmp_path / "data"
    (root / "downloads").mkdir(parents=True)
    src = openood_root / "downloads" / "openood_benchmark_imglist.zip"
    (root / "downloads" / src.name).write_bytes(src.read_bytes())
    pins = {"benchmark_imglist": "0" * 64}
    with pytest.raises(ChecksumError, match=r"expected sha256 0{64}, got [0-9a-f]{64}; kept the file as .*\.bad"):
        openood.prepare("openood_mnist", root, log=lambda *a: None, pins=pins)
    assert (root / "downloads" / (src.name + ".bad")).exists() and not (root / "openood32").exists()


def test_from_the_command_line_and_papermill(openood_root, tmp_path, repo_root):
    cli = tmp_path / "cli"
    r = subprocess.run([sys.executable, "-m", "ssod.experiment", *RUN, "--data-root", str(openood_root), "--out-dir",
                        str(cli), "--alpha", "1.5"], cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    pm = tmp_path / "pm"
    params = ["-p", "benchmark", "openood_cifar10", "-p", "arch", "small_resnet", "-p", "epochs", "1",
              "-p", "batch_size", "32", "-p", "precision", "fp32", "-p", "alpha", "0", "-p", "tune", "False",
              "-p", "detectors", "msp,knn", "-p", "detector_params", '{"knn": {"k": 5}}',
              "-p", "data_root", str(openood_root), "-p", "out_dir", str(pm)]
    r = subprocess.run([str(Path(sys.executable).parent / "papermill"), "nbs/train.ipynb", str(tmp_path / "out.ipynb"),
                        *params], cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    for run, dets in ((cli, {"msp", "knn", "ssod"}), (pm, {"msp", "knn"})):
        rec = json.loads((run / "record.json").read_text())
        assert set(rec["ood_groups"]) == {"near", "far"} and set(rec["ood_avg"]) == dets
        assert set(rec["data"]["fixtures"]) >= {"openood_cifar10", *openood.OOD_LISTS} - {"openood_val_tin"}
    r = subprocess.run([sys.executable, "-m", "ssod.openood", str(pm), str(cli)], cwd=repo_root, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.startswith("FIXTURE DATA"), r.stderr[-2000:]
    header = next(l for l in r.stdout.splitlines() if "CIFAR-100" in l).split()
    assert header == ["CIFAR-100", "TIN", "near", "MNIST", "SVHN", "Texture", "Places365", "far", "ID", "acc"]
    assert "knn (small_resnet, vanilla), ours" in r.stdout and "ssod (small_resnet, SSOD (alpha 1.5)), ours" in r.stdout
    assert "KNN (ResNet-18), leaderboard" in r.stdout and "OOD positive" in r.stdout
