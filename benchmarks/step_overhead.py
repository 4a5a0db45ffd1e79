"""Cost of an SSOD training step relative to a plain cross-entropy step, same model and batch.

    python benchmarks/step_overhead.py                                  # offline model, 28x28, CPU
    python benchmarks/step_overhead.py --arch resnet18 --size 224 --batch 256 --device cuda --precision bf16

The SSOD step runs the per-block classification and OOD heads, the sampler (Eq. 7) and the balanced OOD loss (Eq. 9)
on top of the same forward/backward/optimiser step (AdamW, or Muon with --optimizer muon). The paper claims SSOD adds
no cost; target <= 1.05x. The two kinds of step are interleaved and each timed many times; the ratio of medians is
printed.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssod.config import make_config  # noqa: E402
from ssod.runtime import device_name, resolve_precision  # noqa: E402
from ssod.train import Trainer  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="small_resnet")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30, help="timed steps of each kind")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: what training would use on this machine (ssod.runtime.resolve_precision)")
    p.add_argument("--channels-last", type=int, default=1)
    p.add_argument("--compile", type=int, default=0)
    p.add_argument("--optimizer", default="adamw", choices=["adamw", "muon"], help="the optimiser of both steps")
    a = p.parse_args()

    device = torch.device(a.device)
    a.precision = resolve_precision(a.precision, device)
    bench = "fmnist" if a.channels == 1 else "cifar10"
    trainers = {kind: Trainer(make_config("paper", benchmark=bench, arch=a.arch, alpha=alpha, image_size=a.size,
                                          batch_size=a.batch, device=a.device, precision=a.precision,
                                          channels_last=bool(a.channels_last), compile=bool(a.compile),
                                          optimizer=a.optimizer),
                              log=lambda *_: None).build(steps_per_epoch=1)
                for kind, alpha in (("ce", 0.0), ("ssod", 1.5))}   # the trainer's own step, as in training
    x = torch.randn(a.batch, a.channels, a.size, a.size, device=device)
    y = torch.randint(0, 10, (a.batch,), device=device)
    g = torch.Generator().manual_seed(0)

    def step(kind):
        trainers[kind].train_step(x, y, g)

    for _ in range(a.warmup):
        step("ce"), step("ssod")
    times = {"ce": [], "ssod": []}
    for i in range(a.steps):
        for kind in (("ce", "ssod") if i % 2 == 0 else ("ssod", "ce")):
            sync(device)
            t0 = time.perf_counter()
            step(kind)
            sync(device)
            times[kind].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    name = f"{device_name(device)}, ATen {torch.backends.cpu.get_cpu_capability()}"
    print(f"{a.arch} @{a.size}, batch {a.batch}, {a.precision}, channels_last={bool(a.channels_last)}, "
          f"compile={bool(a.compile)}, {a.optimizer}, {name}")
    for k in ("ce", "ssod"):
        print(f"  {k:5s} step: median {1000 * med[k]:8.2f} ms  ({a.batch / med[k]:,.0f} img/s)")
    print(f"  SSOD / CE step time: {med['ssod'] / med['ce']:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
