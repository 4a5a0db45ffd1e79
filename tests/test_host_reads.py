"""The host never reads a tensor value inside a training step (on a GPU each read makes the host wait for the GPU).

Counted with `benchmarks/host_reads.py` on the CPU, loader included. A step reads nothing on the path a GPU runs; the
host reads twice per epoch (the loss check at the end of the epoch and the epoch's means) and once every
`CHECK_EVERY` steps. On the CPU itself the losses select their samples before summing (`ssod.terms.masked_sum`:
float32 sums depend on their order, and this keeps every CPU result the same to the last bit); those selections and
their backward are the only reads there, and on a CPU nobody waits for them. `HOST_SELECTS = False` runs the GPU's
masked sums on the CPU, which is how this test sees the GPU's path."""
import pytest
import torch

import ssod.terms
from benchmarks.host_reads import HostReads
from ssod.config import make_config
from ssod.optim import CHECK_EVERY, StepStats
from ssod.train import Trainer

CONFIGS = {"ssod": {}, "dr": {"balance": "dr"}, "released": {"sampler": "released"},
           "ssod_supcon": {"method": "ssod_supcon"}, "mos": {"method": "mos"}}


def trainer(tmp_path, **kw):
    # the demo preset on fmnist: RandomResizedCrop drawn for every batch, so the crop boxes' path is in the count
    cfg = make_config("demo", benchmark="fmnist", epochs=1, batch_size=32, limit_train=96, limit_eval=32,
                      precision="fp32", out_dir=str(tmp_path), **kw)
    tr = Trainer(cfg, progress=False, log=lambda *a: None)
    tr._data()
    return tr.build(len(tr.train_loader))


@pytest.fixture
def gpu_path(monkeypatch):
    monkeypatch.setattr(ssod.terms, "HOST_SELECTS", False)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_one_step_reads_nothing_on_the_gpu_path(tmp_path, data_root, gpu_path, name):
    tr = trainer(tmp_path, **CONFIGS[name])
    batches, g, log = iter(tr.train_loader), torch.Generator().manual_seed(0), StepStats(tr.device)
    log.add(*tr.train_step(*next(batches), g))          # a first step outside the count
    with HostReads() as reads:
        x, y = next(batches)                             # the loader's batch: indices, crop boxes, transform
        log.add(*tr.train_step(x, y, g))                 # forward, Eq. 7, Eq. 9, backward, AdamW, schedule, sums
    assert reads.count == 0 <= 2, reads.where()          # the bound is 2; the GPU's path reads none
    assert reads.skipped, "the count saw no optimiser step"   # AdamW's CPU step counters: read, and set apart


def test_an_epoch_reads_twice_on_the_gpu_path(tmp_path, data_root, gpu_path):
    tr = trainer(tmp_path)
    assert len(tr.train_loader) == 3 < CHECK_EVERY
    with HostReads() as reads:
        rec = tr.train_epoch()
    assert reads.count == 2, reads.where()               # the loss check of the last step, the epoch's means
    assert set(rec) == {"train_ce", "train_ood", "train_id_blocks", "train_ood_blocks"}
    assert all(isinstance(v, float) for v in rec.values())


def test_on_the_cpu_only_the_loss_selections_read(tmp_path, data_root):
    "The CPU's own path: LWB's ID and OOD selections (forward), and their backward, nothing else."
    tr = trainer(tmp_path)
    batches, g = iter(tr.train_loader), torch.Generator().manual_seed(0)
    tr.train_step(*next(batches), g)
    with HostReads() as reads:
        tr.train_step(*next(batches), g)
    assert reads.count == 4 and all("boolean mask" in what for what, _ in reads.reads), reads.where()
    assert sum("masked_sum" in line or "terms.py" in line for _, line in reads.reads) == 2, reads.where()


def test_a_non_finite_loss_is_caught_at_the_next_check(tmp_path, data_root, gpu_path):
    tr = trainer(tmp_path)
    log = StepStats(tr.device)
    for loss in (2.5, float("nan"), 3.0):
        log.add(torch.tensor(loss), {"ce": torch.tensor(loss, dtype=torch.float64)})
    ok, loss, step = log.check()
    assert not ok and loss != loss and step == 2          # the first non-finite loss and its step, kept on the device
    with pytest.raises(FloatingPointError, match="loss became nan at step 2 of epoch 1"):
        tr._check_loss(log)
