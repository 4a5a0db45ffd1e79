"""Cost of evaluating every post-hoc detector that needs no input gradient, relative to one plain forward pass.

    python benchmarks/eval_cost.py [--checkpoint runs/demo/ssod] [--precision bf16] [--device cuda]

The detectors (MSP, ODIN with temperature only, Energy, Mahalanobis without input noise, KNN, ReAct, SSOD and its
posterior) read one cached feature pass per data set; their tuning on validation data included. The reference is one
forward pass (no detector, no caching) over exactly the data sets the evaluation touches: ID train (for fit), ID
validation, validation OOD, ID test and every OOD test set. Both are timed in the same process, so the ratio is
meaningful on a noisy machine; the target is <= 1.3x.
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import network_from_args  # noqa: E402
from ssod.data import load_dataset  # noqa: E402
from ssod.benchmarks import load_val_ood  # noqa: E402
from ssod.tuning import detector_class, detector_names  # noqa: E402
from ssod.results import evaluate_model  # noqa: E402
from ssod.runtime import device_name  # noqa: E402
from ssod.inference import eval_transform, predict  # noqa: E402

NO_GRAD = ["msp", "odin", "energy", "mahalanobis", "knn", "react", "ssod", "ssod_posterior"]
GRIDS = {name: detector_class(name).grid for name in detector_names() if detector_class(name).grid}
NO_GRAD_GRIDS = {**GRIDS, "odin": {"T": GRIDS["odin"]["T"], "eps": [0.0]}, "mahalanobis": {"eps": [0.0]}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="a run folder or checkpoint; default: an untrained --arch")
    p.add_argument("--arch", default="small_resnet", help="architecture of the untrained model (no --checkpoint)")
    p.add_argument("--benchmark", default="fmnist")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N")
    p.add_argument("--channels-last", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2, help="alternate the two measurements this many times, keep the best")
    p.add_argument("--skip", default="", help="comma-separated detectors to leave out, e.g. knn")
    a = p.parse_args()

    bench, device, model = network_from_args(p, a)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    tf = eval_transform(bench)
    sets = {"train": load_dataset(bench.id_set, "train"), "val": load_dataset(bench.id_set, "val"),
            "val_ood": load_val_ood(bench), "test": load_dataset(bench.id_set, "test"),
            **{name: load_dataset(name) for name in bench.ood_sets}}
    n_images = sum(len(d) for d in sets.values())

    def forward_pass():
        for ds in sets.values():
            predict(model, ds, tf, device=device, precision=a.precision, channels_last=bool(a.channels_last))
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    dets = [d for d in NO_GRAD if d not in a.skip.split(",")]

    def evaluation():
        return evaluate_model(model, a.benchmark, dets, device=device, precision=a.precision,
                              channels_last=bool(a.channels_last), grids=NO_GRAD_GRIDS, log=lambda *_: None)

    forward_pass()  # warm-up: allocator, kernels, page cache
    t_fwd, t_eval = [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter(); forward_pass(); t_fwd.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); rec = evaluation(); t_eval.append(time.perf_counter() - t0)
    fwd, ev = min(t_fwd), min(t_eval)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {a.checkpoint or a.arch} ({n_params / 1e6:.2f}M parameters); device {device_name(device)}; "
          f"precision {a.precision}; threads {torch.get_num_threads()}")
    print(f"data: {len(sets)} sets, {n_images} images")
    print(f"one forward pass over all of them: {fwd:7.2f} s ({n_images / fwd:,.0f} img/s)")
    print(f"evaluation, {len(dets)} detectors incl. tuning: {ev:7.2f} s ({rec['feature_passes']} feature passes "
          f"{rec['feature_pass_s']:.2f} s)")
    print("  per detector, beyond the shared passes: " +
          ", ".join(f"{d} {t:.2f}s" for d, t in rec["detector_s"].items()))
    print(f"ratio evaluation / forward pass: {ev / fwd:.3f}  (target <= 1.3)")


if __name__ == "__main__":
    main()
