"""A run interrupted after epoch k and resumed ends with the same weights as one uninterrupted run (CPU, same seed)."""
from dataclasses import replace

import pytest
import torch

from ssod.config import make_config

from ssod.checkpoints import CheckpointError, load_checkpoint
from ssod.train import Trainer

TINY = dict(benchmark="fmnist", arch="small_resnet_narrow", epochs=3, batch_size=64, limit_train=384, limit_eval=200,
            precision="fp32", lr_schedule="step", lr_step=1)
SHORTER = {"csi": dict(limit_train=128)}   # CSI's step sees each image 8 times (4 rotations, 2 views): 2 steps an epoch


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


@pytest.mark.parametrize("method,balance,optimizer", [
    *((m, b, "adamw") for m, b in [("ssod", "lwb"), ("ssod", "dr"), ("ce", "lwb"), ("godin", "lwb"), ("supcon", "lwb"),
                                   ("ssod_supcon", "lwb"), ("csi", "lwb"), ("mos", "lwb")]),
    ("ssod", "lwb", "muon")])   # Muon and AdamW stepped as one optimiser: both states saved and restored
def test_resume_in_process_matches_uninterrupted(tmp_path, data_root, method, balance, optimizer):
    kw = dict(method=method, balance=balance, optimizer=optimizer, **{**TINY, **SHORTER.get(method, {})})
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


def test_resume_from_a_checkpoint_older_than_an_optional_field(tmp_path, data_root):
    "A checkpoint made before an optional field existed resumes (the field reads as its default), and only then."
    cfg = make_config("demo", out_dir=str(tmp_path / "old"), **{**TINY, "epochs": 2})
    with pytest.raises(Interrupt):
        Trainer(cfg, callbacks=[stop_after(1)], progress=False).fit()
    path = tmp_path / "old" / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(path)
    optional = [k for k in ("pretrained_path", "arch_args", "train_dir", "mean") if k in ckpt["config"]]
    assert optional, "the configuration lost the optional fields this test removes"
    for k in optional:   # as a checkpoint written before these fields existed
        del ckpt["config"][k]
    torch.save(ckpt, path)
    resumed = Trainer(cfg, progress=False).fit()
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    torch.save(ckpt, path)   # the same older checkpoint, resumed with one of those fields set: refused, by name
    with pytest.raises(CheckpointError, match=r"differs in pretrained_path \(''"):
        Trainer(replace(cfg, pretrained_path="weights.pt"), progress=False).setup()
