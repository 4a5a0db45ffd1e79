"""Multi-process training on CPU (torchrun, gloo): 2 processes x batch b train like 1 process x batch 2b. (A killed rank
failing the job, and the resume after it: tests/test_paper_path.py.)

The equivalence runs in float64 with the demo's learning rate: in float32 the reduction order of two processes differs
from one process at the 1e-7 level, Adam amplifies that, and Eq. 7's thresholds turn it into different block labels.
In float64 the two runs agree to ~1e-12, which tests the distributed mechanics (sharding, global batch-norm statistics,
globally normalised OOD loss, gradient averaging) and not rounding."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ssod.checkpoints import load_checkpoint

# sync_bn: batch norm over the global batch (opt-in), the CPU's GlobalBatchNorm
TINY = dict(benchmark="fmnist", arch="small_resnet_narrow", epochs=2, batch_size=64, limit_train=128, limit_eval=64,
            precision="fp64", channels_last="false", num_threads=1, sync_bn="true")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun():
    return str(Path(sys.executable).parent / "torchrun")


def args(out_dir, **over):
    kw = {**TINY, **over}
    return ["-m", "ssod.experiment", "--out_dir", str(out_dir), "--detectors", "msp", "--no-tune"] + \
        [f"--{k}={v}" for k, v in kw.items()]


ALPHAS = (1.5, 0.0)


@pytest.fixture(scope="module")
def one_process_runs(tmp_path_factory, data_root):
    "The one-process reference run for each alpha, both at once (one thread each: two processes on two cores)."
    root = tmp_path_factory.mktemp("one")
    procs = {}
    for alpha in ALPHAS:
        log = open(root / f"{alpha}.log", "w")   # a file, not a pipe: an unread pipe would block a run
        procs[alpha] = (subprocess.Popen([sys.executable] + args(root / str(alpha), alpha=alpha), env=ENV,
                                         stdout=log, stderr=subprocess.STDOUT), log)
    for alpha, (proc, log) in procs.items():
        proc.wait(timeout=600)
        log.close()
        assert proc.returncode == 0, (root / f"{alpha}.log").read_text()[-3000:]
    return {alpha: root / str(alpha) for alpha in ALPHAS}


@pytest.mark.parametrize("alpha", ALPHAS)
def test_two_processes_match_one(tmp_path, one_process_runs, alpha):
    one, two = one_process_runs[alpha], tmp_path / "two"
    r = subprocess.run([torchrun(), "--standalone", "--nproc_per_node=2"] + args(two, alpha=alpha), env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = load_checkpoint(one / "checkpoints/last.pt"), load_checkpoint(two / "checkpoints/last.pt")
    for h1, h2 in zip(a["history"], b["history"]):  # the same loss curve
        for k in h1:
            if k.startswith("train_"):
                assert h1[k] == pytest.approx(h2[k], rel=1e-9, abs=1e-12), (k, h1[k], h2[k])
    for k, v in a["model"].items():              # the same final weights, within float tolerance
        if v.is_floating_point():
            torch.testing.assert_close(b["model"][k], v, rtol=1e-7, atol=1e-9, msg=f"{k} differs")
        else:
            assert torch.equal(b["model"][k], v), k
    assert (two / "record.json").exists()
