"""What the benchmarks that time a network share: the network named on their command line, ready to run."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssod.benchmarks import get_benchmark  # noqa: E402
from ssod.checkpoints import CheckpointError, model_from_checkpoint, resolve_checkpoint  # noqa: E402
from ssod.model import build_model  # noqa: E402
from ssod.runtime import resolve_device  # noqa: E402


def network_from_args(p, a):
    """(benchmark, device, model in eval mode) from `a.benchmark`, `a.device` and `a.checkpoint`, or an untrained
    `a.arch` (seed 0) without a checkpoint; a user's mistake ends with `p.error`, before any work."""
    try:
        bench, device = get_benchmark(a.benchmark), resolve_device(a.device)
    except ValueError as e:
        p.error(str(e))
    if a.checkpoint:
        try:
            model, _ = model_from_checkpoint(resolve_checkpoint(a.checkpoint), device)
        except (FileNotFoundError, ValueError, CheckpointError) as e:   # the user's mistake, named
            p.error(str(e))
        return bench, device, model
    torch.manual_seed(0)
    return bench, device, build_model(a.arch, bench.num_classes, bench.in_channels).to(device).eval()
