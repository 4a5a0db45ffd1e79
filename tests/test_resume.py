"""A run interrupted after epoch k and resumed ends with the same weights as one uninterrupted run (CPU, same seed)."""
import pytest
import torch

from ssod.config import make_config

from ssod.train import Trainer, load_checkpoint

TINY = dict(benchmark="fmnist", epochs=3, batch_size=64, limit_train=384, limit_eval=200, precision="fp32", lr_schedule="step", lr_step=1)


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
