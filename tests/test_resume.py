"""A run interrupted after epoch k and resumed ends with the same weights as one uninterrupted run (CPU, same seed)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ssod.config import make_config

from ssod.train import Trainer, load_checkpoint

TINY = dict(epochs=3, batch_size=64, limit_train=640, limit_eval=200, precision="fp32", lr_schedule="step", lr_step=1)


class Interrupt(Exception):
    pass


def stop_after(epoch):
    def cb(trainer, rec):
        if rec["epoch"] == epoch:
            raise Interrupt
    return cb


def weights(path):
    return load_checkpoint(path)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


@pytest.mark.parametrize("method,balance", [("ssod", "lwb"), ("ssod", "dr"), ("ce", "lwb"), ("godin", "lwb"),
                                            ("supcon", "lwb"), ("ssod_supcon", "lwb"), ("csi", "lwb"), ("mos", "lwb")])
def test_resume_in_process_matches_uninterrupted(tmp_path, data_root, method, balance):
    kw = dict(method=method, balance=balance, **TINY)
    full = Trainer(make_config("demo", out_dir=str(tmp_path / "full"), **kw), progress=False).fit()
    cfg = make_config("demo", out_dir=str(tmp_path / "cut"), **kw)
    with pytest.raises(Interrupt):
        Trainer(cfg, callbacks=[stop_after(1)], progress=False).fit()
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["epoch"] == 1
    resumed = Trainer(cfg, progress=False).fit()
    no_time = lambda hist: [{k: v for k, v in h.items() if k != "seconds"} for h in hist]
    assert no_time(resumed.history) == no_time(full.history)  # same loss curve and validation, epoch by epoch
    assert_same_weights(weights(tmp_path / "full/checkpoints/last.pt"), weights(tmp_path / "cut/checkpoints/last.pt"))
    assert_same_weights(full.model.state_dict(), resumed.model.state_dict())


def _cli(out_dir, extra=()):
    args = [sys.executable, "-m", "ssod.experiment", "--out_dir", str(out_dir), "--detectors", "msp",
            "--no-tune"] + [f"--{k}={v}" for k, v in TINY.items()] + list(extra)
    return args


def test_resume_after_kill(tmp_path, data_root):
    """Kill the training process (SIGKILL) once its first checkpoint exists, rerun the same command, compare."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_cli(tmp_path / "full", ["--num_threads=1"]), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(_cli(tmp_path / "cut", ["--num_threads=1"]), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    last = tmp_path / "cut" / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), "the run never wrote a checkpoint"
    killed_at = load_checkpoint(last)["epoch"]
    assert not (tmp_path / "cut" / "record.json").exists() or killed_at == TINY["epochs"]
    out = subprocess.run(_cli(tmp_path / "cut", ["--num_threads=1"]), check=True, env=env, capture_output=True, text=True)
    if killed_at < TINY["epochs"]:
        assert f"resumed from" in out.stdout
    assert_same_weights(weights(tmp_path / "full/checkpoints/last.pt"), weights(last))
    assert (tmp_path / "cut" / "record.json").exists()
