"""benchmarks/gpu_check.py --cpu-smoke: the GPU check's code runs here on tiny sizes and fills every field it reports."""
import json
import os
import subprocess
import sys


def test_gpu_check_cpu_smoke(tmp_path, repo_root):
    out = tmp_path / "check"
    r = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--cpu-smoke", "--out", str(out)], cwd=repo_root,
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"}, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((out / "gpu_check.json").read_text())
    assert json.loads(r.stdout) == res
    assert res["cpu_smoke"] and res["device_name"].startswith("cpu")
    assert [(t["arch"], t["step"]) for t in res["throughput"]] == [(a, s) for a in ("resnet18", "resnet50")
                                                                   for s in ("ce", "ssod")]
    assert all(t["img_s"] > 0 and t["peak_gib"] > 0 for t in res["throughput"])
    assert len(res["ssod_over_ce"]) == 2 and all(r["ssod_over_ce_step_time"] > 0 for r in res["ssod_over_ce"])
    assert list(res["paper_runs"]) == ["torchrun"]   # the smoke's launchers: two gloo processes (rank 0 evaluates)
    run = res["paper_runs"]["torchrun"]
    assert run["returncode"] == 0 and "cifar10" in run["fixtures"] and run["evaluations"] == 1
    assert {"msp", "odin", "energy", "mahalanobis", "knn", "react", "ssod"} <= set(run["detectors"])
    assert "--nproc_per_node=2" in res["paper_runs"]["torchrun"]["command"]
    md = (out / "gpu_check.md").read_text()
    assert "SSOD / CE step time" in md and "torchrun" in md
