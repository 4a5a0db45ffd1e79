"""benchmarks/gpu_check.py --cpu-smoke on a Python where fastcore, faiss, nbdev and papermill cannot be imported (as on
the GPU image), nor the packages of the optional extras: it completes, a part forced to run out of time is recorded
while the later parts still run, and the JSON holds every part and the numbers the first GPU run is to quote."""
import json
import os
import subprocess
import sys

BLOCKED = ("fastcore", "faiss", "nbdev", "papermill",   # development packages the GPU image lacks
           "skimage", "matplotlib", "seaborn", "tabulate", "jinja2")   # optional extras (data, plots, tables)


def test_gpu_check_cpu_smoke_without_dev_packages(tmp_path, repo_root):
    site = tmp_path / "site"
    site.mkdir()   # imported at start-up by every Python started below (parts, torchrun's processes)
    (site / "sitecustomize.py").write_text("import sys\nfor name in %r:\n    sys.modules[name] = None\n" % (BLOCKED,))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(site), str(repo_root)])}
    check = subprocess.run([sys.executable, "-c", "import faiss"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "faiss" in check.stderr            # the wrapper does block them
    out, work = tmp_path / "check", tmp_path / "work"
    r = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--cpu-smoke", "--out", str(out), "--work", str(work),
                        "--limit", "C=0.01"], cwd=repo_root, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]        # 1: a part did not finish (C, on purpose)
    sent_back = [f for f in out.rglob("*") if f.is_file()]              # what a GPU machine's report folder returns
    assert len(sent_back) <= 8 and all(f.stat().st_size < 16 * 2**20 for f in sent_back), sent_back
    assert (work / "fixtures").is_dir()                                 # the large files stayed in the work folder
    res = json.loads((out / "gpu_check.json").read_text())
    assert res["cpu_smoke"] and res["library_import"] == "ok" and res["device_name"].startswith("cpu")
    status = {name: part["status"] for name, part in res["parts"].items()}
    assert status == {"A": "ok", "B": "ok", "C": "timeout", "D": "ok", "F": "ok", "G1": "skipped", "G2": "ok",
                      "E": "ok"}, {n: p.get("error") for n, p in res["parts"].items()}
    assert "within its limit" in res["parts"]["C"]["error"]
    a = res["parts"]["A"]["result"]["ssod"]       # the GPU's path, counted on the CPU: 2 reads an epoch, none a step
    assert a["host_reads_per_epoch"] == 2, a
    b = res["parts"]["B"]["result"]
    assert {"resnet18_ce_b4_cudnn_on", "resnet18_ssod_b4_cudnn_on", "bare_resnet18_10_b4"} <= set(b)
    assert all(v["img_s"] > 0 and v["tflops_per_step"] > 0 for v in b.values() if isinstance(v, dict))
    assert res["parts"]["D"]["result"]["folder_workers_2"]["epoch1"]["images"] > 0
    assert res["parts"]["E"]["result"]["speedup"] > 0 and res["parts"]["F"]["result"]["checkpoint"]["mib"] > 0
    g = res["parts"]["G2"]["result"]
    assert g["returncode"] == 0 and g["evaluations"] == 1 and "--nproc_per_node=2" in g["command"]
    assert "cifar10" in g["record"]["fixtures"]
    assert {"msp", "odin", "energy", "mahalanobis", "knn", "react", "ssod"} <= set(g["record"]["detectors"])
    s = res["summary"]
    assert s["ssod_img_s_b4"] > 0 and s["ssod_over_ce_step_time_b4"] > 0 and s["compile_speedup"] > 0
    assert s["ssod_host_reads_per_step"] < 1 and s["paper_preset_epoch_s_G2"]
    md = (out / "gpu_check.md").read_text()
    assert "| C | 3-step profile | timeout |" in md and "## Summary" in md


def test_the_profile_times_the_steps_alone(tmp_path, repo_root):
    out = tmp_path / "c"
    r = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--cpu-smoke", "--parts", "C", "--out", str(out)],
                       cwd=repo_root, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    c = json.loads((out / "gpu_check.json").read_text())["parts"]["C"]["result"]
    assert 0 <= c["idle_share"] < 0.5 and c["busy_ms"] > 0, c       # the profiler's start and stop are not idle time
    assert sorted(f.name for f in out.iterdir()) == ["gpu_check.json", "gpu_check.md"]
