"""SSOD training throughput (images/s) and peak memory, per architecture, precision and memory format.

    python benchmarks/throughput.py                       # CPU: offline model @28, ResNet-18/50 @224 (few steps)
    python3 benchmarks/throughput.py --device cuda --archs resnet18 --precisions bf16 --batch 256 --steps 30

Each configuration runs in its own process (so peak memory is its own): a full SSOD training step (alpha = 1.5, Eq. 7
sampling, LWB) including the device-side input pipeline: uint8 images at their stored size (28x28 for the offline model,
32x32 CIFAR-sized for the 224 models) are RandomResizedCrop-ed to the model's input size on the device, as the trainer does.
Peak memory is `torch.cuda.max_memory_allocated` on GPUs and the process's peak resident set on CPUs.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_one(c):
    from ssod.config import make_config
    from ssod.transforms import BatchTransform
    from ssod.train import Trainer
    device = torch.device(c["device"])
    bench = "fmnist" if c["channels"] == 1 else "cifar10"
    cfg = make_config("paper", benchmark=bench, arch=c["arch"], alpha=c.get("alpha", 1.5), image_size=c["size"],
                      batch_size=c["batch"], device=c["device"], precision=c["precision"],
                      channels_last=bool(c["channels_last"]), compile=bool(c["compile"]))
    trainer = Trainer(cfg, log=lambda *_: None).build(steps_per_epoch=1)
    tf = BatchTransform((0.5,) * c["channels"], (0.25,) * c["channels"], c["size"], train=True)
    src = torch.randint(0, 256, (c["batch"], c["channels"], c["src"], c["src"]), dtype=torch.uint8, device=device)
    y = torch.randint(0, 10, (c["batch"],), device=device)
    g = torch.Generator().manual_seed(0)

    def step():  # the device-side RandomResizedCrop of the small-image path, then the trainer's own step
        trainer.train_step(tf(src, g), y, g)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(c["warmup"]):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(c["steps"]):
        step()
    sync()
    dt = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"img_s": c["batch"] * c["steps"] / dt, "peak_gib": peak / 2 ** 30}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--archs", default="small_resnet,resnet18,resnet50")
    p.add_argument("--precisions", default=None, help="default: fp32,bf16 (+fp16 on cuda)")
    p.add_argument("--batch", type=int, default=None, help="default: 128 (offline model); 8 on CPU / 256 on GPU at 224")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 5 on CPU, 30 on GPU)")
    p.add_argument("--compile", type=int, default=0, help="also run with torch.compile")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one configuration (JSON)
    a = p.parse_args()
    if a.one:
        print(json.dumps(run_one(json.loads(a.one))))
        return
    cuda = a.device.startswith("cuda")
    precisions = (a.precisions or ("fp32,bf16,fp16" if cuda else "fp32,bf16")).split(",")
    from ssod.runtime import device_name
    name = f"{device_name('cuda' if cuda else 'cpu')}, ATen {torch.backends.cpu.get_cpu_capability()}"
    print(f"SSOD training step throughput on {name}")
    print(f"{'arch':14s} {'input':>9s} {'batch':>5s} {'precision':>9s} {'format':>14s} {'compile':>7s} {'img/s':>9s} {'peak GiB':>8s}")
    for arch in a.archs.split(","):
        small = arch.startswith("small_resnet")
        size, src, ch = (28, 28, 1) if small else (224, 32, 3)
        batch = a.batch or (128 if small else (256 if cuda else 8))
        steps = a.steps or (30 if cuda else 5)
        for prec in precisions:
            for cl in (0, 1):
                for comp in ((0, 1) if a.compile else (0,)):
                    c = dict(device=a.device, arch=arch, size=size, src=src, channels=ch, batch=batch, steps=steps,
                             warmup=3 if cuda else 1, precision=prec, channels_last=cl, compile=comp)
                    r = subprocess.run([sys.executable, __file__, "--one", json.dumps(c)], capture_output=True, text=True)
                    if r.returncode != 0:
                        res = f"failed: {r.stderr.strip().splitlines()[-1][:60] if r.stderr.strip() else r.returncode}"
                        print(f"{arch:14s} {src:>3d}->{size:<4d} {batch:5d} {prec:>9s} {'channels_last' if cl else 'contiguous':>14s} {comp:7d} {res}")
                        continue
                    res = json.loads(r.stdout.strip().splitlines()[-1])
                    print(f"{arch:14s} {src:>3d}->{size:<4d} {batch:5d} {prec:>9s} {'channels_last' if cl else 'contiguous':>14s} "
                          f"{comp:7d} {res['img_s']:9,.0f} {res['peak_gib']:8.2f}", flush=True)


if __name__ == "__main__":
    main()
