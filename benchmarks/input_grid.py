"""Cost of tuning ODIN's (T, eps) grid with one forward pass per batch for every T, against a gradient pass per T.

    python benchmarks/input_grid.py [--checkpoint runs/demo/ce] [--tune-images 500]

ODIN's gradient depends on T, not on eps. `tune` scores the whole grid with one forward pass per batch, one gradient
per T and one forward pass per (T, eps > 0); the reference tunes each T on its own (a forward and a gradient pass per
T, as a grid over eps alone does). Both run on the demo's tuning data (the first `--tune-images` ID validation and
validation OOD images), in fp32, alternated in one process; the best of `--repeats` is kept. Both must choose the same
setting with the same AUROC.
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import network_from_args  # noqa: E402
from ssod.benchmarks import load_val_ood  # noqa: E402
from ssod.data import load_dataset  # noqa: E402
from ssod.inference import eval_transform, limit, predict  # noqa: E402
from ssod.preprocessing import ODIN  # noqa: E402
from ssod.runtime import device_name  # noqa: E402
from ssod.tuning import tune  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="a run folder or checkpoint; default: an untrained --arch")
    p.add_argument("--arch", default="small_resnet_s2", help="architecture of the untrained model (no --checkpoint)")
    p.add_argument("--benchmark", default="fmnist_scenes")
    p.add_argument("--tune-images", type=int, default=500, help="ID validation and validation OOD images each")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--repeats", type=int, default=2, help="alternate the two timings this many times, keep the best")
    a = p.parse_args()
    if a.tune_images < 1 or a.repeats < 1 or a.batch_size < 1:
        p.error("--tune-images, --repeats and --batch-size must be >= 1")

    bench, device, model = network_from_args(p, a)
    tf = eval_transform(bench)
    val_id = limit(load_dataset(bench.id_set, "val"), a.tune_images)
    val_ood = limit(load_val_ood(bench), a.tune_images)
    out_id, out_ood = (predict(model, s, tf, a.batch_size, device, "fp32") for s in (val_id, val_ood))
    inputs = {"model": model, "val_id_set": val_id, "val_ood_set": val_ood, "transform": tf, "device": device,
              "batch_size": a.batch_size}

    t_shared, t_sep = [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        best, table = tune("odin", model, out_id, out_ood, grid=ODIN.grid, inputs=inputs)
        t_shared.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sep = {}
        for T in ODIN.grid["T"]:   # a grid with one T: one forward and one gradient pass per batch
            sep.update(tune("odin", model, out_id, out_ood, grid={"T": [T], "eps": ODIN.grid["eps"]}, inputs=inputs)[1])
        t_sep.append(time.perf_counter() - t0)
    print(f"model: {a.checkpoint or a.arch}; device {device_name(device)}, ATen "
          f"{torch.backends.cpu.get_cpu_capability()}; fp32")
    print(f"ODIN grid {ODIN.grid} on {len(val_id)} + {len(val_ood)} tuning images")
    print(f"one forward pass per batch for every T: {min(t_shared):6.2f} s, chose {best}")
    print(f"a gradient pass per T:                  {min(t_sep):6.2f} s")
    print(f"ratio shared / per T: {min(t_shared) / min(t_sep):.3f}")
    if sep != table:
        sys.exit("the two ways gave different AUROCs: " + str({k: (table[k], sep.get(k)) for k in table}))


if __name__ == "__main__":
    main()
