"""The paper's path end to end on fixtures: synthetic stand-ins written in the real sets' on-disk layouts by
`python -m data_scripts.prepare fixtures` (CIFAR-10 python batches, SVHN .mat, image folders, an ILSVRC2012-style tree)
and read through the same loaders as the real data. CPU, one short epoch, small evaluation limits:

- `train.ipynb -p benchmark cifar10 -p preset paper`: ResNet-18 at 224, every detector;
- the ImageNet folder path (pretrained weights off);
- `table2_cifar10.ipynb -p benchmark cifar10 -p preset paper` into a temporary figures folder (at 64 px: it trains four
  networks, CSI on eight views, so 224 px would take minutes here);
- `cifar10_32` (ResNet-18 for 32x32 inputs) under torchrun: one of its two processes killed after the first checkpoint
  fails the job without a hang, and the job started again resumes and ends with the weights of an uninterrupted run.
The paper preset under torchrun with two gloo processes (rank 0 evaluates) runs in `tests/test_gpu_check.py`, through
`benchmarks/gpu_check.py --cpu-smoke`.
Every record says it was made from fixtures, and so does every table made from them."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import md_tables
from ssod.benchmarks import CIFAR_OOD, IMAGENET_OOD
from ssod.paper import TABLE2, TABLE2_AVERAGE, fmt
from ssod.results import read_record
from ssod.checkpoints import load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
BIN = Path(sys.executable).parent
SMALL = {"epochs": 1, "limit_train": 256, "limit_eval": 8, "limit_tune": 8, "batch_size": 64}
# at 224: 64 training images; KNN's k fixed (its grid needs 200 to fit) and the input-perturbation detectors at one
# setting each (their grids cost 3-4 gradient passes per image); the others are tuned
AT_224 = {"limit_train": 64, "batch_size": 32, "detector_params": json.dumps(
    {"odin": {"T": 1000, "eps": 0.0014}, "mahalanobis": {"eps": 0.0014}, "knn": {"k": 10}})}


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixtures")
    r = subprocess.run([sys.executable, "-m", "data_scripts.prepare", "fixtures", "--root", str(root)], env=ENV,
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return root


def papermill(repo_root, notebook, out, params: dict, yaml: dict | None = None):
    cmd = [str(BIN / "papermill"), f"nbs/{notebook}.ipynb", str(out)]
    for k, v in params.items():
        cmd += ["-p", k, str(v)]
    for k, v in (yaml or {}).items():
        cmd += ["-y", f"{k}: {json.dumps(v)}"]
    r = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, env={**ENV, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
    assert r.returncode == 0, r.stderr[-4000:]


def assert_fixture_record(rec, benchmark, ood_sets, id_set):
    assert rec["config"]["benchmark"] == benchmark
    assert set(rec["ood"]) == set(ood_sets)
    assert set(rec["data"]["fixtures"]) == {id_set, *ood_sets}
    for per_det in rec["ood"].values():
        for m in per_det.values():
            assert 0 <= m["auroc"] <= 100 and 0 <= m["fpr95"] <= 100


def test_fixtures_refuse_a_root_with_real_data(fixture_root, data_root):
    r = subprocess.run([sys.executable, "-m", "data_scripts.prepare", "fixtures", "--root", str(data_root)], env=ENV,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "holds real data sets" in r.stderr and "choose another --root" in r.stderr


@pytest.mark.slow
def test_cifar10_paper_preset_224(tmp_path, repo_root, fixture_root):
    out = tmp_path / "run"
    papermill(repo_root, "train", tmp_path / "out.ipynb",
              {"benchmark": "cifar10", "preset": "paper", "data_root": fixture_root, "out_dir": out, **SMALL, **AT_224})
    rec = read_record(out)
    assert_fixture_record(rec, "cifar10", CIFAR_OOD, "cifar10")
    c = rec["config"]
    assert (c["arch"], c["epochs"], c["lr"], c["image_size"]) == ("resnet18", 1, 1e-4, 0)
    assert len(rec["train"]["history"]) == 1 and rec["train"]["history"][0]["train_ood"] > 0   # Eq. 9 trained
    assert rec["tuned"]["odin"] == {"T": 1000, "eps": 0.0014} and rec["tuned"]["react"]["percentile"] in (85, 90, 95, 99)
    assert {"msp", "odin", "energy", "mahalanobis", "knn", "react", "ssod"} <= set(rec["ood_avg"])


@pytest.mark.slow
def test_imagenet_folders(tmp_path, repo_root, fixture_root):
    """The ImageNet path: folders read by DataLoader workers, 1,000 classes; ResNet-18 stands in for the paper's
    pretrained ResNet-50 (no weights offline, and a from-scratch ResNet-50 costs 2x here), at 64 px (224 px is the
    CIFAR-10 test's above); the gradient detectors are left to that test too (the same code on in-memory sets)."""
    out = tmp_path / "run"
    papermill(repo_root, "train", tmp_path / "out.ipynb",
              {"benchmark": "imagenet", "preset": "paper", "pretrained": False, "arch": "resnet18", "workers": 1,
               "detectors": "msp,energy,knn,react,ssod",
               "data_root": fixture_root, "out_dir": out, **SMALL, **AT_224, "image_size": 64,
               "detector_params": json.dumps({"knn": {"k": 10}})})
    rec = read_record(out)
    assert_fixture_record(rec, "imagenet", IMAGENET_OOD, "imagenet")
    assert rec["config"]["pretrained"] is False and rec["config"]["image_size"] == 64


def test_table2_paper_preset(tmp_path, repo_root, fixture_root):
    figures = tmp_path / "figures"
    # 200 training images (the KNN grid's largest k) at 48 px: ResNet-18's last map is still 2x2 blocks for Eq. 7
    papermill(repo_root, "table2_cifar10", tmp_path / "t2.ipynb",
              {"benchmark": "cifar10", "preset": "paper", "store_dir": tmp_path / "store", "figures_dir": figures},
              {"overrides": {**SMALL, "limit_train": 200, "image_size": 48, "data_root": str(fixture_root)}})
    md = (figures / "table2_cifar10.md").read_text()
    assert "FIXTURE DATA" in md
    assert {p.suffix for p in figures.iterdir()} == {".md", ".csv", ".tex"}
    tables = md_tables(md)
    (_, paper), (_, ours) = tables["The paper"], tables["Ours"]
    for method, (vals, acc) in TABLE2.items():   # every cell of the paper's Table 2, in the order printed
        pairs = list(zip(vals[0::2], vals[1::2])) + [TABLE2_AVERAGE[method]]
        assert paper[method] == [f"{fmt(f)} / {fmt(a)}" for f, a in pairs] + [fmt(acc)]
        assert all(c not in ("—", "") and "—" not in c for c in ours[method]), ours[method]
    assert "Ours − paper" in tables                   # the paper's own sets: the difference is taken


def torchrun_args(out_dir, root, **over):
    kw = {"preset": "paper", "benchmark": "cifar10", "epochs": 1, "limit_train": 64, "limit_eval": 16,
          "batch_size": 32, "num_threads": 1, "device": "cpu", "data_root": root, "out_dir": out_dir, **over}
    return [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", "-m", "ssod.experiment",
            "--detectors", "msp,energy,ssod", "--no-tune"] + [f"--{k}={v}" for k, v in kw.items()]


@pytest.mark.slow
def test_torchrun_killed_rank_fails_then_resumes(tmp_path, fixture_root):
    """Kill one of the two processes once the first checkpoint exists: the whole job fails within a bounded time
    instead of hanging. Start it again: it resumes and ends with the weights of an uninterrupted job."""
    kw = dict(benchmark="cifar10_32", preset="demo", epochs=2, limit_train=64, limit_eval=8, lr_schedule="step",
              lr_step=1, dist_timeout=30)
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(torchrun_args(full, fixture_root, **kw), env=ENV, check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen(torchrun_args(cut, fixture_root, **kw), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    last = cut / "checkpoints" / "last.pt"
    try:
        deadline = time.time() + 300
        while not last.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert last.exists(), "the job never wrote a checkpoint"
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2, f"expected 2 running workers after the first epoch, found {workers}"
        t0 = time.time()
        os.kill(int(workers[1]), signal.SIGKILL)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail("the job hung after one of its processes was killed")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0 and time.time() - t0 < 120
    assert "ChildFailedError" in err or "Signal 9" in err or "SIGKILL" in err, err[-2000:]
    assert load_checkpoint(last)["epoch"] == 1
    r = subprocess.run(torchrun_args(cut, fixture_root, **kw), env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from" in r.stdout + r.stderr
    a, b = load_checkpoint(full / "checkpoints/last.pt")["model"], load_checkpoint(last)["model"]
    for k, v in a.items():
        torch.testing.assert_close(b[k], v, rtol=0, atol=0, msg=f"{k} differs")
    rec = read_record(cut)
    assert_fixture_record(rec, "cifar10_32", CIFAR_OOD, "cifar10")
    assert rec["config"]["arch"] == "resnet18_cifar"
