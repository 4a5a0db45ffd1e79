"""The papermill path: nbs/train.ipynb with a tiny budget writes a valid run record."""
import json
import subprocess
import sys
from pathlib import Path

from ssod.metrics import METRICS
from ssod.results import read_record


def test_train_notebook_writes_record(tmp_path, repo_root, data_root):
    out_dir = tmp_path / "run"
    cmd = [str(Path(sys.executable).parent / "papermill"), "nbs/train.ipynb", str(tmp_path / "out.ipynb"),
           "-p", "alpha", "1.5", "-p", "epochs", "1", "-p", "limit_train", "500", "-p", "limit_eval", "200", "-p", "limit_tune", "300",
           "-p", "detectors", "msp,energy,knn,ssod,ssod_posterior", "-p", "out_dir", str(out_dir)]
    r = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = read_record(out_dir)
    assert rec["config"]["alpha"] == 1.5 and rec["config"]["epochs"] == 1 and rec["config"]["limit_train"] == 500
    assert rec["config"]["benchmark"] == "fmnist_scenes"   # the default: objects in scenes, as make demo trains
    assert set(rec["ood"]) == {"mnist_scenes", "empty_scenes", "textures56", "uniform_noise56", "gaussian_noise56_sigma64",
                               "smooth_noise56"}
    for per_det in rec["ood"].values():
        assert set(per_det) == {"msp", "energy", "knn", "ssod", "ssod_posterior"}
        for m in per_det.values():
            assert set(m) == set(METRICS) and all(0 <= v <= 100 for v in m.values())
    assert 0 < rec["id_acc"] <= 100
    assert rec["tuned"]["knn"]["k"] in (1, 10, 20, 50, 100, 200)
    nb = json.loads((tmp_path / "out.ipynb").read_text())
    assert any("ID accuracy" in "".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


def test_alpha_zero_is_the_vanilla_network(tmp_path, repo_root, data_root):
    out_dir = tmp_path / "ce"
    cmd = [str(Path(sys.executable).parent / "papermill"), "nbs/train.ipynb", str(tmp_path / "ce.ipynb"),
           "-p", "alpha", "0", "-p", "benchmark", "fmnist", "-p", "epochs", "1", "-p", "limit_train", "500", "-p", "limit_eval", "200",
           "-p", "tune", "False", "-p", "out_dir", str(out_dir)]   # tuning is the other test's (and notebook 07's)
    r = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = read_record(out_dir)
    assert rec["config"]["alpha"] == 0 and not rec["tuning_auroc"]   # defaults, nothing tuned
    assert set(rec["ood_avg"]) == {"msp", "odin", "energy", "mahalanobis", "knn", "react"}
    assert "ood" not in rec["train"]["history"][0] and "train_ood" not in rec["train"]["history"][0]
