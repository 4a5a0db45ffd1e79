"""One command for the first GPU at hand: training throughput and peak memory of the paper's networks, and the paper
preset end to end (train, every detector, record) on CIFAR-10 fixtures, alone and under torchrun.

    python benchmarks/gpu_check.py --out gpu_check        # on one GPU; sized for 8 minutes on an H100, not yet run on one
    python benchmarks/gpu_check.py --cpu-smoke --out /tmp/smoke   # the same code on a CPU, tiny sizes (a test runs it)

Writes OUT/gpu_check.json and OUT/gpu_check.md and prints the JSON. Needs the library, its runtime dependencies and
torch/torchvision; not nbdev, papermill or the internet (the CIFAR-10 stand-ins are written by `data_scripts.fixtures`).

(a, b) throughput: ResNet-18 and ResNet-50 at 224, a full training step (device-side RandomResizedCrop of 32x32 uint8
images kept on the device, as the CIFAR-10 path does; forward, loss, backward, AdamW) for the CE step (alpha = 0) and
the SSOD step (alpha = 1.5, Eq. 7-9), bf16 autocast, channels-last, without and with `torch.compile`; images/s and the
SSOD/CE step-time ratio (the paper's claim: SSOD costs nothing extra; target <= 1.05). (c) the peak memory of each,
each configuration in its own process. (d) `python -m ssod.experiment --preset paper --benchmark cifar10` for one short
epoch on the fixtures, evaluated with every detector; (e) the same under `torchrun --nproc_per_node 1` (2 processes
of 1 thread in the CPU smoke, so it also checks the multi-process path). Parts that
fail are recorded with their error and the rest goes on; parts past `--budget-s` are recorded as skipped."""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GPU = dict(batch=256, size=224, steps=20, warmup=5, compile=(0, 1), precision="bf16", nproc=1, in_process=False,
           launchers=("single", "torchrun"),
           run=dict(limit_train=0, limit_eval=0, limit_tune=1000, batch_size=128))
# the smoke runs torchrun with 2 CPU processes of 1 thread (gloo), so it also checks the multi-process paper preset;
# it runs (e) alone: (d) is the same function with another launcher, and tests/test_paper_path.py runs the
# single-process paper preset end to end
SMOKE = dict(batch=4, size=64, steps=1, warmup=1, compile=(0,), precision="fp32", nproc=2, in_process=True,
             launchers=("torchrun",),
             run=dict(limit_train=256, limit_eval=8, limit_tune=8, batch_size=32, image_size=64, num_threads=1))
ARCHS = ("resnet18", "resnet50")


def throughput(device, p, budget_end):
    "(a-c): one subprocess per (arch, compile, step); img/s, peak GiB, and SSOD/CE per (arch, compile)."
    rows = []
    for arch in ARCHS:
        for comp in p["compile"]:
            for step, alpha in (("ce", 0.0), ("ssod", 1.5)):
                row = dict(arch=arch, compile=bool(comp), step=step, batch=p["batch"], size=p["size"],
                           precision=p["precision"], channels_last=True)
                if time.time() > budget_end:
                    rows.append({**row, "skipped": "time budget spent"})
                    continue
                c = dict(device=device, arch=arch, size=p["size"], src=32, channels=3, batch=p["batch"],
                         steps=p["steps"], warmup=p["warmup"], precision=p["precision"], channels_last=1,
                         compile=comp, alpha=alpha)
                t0 = time.time()
                if p["in_process"]:  # the smoke: the same step in this process (its peak memory is then cumulative)
                    from benchmarks.throughput import run_one
                    row.update(run_one(c))
                else:                # one process per configuration, so each peak memory is its own
                    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--one",
                                        json.dumps(c)], capture_output=True, text=True,
                                       timeout=max(60, budget_end - time.time() + 60))
                    if r.returncode != 0:
                        row["error"] = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1][:300]
                    else:
                        row.update(json.loads(r.stdout.strip().splitlines()[-1]))
                row["wall_s"] = round(time.time() - t0, 1)
                rows.append(row)
    ratios = []
    for arch in ARCHS:
        for comp in p["compile"]:
            ce, ss = ({r["step"]: r for r in rows if r["arch"] == arch and r["compile"] == bool(comp)}.get(s, {})
                      for s in ("ce", "ssod"))
            if "img_s" in ce and "img_s" in ss:
                ratios.append(dict(arch=arch, compile=bool(comp), ssod_over_ce_step_time=ce["img_s"] / ss["img_s"]))
    return rows, ratios


def cli_run(cmd, out_dir, env):
    "Run one training command; its wall time, return code, and the record's headline numbers."
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    res = {"command": " ".join(map(str, cmd)), "wall_s": round(time.time() - t0, 1), "returncode": r.returncode,
           "evaluations": r.stdout.count("evaluating ")}   # under torchrun: rank 0 alone evaluates
    rec_path = Path(out_dir) / "record.json"
    if r.returncode != 0 or not rec_path.exists():
        return {**res, "error": (r.stderr.strip().splitlines() or ["no record written"])[-1][:300]}
    rec = json.loads(rec_path.read_text())
    return {**res, "id_acc": rec["id_acc"], "fixtures": rec["data"]["fixtures"], "detectors": sorted(rec["ood_avg"]),
            "train_s": round(rec["timing"]["train_s"], 1), "eval_s": round(rec["timing"]["eval_s"], 1),
            "detector_s": {k: round(v, 1) for k, v in rec["timing"]["detector_s"].items()},
            "device": rec["runtime"].get("device_name"), "precision": rec["runtime"].get("precision")}


def paper_runs(out, device, p, budget_end):
    "(d, e): the paper preset on the CIFAR-10 fixtures, as one process and under torchrun with one process."
    from data_scripts import fixtures
    data = out / "fixtures"
    if not (data / "manifest.json").exists():
        fixtures.prepare(data, log=lambda *_: None, benchmarks=("cifar10",))
    args = ["--preset", "paper", "--benchmark", "cifar10", "--epochs", "1", "--device", device, "--data_root", str(data)]
    args += [f"--{k}={v}" for k, v in p["run"].items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if p["nproc"] > 1 and device == "cpu" else {**os.environ}
    runs = {}
    launchers = {"single": [sys.executable],
                 "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={p['nproc']}"]}
    for name in p["launchers"]:
        launcher = launchers[name]
        if time.time() > budget_end:
            runs[name] = {"skipped": "time budget spent"}
            continue
        run_dir = out / f"run_{name}"
        runs[name] = cli_run(launcher + ["-m", "ssod.experiment"] + args + ["--out_dir", str(run_dir), "--resume=false"],
                             run_dir, env)
    return runs


def markdown(res) -> str:
    lines = [f"# GPU check on {res['device_name']}", "", f"`{res['command']}`; torch {res['torch']}, "
             f"{res['when']}, {res['total_s']:.0f} s in all" + (" (CPU smoke: tiny sizes, not a measurement)"
                                                                 if res["cpu_smoke"] else ""), "",
             "| arch | compile | step | batch | input | img/s | peak GiB |", "|---|---|---|---:|---:|---:|---:|"]
    for r in res["throughput"]:
        val = (f"{r['img_s']:,.0f} | {r['peak_gib']:.2f}" if "img_s" in r
               else f"{r.get('error') or r.get('skipped')} | ")
        lines.append(f"| {r['arch']} | {r['compile']} | {r['step']} | {r['batch']} | {r['size']} | {val} |")
    lines += ["", "| arch | compile | SSOD / CE step time |", "|---|---|---:|"]
    lines += [f"| {r['arch']} | {r['compile']} | {r['ssod_over_ce_step_time']:.3f} |" for r in res["ssod_over_ce"]]
    lines += ["", "| paper preset on CIFAR-10 fixtures | wall s | train s | eval s | ID acc | detectors |",
              "|---|---:|---:|---:|---:|---|"]
    for name, r in res["paper_runs"].items():
        if "id_acc" in r:
            lines.append(f"| {name} | {r['wall_s']} | {r['train_s']} | {r['eval_s']} | {r['id_acc']:.2f} | "
                         f"{', '.join(r['detectors'])} |")
        else:
            lines.append(f"| {name} | {r.get('wall_s', '')} | | | | {r.get('error') or r.get('skipped')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--out", default="gpu_check", help="output folder")
    a.add_argument("--cpu-smoke", action="store_true", help="run the same code on the CPU with tiny sizes")
    a.add_argument("--budget-s", type=float, default=420, help="start no new part after this many seconds")
    args = a.parse_args(argv)
    t0 = time.time()
    device = "cpu" if args.cpu_smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        a.error("no CUDA device here; use --cpu-smoke to check the script on a CPU")
    p = SMOKE if args.cpu_smoke else GPU
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from ssod.runtime import device_name
    budget_end = t0 + args.budget_s
    rows, ratios = throughput(device, p, budget_end)
    res = {"command": "python benchmarks/gpu_check.py" + (" --cpu-smoke" if args.cpu_smoke else ""),
           "cpu_smoke": args.cpu_smoke, "device_name": device_name(device), "torch": torch.__version__,
           "cuda": torch.version.cuda, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "throughput": rows, "ssod_over_ce": ratios, "paper_runs": paper_runs(out, device, p, budget_end)}
    res["total_s"] = round(time.time() - t0, 1)
    (out / "gpu_check.json").write_text(json.dumps(res, indent=1))
    (out / "gpu_check.md").write_text(markdown(res))
    print(json.dumps(res, indent=1))
    failed = [r for r in rows if "error" in r] + [r for r in res["paper_runs"].values() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
