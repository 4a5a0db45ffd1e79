"""One command for the first GPU at hand; it always reports.

    python benchmarks/gpu_check.py --out gpu_check                  # one or more GPUs
    python benchmarks/gpu_check.py --cpu-smoke --out /tmp/smoke     # the same code on a CPU, tiny sizes (a test runs it)

Every part runs in a process of its own (forked from this one, which has imported torch and the library but never
touches CUDA) with its own time limit: a part that fails, crashes or runs out of time is recorded with its error or what
it measured so far, and the next part starts. OUT/gpu_check.json and OUT/gpu_check.md are rewritten after every part,
and they are all OUT holds: the parts write their files (fixtures, runs, checkpoints, JPEGs, logs) into --work, by
default a new temporary folder, so the report folder stays two small files to send back.
Nothing on the way needs the internet or a development package (fastcore, faiss, nbdev, papermill): the library's
runtime dependencies and torch/torchvision suffice, the CIFAR-10 stand-ins are written by `data_scripts.fixtures`.

The parts, in the order they run (the GPU sizes: ResNet-18 at 224 on 32x32 uint8 CIFAR-sized images cropped on the
device, bf16, channels-last, the trainer's own loader and step):

- A, host syncs per training step, CE (alpha = 0) and SSOD (alpha = 1.5): whole epochs of 8 steps through
  `Trainer.train_epoch`, counted with `torch.cuda.set_sync_debug_mode` (and with `benchmarks/host_reads.py`);
- B, step time by CUDA events, images/s, peak memory and MFU (FLOPs by `torch.utils.flop_counter`, peak from the
  GPU's datasheet): CE and SSOD at batch 256 and 32, cudnn.benchmark off and on; ResNet-50 with 1,000 classes at batch
  256; the bare torchvision model with fused AdamW and no loader (the ceiling);
- C, a 3-step profile of the SSOD step at batch 256: the top kernels and the share of time the GPU is idle;
- D, the loaders alone: the CIFAR device loader; the folder loader over 3,000 synthetic JPEGs (500x375) with 8 and 15
  workers, two epochs (the workers persist);
- F, a checkpoint of the SSOD trainer saved and loaded;
- G, `python -m ssod.experiment --preset paper --benchmark cifar10` for one epoch on the CIFAR-10 fixtures with every
  detector, alone, then under `torchrun --nproc_per_node 2` where two GPUs exist;
- E, `torch.compile` of the SSOD step (compile time, then step time against eager), last: it is the longest.

Time: each part has a limit, and no part starts past the total budget (default 460 s): the default run ends within 8
minutes. The expected times on an H100/H200 are estimates (no GPU has run this yet): A 25 s, B 70 s, C 20 s, D 35 s,
F 10 s, G 60 s + 70 s, E 120 s, about 410 s in all, each part's start-up (CUDA, cuDNN autotuning) included.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# the parts are forked from this process: it must not initialise CUDA, and NVML answers torch.cuda.is_available()
# without the CUDA runtime (after which a forked process could not use CUDA)
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

GPU = dict(device="cuda", size=224, src=32, arch="resnet18", batches=(256, 32), steps=20, warmup=5, sync_batch=32,
           sync_steps=8, profile_steps=3, precision="bf16", r50=True, loader_images=12_800, jpegs=3000,
           jpeg_size=(500, 375), folder_batch=256, folder_workers=(8, 15), compile_steps=10, compile_backend="inductor",
           cudnn_benchmark=(False, True),
           threads=None, run=dict(limit_tune=1000), nproc=2, budget_s=460)
# the smoke: the same parts, tiny (64 px keeps ResNet-18's last map at 2x2 blocks for Eq. 7), fp32 on 1-2 threads
SMOKE = dict(device="cpu", size=64, src=32, arch="resnet18", batches=(4,), steps=2, warmup=1, sync_batch=4,
             sync_steps=3, profile_steps=2, precision="fp32", r50=False, loader_images=64, jpegs=24, jpeg_size=(80, 60),
             folder_batch=8, folder_workers=(1, 2), compile_steps=2, compile_backend="eager", threads=1,
             cudnn_benchmark=(True,),
             run=dict(limit_train=256, limit_eval=8, limit_tune=8, batch_size=32, image_size=64, num_threads=1),
             nproc=2, budget_s=600,
             skip={"G1": "the smoke runs G2 alone: the same command under torchrun (2 CPU processes of 1 thread), which "
                         "also checks the multi-process path; tests/test_paper_path.py runs it in one process"})
# (name, what it measures, time limit in s on a GPU, in the smoke)
PARTS = [("A", "host syncs per training step", 60, 120), ("B", "step time, images/s, memory, MFU", 150, 180),
         ("C", "3-step profile", 45, 120), ("D", "loaders alone", 75, 120), ("F", "checkpoint save and load", 30, 120),
         ("G1", "paper preset, one process", 120, 240), ("G2", "paper preset, torchrun 2 processes", 120, 240),
         ("E", "torch.compile of the SSOD step", 150, 180)]
MIN_START_S = 10   # no part starts with less of the budget left
# nominal dense bf16 peak FLOP/s from the vendors' datasheets, by a substring of torch.cuda.get_device_name
PEAK_BF16 = [("H200", 989e12), ("GH200", 989e12), ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12),
             ("A100", 312e12), ("L40S", 362e12)]


# ---- what runs inside a part's process

class Part:
    "The result of one part, written to OUT/parts/NAME.json after every addition (what a killed part leaves)."
    def __init__(self, out: Path, name: str):
        self.path, self.data = out / "parts" / f"{name}.json", {}
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, key, value):
        self.data[key] = value
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)
        return value


def _sync(device):
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_trainer(p, alpha=1.5, batch=None, arch=None, benchmark="cifar10", out_dir=None, **kw):
    "The trainer of the paper preset with the check's sizes (built: model, fused AdamW on GPUs, schedule)."
    from ssod.config import make_config
    from ssod.train import Trainer
    cfg = make_config("paper", benchmark=benchmark, arch=arch or p["arch"], alpha=alpha, image_size=p["size"],
                      batch_size=batch or p["batches"][0], device=p["device"], precision=p["precision"],
                      channels_last=True, pretrained=False, num_threads=p["threads"] or 0,
                      out_dir=str(out_dir or tempfile.mkdtemp(prefix="gpu_check_")), **kw)
    return Trainer(cfg, log=lambda *a, **k: None, progress=False).build(steps_per_epoch=1)


class _LoaderOwner:
    "What `synthetic_loader` reads of a trainer, for the loader alone (part D): the paper preset on CIFAR-10."
    def __init__(self, p):
        import torch
        from ssod.config import make_config
        from ssod.sources import data_source
        self.cfg, self.source = data_source(make_config("paper", benchmark="cifar10", image_size=p["size"],
                                                        batch_size=p["batches"][0]))
        self.device = torch.device(p["device"])


def synthetic_loader(trainer, n_batches, p, seed=0):
    "The trainer's own loader (`make_loader`, as `Trainer._data` makes it) over random CIFAR-sized uint8 images."
    import torch
    from ssod.data import ImageSet
    from ssod.loaders import make_loader
    from ssod.sources import train_transform
    cfg, bench = trainer.cfg, trainer.source.bench
    g = torch.Generator().manual_seed(seed)
    n = n_batches * cfg.batch_size
    ds = ImageSet(torch.randint(0, 256, (n, bench.in_channels, p["src"], p["src"]), dtype=torch.uint8, generator=g),
                  torch.randint(0, bench.num_classes, (n,), generator=g), "synthetic")
    tf = train_transform(cfg, bench, p["size"])
    return make_loader(ds, cfg.batch_size, tf, shuffle=True, seed=0, drop_last=True, device=trainer.device)


def peak_flops(device_name: str, precision: str):
    if precision != "bf16":
        return None
    return next((v for k, v in PEAK_BF16 if k in device_name), None)


def part_a(r: Part, p: dict, out: Path):
    "Host syncs in whole epochs of the trainer's loop (loader, step, statistics), per step."
    import torch
    from benchmarks.host_reads import HostReads
    from ssod.runtime import device_name
    dev = torch.device(p["device"])
    r.add("device_name", device_name(dev))
    if dev.type == "cpu":   # count the path a GPU runs: the losses' masked sums (the CPU's own path selects)
        import ssod.terms
        ssod.terms.HOST_SELECTS = False
        r.add("losses", "masked sums, as on a GPU (ssod.terms.HOST_SELECTS = False)")
    for kind, alpha in (("ce", 0.0), ("ssod", 1.5)):
        tr = make_trainer(p, alpha, batch=p["sync_batch"])
        tr.train_loader = synthetic_loader(tr, p["sync_steps"], p)
        tr.train_epoch()                                       # warm-up: allocator, cuDNN, first-time kernels
        _sync(dev)
        res = {"steps": p["sync_steps"], "batch": p["sync_batch"]}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if dev.type == "cuda":
                torch.cuda.set_sync_debug_mode("warn")
            try:
                with HostReads() as reads:
                    tr.train_epoch()
            finally:
                if dev.type == "cuda":
                    torch.cuda.set_sync_debug_mode(0)
        syncs = [w for w in caught if "synchroniz" in str(w.message)]
        if dev.type == "cuda":
            res.update(syncs_per_epoch=len(syncs), syncs_per_step=len(syncs) / p["sync_steps"],
                       sync_sites=sorted({f"{Path(w.filename).name}:{w.lineno}" for w in syncs}))
        res.update(host_reads_per_epoch=reads.count, host_reads_per_step=reads.count / p["sync_steps"],
                   host_read_sites=reads.where())
        r.add(kind, res)


def time_steps(step, batches, p, device):
    """Median time (ms) of a training step, the loader's batch included: CUDA events on a GPU, the wall clock on a
    CPU; `steps` steps after `warmup` ones."""
    import torch
    times = []
    it = iter(batches)
    for i in range(p["warmup"] + p["steps"]):
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
        t0 = time.perf_counter()
        step(*next(it))
        if device.type == "cuda":
            b.record()
        if i >= p["warmup"]:
            times.append((a, b) if device.type == "cuda" else 1e3 * (time.perf_counter() - t0))
    _sync(device)
    return statistics.median([a.elapsed_time(b) for a, b in times] if device.type == "cuda" else times)


def count_flops(step, x, y):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        step(x, y)
    return fc.get_total_flops()


def measure(r: Part, key: str, step, batches, batch: int, p: dict, dev, extra=None):
    "Step time, images/s, peak memory and MFU of `step` over `batches`, recorded under `key`."
    import gc
    import torch
    from ssod.runtime import device_name
    gc.collect()   # earlier configurations' trainers (reference cycles) leave the memory count
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    ms = time_steps(step, batches, p, dev)
    x, y = next(iter(batches))
    flops = count_flops(step, x, y)
    peak = peak_flops(device_name(dev), p["precision"])
    res = {"batch": batch, "step_ms": round(ms, 3), "img_s": round(batch / ms * 1e3, 1),
           "tflops_per_step": round(flops / 1e12, 4), "achieved_tflop_s": round(flops / ms / 1e9, 2),
           "mfu": None if peak is None else round(flops / (ms / 1e3) / peak, 4),
           "peak_gib": round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None,
           **(extra or {})}
    return r.add(key, res)


def part_b(r: Part, p: dict, out: Path):
    import torch
    from ssod.runtime import device_name
    dev = torch.device(p["device"])
    r.add("device_name", device_name(dev))
    r.add("mfu_peak", "nominal dense bf16 peak of the datasheet (none for fp32 or an unknown GPU)")
    g = torch.Generator().manual_seed(0)
    for bench_on in p["cudnn_benchmark"]:
        for batch in p["batches"]:
            for kind, alpha in (("ce", 0.0), ("ssod", 1.5)):
                tr = make_trainer(p, alpha, batch=batch)
                torch.backends.cudnn.benchmark = bench_on          # build() turns it on for CUDA
                loader = synthetic_loader(tr, p["warmup"] + p["steps"], p)
                measure(r, f"{p['arch']}_{kind}_b{batch}_cudnn_{'on' if bench_on else 'off'}",
                        lambda x, y: tr.train_step(x, y, g), loader, batch, p, dev)
                del tr, loader
    if p["r50"]:   # ImageNet's network: ResNet-50, 1,000 classes
        for kind, alpha in (("ce", 0.0), ("ssod", 1.5)):
            tr = make_trainer(p, alpha, batch=p["batches"][0], arch="resnet50", benchmark="imagenet")
            loader = synthetic_loader(tr, p["warmup"] + p["steps"], p)
            measure(r, f"resnet50_1000_{kind}_b{p['batches'][0]}_cudnn_on", lambda x, y: tr.train_step(x, y, g),
                    loader, p["batches"][0], p, dev)
            del tr, loader
    # the ceiling: torchvision's model alone, inputs ready on the device, fused AdamW, cross entropy
    import torchvision
    from ssod.runtime import autocast
    for arch, classes in ((p["arch"], 10), *((("resnet50", 1000),) if p["r50"] else ())):
        for batch in p["batches"][:1] if arch == "resnet50" else p["batches"]:
            net = getattr(torchvision.models, arch)(num_classes=classes).to(dev).to(memory_format=torch.channels_last)
            opt = torch.optim.AdamW(net.parameters(), lr=1e-4, **({"fused": True} if dev.type == "cuda" else {}))
            xs = torch.randn(batch, 3, p["size"], p["size"], device=dev).contiguous(memory_format=torch.channels_last)
            ys = torch.randint(0, classes, (batch,), device=dev)

            def bare(x, y):
                with autocast(dev, p["precision"]):
                    loss = torch.nn.functional.cross_entropy(net(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            measure(r, f"bare_{arch}_{classes}_b{batch}", bare, [(xs, ys)] * (p["warmup"] + p["steps"]), batch, p, dev)
            del net, opt


def part_c(r: Part, p: dict, out: Path):
    "A profile of 3 SSOD steps: top kernels (or CPU operators on a CPU) and the GPU's idle share."
    import torch
    from torch.profiler import ProfilerActivity, profile
    dev = torch.device(p["device"])
    tr = make_trainer(p, 1.5)
    batches = list(synthetic_loader(tr, 3 + p["profile_steps"], p))
    g = torch.Generator().manual_seed(0)
    for x, y in batches[:3]:
        tr.train_step(x, y, g)
    _sync(dev)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        t0 = time.perf_counter()   # the steps alone: the profiler's own start and stop are not the device's idle time
        for x, y in batches[3:]:
            tr.train_step(x, y, g)
        _sync(dev)
        wall_us = (time.perf_counter() - t0) * 1e6
    on_gpu = dev.type == "cuda"
    key = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    avgs = [e for e in prof.key_averages() if getattr(e, key, 0) > 0]
    total = sum(getattr(e, key) for e in avgs) or 1
    top = sorted(avgs, key=lambda e: -getattr(e, key))[:10]
    r.add("steps", p["profile_steps"])
    r.add("top", [{"name": e.key[:90], "ms": round(getattr(e, key) / 1e3, 3), "calls": e.count,
                   "share": round(getattr(e, key) / total, 3)} for e in top])
    # the union of the device's intervals (kernels on a GPU, operators on a CPU) against the wall time of the steps
    kind = torch.autograd.DeviceType.CUDA if on_gpu else torch.autograd.DeviceType.CPU
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type == kind)
    busy, end = 0.0, float("-inf")
    for s, e in spans:
        if e > end:
            busy += e - max(s, end)
            end = e
    r.add("busy_ms", round(busy / 1e3, 3))
    r.add("wall_ms", round(wall_us / 1e3, 3))
    r.add("idle_share", round(max(0.0, 1 - busy / wall_us), 3))
    if on_gpu:
        r.add("host_waits", {e.key: e.count for e in prof.key_averages()
                             if e.key in ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpy",
                                          "cudaEventSynchronize")})


def _write_jpegs(args):
    folder, start, n, size, seed = args
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng([seed, start])
    for i in range(start, start + n):
        base = rng.integers(0, 256, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize(size, Image.BILINEAR)
        cls = Path(folder) / f"class_{i % 10}"
        cls.mkdir(parents=True, exist_ok=True)
        img.save(cls / f"{i:05d}.jpg", quality=90)


def part_d(r: Part, p: dict, out: Path):
    "The loaders alone: CIFAR-sized images on the device, and JPEG folders decoded by worker processes."
    import torch
    from ssod.data import image_folder
    from ssod.benchmarks import get_benchmark
    from ssod.transforms import BatchTransform
    from ssod.loaders import make_loader
    dev = torch.device(p["device"])
    loader = synthetic_loader(_LoaderOwner(p), max(1, p["loader_images"] // p["batches"][0]), p)
    next(iter(loader))
    _sync(dev)
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in loader)
    _sync(dev)
    r.add("cifar_device_loader", {"images": n, "size": p["size"], "img_s": round(n / (time.perf_counter() - t0), 1)})
    folder = Path(tempfile.mkdtemp(prefix="gpu_check_jpegs_"))
    t0 = time.perf_counter()
    chunks = [(str(folder), s, min(200, p["jpegs"] - s), p["jpeg_size"], 0) for s in range(0, p["jpegs"], 200)]
    with mp.get_context("fork").Pool(min(len(chunks), os.cpu_count() or 1)) as pool:
        pool.map(_write_jpegs, chunks)
    r.add("jpegs", {"images": p["jpegs"], "size": list(p["jpeg_size"]), "written_s": round(time.perf_counter() - t0, 1)})
    ds = image_folder(folder, "synthetic_jpegs", labelled=True)
    bench = get_benchmark("imagenet")
    tf = BatchTransform(bench.mean, bench.std, p["size"], train=True)
    for workers in p["folder_workers"]:
        fl = make_loader(ds, p["folder_batch"], tf, shuffle=True, seed=0, drop_last=True, device=dev, workers=workers)
        res = {"workers": workers, "batch": p["folder_batch"]}
        for epoch in (0, 1):   # the second epoch reuses the workers (persistent)
            fl.set_epoch(epoch)
            t0 = time.perf_counter()
            it = iter(fl)
            x, y = next(it)
            _sync(dev)
            first = time.perf_counter() - t0
            n = len(y) + sum(len(y) for _, y in it)
            _sync(dev)
            total = time.perf_counter() - t0
            res[f"epoch{epoch}"] = {"first_batch_s": round(first, 2), "images": n,
                                    "img_s": round(n / total, 1),
                                    "img_s_after_first": round((n - len(y)) / max(total - first, 1e-9), 1)}
            r.add(f"folder_workers_{workers}", res)
        res["dtype_sent"] = "uint8"
        r.add(f"folder_workers_{workers}", res)
        del fl


def part_e(r: Part, p: dict, out: Path):
    "torch.compile of the SSOD step: eager step time, compile time (the first steps), compiled step time."
    import torch
    dev = torch.device(p["device"])
    g = torch.Generator().manual_seed(0)
    tr = make_trainer(p, 1.5)
    loader = synthetic_loader(tr, p["warmup"] + p["steps"], p)
    step = lambda x, y: tr.train_step(x, y, g)
    eager = r.add("eager_step_ms", round(time_steps(step, loader, p, dev), 3))
    r.add("backend", p["compile_backend"])
    tr.step_model = torch.compile(tr.step_model, backend=p["compile_backend"])
    t0 = time.perf_counter()
    for _, (x, y) in zip(range(2), loader):      # the first steps compile (forward, then backward)
        step(x, y)
    _sync(dev)
    r.add("compile_s", round(time.perf_counter() - t0, 1))
    compiled = r.add("compiled_step_ms", round(time_steps(step, loader, p, dev), 3))
    r.add("speedup", round(eager / compiled, 3))


def part_f(r: Part, p: dict, out: Path):
    "Save and load the trainer's checkpoint (model, AdamW moments, schedule)."
    import torch
    dev = torch.device(p["device"])
    tr = make_trainer(p, 1.5)
    x, y = next(iter(synthetic_loader(tr, 1, p)))
    tr.train_step(x, y, torch.Generator().manual_seed(0))      # AdamW's state exists
    _sync(dev)
    t0 = time.perf_counter()
    tr.save()
    saved = time.perf_counter() - t0
    path = tr.ckpt_dir / "last.pt"
    t0 = time.perf_counter()
    tr.load(path)
    _sync(dev)
    r.add("checkpoint", {"arch": p["arch"], "mib": round(path.stat().st_size / 2**20, 1), "save_s": round(saved, 3),
                         "load_s": round(time.perf_counter() - t0, 3)})


def _fixtures(out: Path) -> Path:
    from data_scripts import fixtures
    data = out / "fixtures"
    if not (data / "manifest.json").exists():
        fixtures.prepare(data, log=lambda *_: None, benchmarks=("cifar10",))
    return data


def paper_run(r: Part, p: dict, out: Path, launcher: list, name: str, limit_s: float):
    "The paper preset for one epoch on the CIFAR-10 fixtures with every detector, by the command line."
    deadline = time.time() + limit_s - 15   # from this part's start: writing the fixtures counts
    data = _fixtures(out)
    run_dir = out / f"run_{name}"
    args = ["--preset", "paper", "--benchmark", "cifar10", "--epochs", "1", "--device", p["device"],
            "--data-root", str(data), "--out-dir", str(run_dir), "--resume=false"]
    args += [f"--{k}={v}" for k, v in p["run"].items()]
    cmd = launcher + ["-m", "ssod.experiment"] + args
    env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if p["device"] == "cpu" else {})}
    r.add("command", " ".join(cmd))
    log = out / "parts" / f"{name}.log"
    t0 = time.time()
    with open(log, "w") as f:   # its own session: on a timeout this part stops it (torchrun stops its workers)
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        try:
            proc.wait(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            raise TimeoutError(f"{name} ran past {limit_s - 15:.0f} s; the end of its log: "
                               + log.read_text()[-1500:])
    text = log.read_text()
    r.add("log_tail", text[-3000:])   # the log stays in the work folder; the report carries its end
    r.add("wall_s", round(time.time() - t0, 1))
    r.add("returncode", proc.returncode)
    r.add("evaluations", text.count("evaluating "))   # rank 0 alone evaluates
    rec_path = run_dir / "record.json"
    if proc.returncode != 0 or not rec_path.exists():
        raise RuntimeError(f"exit {proc.returncode}: " + " | ".join(text.strip().splitlines()[-3:])[-400:])
    rec = json.loads(rec_path.read_text())
    r.add("record", {"id_acc": rec["id_acc"], "fixtures": rec["data"]["fixtures"], "detectors": sorted(rec["ood_avg"]),
                     "epoch_s": [round(h["seconds"], 1) for h in rec["train"]["history"]],
                     "train_s": round(rec["timing"]["train_s"], 1), "eval_s": round(rec["timing"]["eval_s"], 1),
                     "detector_s": {k: round(v, 1) for k, v in rec["timing"]["detector_s"].items()},
                     "device": rec["runtime"].get("device_name"), "precision": rec["runtime"].get("precision")})


def part_g1(r: Part, p: dict, out: Path, limit_s: float = 120):
    paper_run(r, p, out, [sys.executable], "G1", limit_s)


def part_g2(r: Part, p: dict, out: Path, limit_s: float = 120):
    import torch
    if p["device"] == "cuda" and torch.cuda.device_count() < 2:
        r.add("skipped", f"{torch.cuda.device_count()} GPU here; torchrun with 2 processes needs 2")
        return
    paper_run(r, p, out, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                          f"--nproc_per_node={p['nproc']}"], "G2", limit_s)


FUNCS = {"A": part_a, "B": part_b, "C": part_c, "D": part_d, "E": part_e, "F": part_f, "G1": part_g1, "G2": part_g2}


def _child(name: str, p: dict, out: Path, limit_s: float):
    "A part's process: its own process group (a timeout kills it whole); an exception is recorded in its result."
    os.setpgrp()
    r = Part(out, name)
    if name in p.get("skip", {}):
        r.add("skipped", p["skip"][name])
        os._exit(0)
    try:
        if p["threads"]:
            import torch
            torch.set_num_threads(p["threads"])
        fn = FUNCS[name]
        fn(r, p, out, limit_s) if name in ("G1", "G2") else fn(r, p, out)
    except BaseException as e:
        r.add("error", f"{type(e).__name__}: {str(e)[:500]}")
        r.add("traceback", traceback.format_exc()[-3000:])
        os._exit(1)
    os._exit(0)


# ---- the report

def summary(parts: dict) -> dict:
    "The numbers to quote: img/s, MFU, syncs per step, SSOD/CE, compile speedup, the paper preset's epoch time."
    res = lambda name: parts.get(name, {}).get("result", {})
    b, s = res("B"), {}
    for batch in (256, 32, 8, 4):
        ce, ss = b.get(f"resnet18_ce_b{batch}_cudnn_on"), b.get(f"resnet18_ssod_b{batch}_cudnn_on")
        if ce and ss:
            s[f"ssod_img_s_b{batch}"] = ss["img_s"]
            s[f"ssod_mfu_b{batch}"] = ss["mfu"]
            s[f"ssod_over_ce_step_time_b{batch}"] = round(ss["step_ms"] / ce["step_ms"], 3)
    a = res("A").get("ssod", {})
    s["ssod_syncs_per_step"] = a.get("syncs_per_step")
    s["ssod_host_reads_per_step"] = a.get("host_reads_per_step")
    s["compile_speedup"] = res("E").get("speedup")
    s["idle_share_in_profile"] = res("C").get("idle_share")
    for g in ("G1", "G2"):
        s[f"paper_preset_epoch_s_{g}"] = (res(g).get("record") or {}).get("epoch_s")
    return s


def markdown(rep: dict) -> str:
    lines = [f"# GPU check on {rep.get('device_name') or '?'}", "",
             f"`{rep['command']}`; torch {rep['torch']}, CUDA {rep['cuda']}, {rep['when']}, {rep['total_s']:.0f} s"
             + (" (CPU smoke: tiny sizes, not a measurement)" if rep["cpu_smoke"] else ""), "",
             "| part | what | status | s | limit s |", "|---|---|---|---:|---:|"]
    for name, what, *_ in PARTS:
        q = rep["parts"].get(name, {})
        lines.append(f"| {name} | {what} | {q.get('status', 'not run')} | {q.get('seconds', '')} | {q.get('limit_s', '')} |")
    lines += ["", "## Summary", "", "| quantity | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in rep["summary"].items()]
    b = rep["parts"].get("B", {}).get("result", {})
    rows = [(k, v) for k, v in b.items() if isinstance(v, dict) and "step_ms" in v]
    if rows:
        lines += ["", "## B: step time", "", "| configuration | batch | ms/step | img/s | TFLOP/s | MFU | peak GiB |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {k} | {v['batch']} | {v['step_ms']} | {v['img_s']} | {v['achieved_tflop_s']} | {v['mfu']} | "
                  f"{v['peak_gib']} |" for k, v in rows]
    for name, q in rep["parts"].items():
        if name == "B" and rows:
            continue
        lines += ["", f"## {name}: {dict((n, w) for n, w, *_ in PARTS).get(name, '')} ({q.get('status')})", "",
                  "```", json.dumps({k: v for k, v in q.get("result", {}).items() if k != "traceback"}, indent=1)[:4000],
                  "```"]
    return "\n".join(lines) + "\n"


def write_report(rep: dict, out: Path):
    for name, text in (("gpu_check.json", json.dumps(rep, indent=1, default=str)), ("gpu_check.md", markdown(rep))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)


def run_part(name: str, p: dict, out: Path, limit_s: float) -> dict:
    "Run one part in a forked process with a time limit; what it recorded, its status and its time."
    (out / "parts" / f"{name}.json").unlink(missing_ok=True)
    t0 = time.time()
    import torch
    start = "spawn" if torch.cuda.is_initialized() else "fork"   # (fork: the imports are done once, in this process)
    proc = mp.get_context(start).Process(target=_child, args=(name, p, out, limit_s), name=f"gpu_check_{name}")
    proc.start()
    proc.join(limit_s)
    timed_out = proc.is_alive()
    if timed_out:
        try:
            os.killpg(proc.pid, signal.SIGKILL)   # the part and whatever it started in its process group
        except ProcessLookupError:
            pass
        proc.kill()                               # (in case it had no group of its own yet)
        proc.join()
    path = out / "parts" / f"{name}.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    status = ("timeout" if timed_out else "skipped" if "skipped" in result
              else "ok" if proc.exitcode == 0 else "error" if "error" in result else f"crashed (exit {proc.exitcode})")
    entry = {"status": status, "seconds": round(time.time() - t0, 1), "limit_s": round(limit_s, 1), "result": result}
    if timed_out:
        entry["error"] = f"no result within its limit of {limit_s:.0f} s; what it had measured is kept"
    elif "error" in result:
        entry["error"] = result["error"]
    return entry


def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--out", default="gpu_check", help="the report's folder: gpu_check.json and gpu_check.md, nothing else")
    a.add_argument("--work", default=None, help="the parts' files (fixtures, runs, checkpoints, images, logs); default: "
                   "a new temporary folder, outside --out")
    a.add_argument("--cpu-smoke", action="store_true", help="run the same code on the CPU with tiny sizes")
    a.add_argument("--parts", default=",".join(n for n, *_ in PARTS), help="comma-separated parts to run")
    a.add_argument("--budget-s", type=float, default=None, help="start no part after this many seconds in all")
    a.add_argument("--limit", action="append", default=[], metavar="PART=SECONDS", help="another time limit for a part")
    args = a.parse_args(argv)
    p = SMOKE if args.cpu_smoke else GPU
    budget = args.budget_s or p["budget_s"]
    limits = {n: (smoke if args.cpu_smoke else gpu) for n, _, gpu, smoke in PARTS}
    for item in args.limit:
        name, _, sec = item.partition("=")
        if name not in limits:
            a.error(f"--limit: no part {name!r}; parts: {', '.join(limits)}")
        limits[name] = float(sec)
    chosen = [n.strip() for n in args.parts.split(",") if n.strip()]
    unknown = set(chosen) - set(limits)
    if unknown:
        a.error(f"--parts: unknown {sorted(unknown)}; parts: {', '.join(limits)}")
    out = Path(args.out).resolve()
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="gpu_check_work_"))
    if work == out or out in work.parents:
        a.error(f"--work {work} must be outside --out {out}: the report folder holds the report alone")
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    import torch   # here and in the library (imported once, shared by the forked parts); CUDA is left to the parts
    try:
        import torchvision  # noqa: F401
        import ssod.experiment, ssod.train, benchmarks.host_reads, data_scripts.fixtures  # noqa: F401
        library = "ok"
    except Exception as e:     # every part then fails on the same import, and says so
        library = f"{type(e).__name__}: {e}"
    rep = {"command": "python benchmarks/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "cpu_smoke": args.cpu_smoke, "device_name": None, "torch": torch.__version__, "cuda": torch.version.cuda,
           "library_import": library, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "budget_s": budget,
           "work": str(work),
           "sizes": {k: v for k, v in p.items() if k not in ("budget_s", "skip")}, "parts": {}, "summary": {}, "total_s": 0.0}
    for name, what, *_ in PARTS:
        if name not in chosen:
            continue
        left = budget - (time.time() - t0)
        if left < MIN_START_S:
            rep["parts"][name] = {"status": "skipped", "error": f"the budget of {budget:.0f} s is spent", "result": {}}
        else:
            print(f"gpu_check: part {name} ({what}), limit {min(limits[name], left):.0f} s", flush=True)
            rep["parts"][name] = run_part(name, p, work, min(limits[name], left))
            rep["device_name"] = rep["device_name"] or rep["parts"][name]["result"].get("device_name")
        rep["summary"], rep["total_s"] = summary(rep["parts"]), round(time.time() - t0, 1)
        write_report(rep, out)
    print(json.dumps(rep, indent=1, default=str))
    failed = [n for n, q in rep["parts"].items() if q["status"] not in ("ok", "skipped")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
