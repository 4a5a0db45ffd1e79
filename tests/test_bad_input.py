"""Bad input gets a clear error that names the problem, and nothing is left half-written."""
import subprocess
import sys

import pytest
import torch

from ssod.data import DataNotFound, load_dataset
from ssod.losses import SSODLoss
from ssod.model import build_model
from ssod.sampler import sample_blocks
from ssod.config import make_config
from ssod.train import CheckpointError, Trainer, load_checkpoint

TINY = dict(epochs=1, batch_size=64, limit_train=256, limit_eval=128, precision="fp32")


def test_missing_data_folder(tmp_path):
    with pytest.raises(DataNotFound, match=r"not found at .*Prepare it first: `python -m data_scripts.prepare fashion_mnist"):
        load_dataset("fashion_mnist", "train", root=tmp_path / "nowhere")
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), data_root=str(tmp_path / "nowhere"), **TINY)
    with pytest.raises(DataNotFound, match="fashion_mnist"):
        Trainer(cfg, progress=False).fit()
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_corrupted_data_file(tmp_path, data_root):
    (tmp_path / "ood28").mkdir()
    (tmp_path / "ood28" / "mnist.pt").write_bytes((data_root / "ood28" / "mnist.pt").read_bytes()[:5000])
    with pytest.raises(ValueError, match="corrupted .* run `python -m data_scripts.prepare mnist` again"):
        load_dataset("mnist", root=tmp_path)


@pytest.mark.parametrize("alpha", [-0.1, -1, float("nan")])
def test_negative_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must be a number >= 0"):
        make_config("demo", alpha=alpha)
    with pytest.raises(ValueError, match="alpha must be a number >= 0"):
        SSODLoss(alpha=alpha)


@pytest.mark.parametrize("gamma", [0.5, 0.2, 1.5, -1])
def test_gamma_out_of_range(gamma):
    with pytest.raises(ValueError, match=r"gamma must be in \(0.5, 1\]"):
        make_config("demo", gamma=gamma)
    with pytest.raises(ValueError, match=r"gamma must be in \(0.5, 1\]"):
        sample_blocks(torch.rand(2, 7, 7), gamma=gamma)


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown arch 'resnet1000'.*known architectures: small_resnet"):
        make_config("demo", arch="resnet1000")
    with pytest.raises(ValueError, match="unknown arch"):
        build_model("resnet1000")


def test_cli_reports_bad_parameters(tmp_path):
    for args, msg in [(["--alpha", "-1"], "alpha must be a number >= 0"), (["--gamma", "0.3"], "gamma must be in (0.5, 1]"),
                      (["--arch", "vgg"], "unknown arch 'vgg'")]:
        r = subprocess.run([sys.executable, "-m", "ssod.experiment", "--out_dir", str(tmp_path / "x"), *args],
                           capture_output=True, text=True)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    assert not (tmp_path / "x").exists()


def test_corrupted_checkpoint(tmp_path, data_root):
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), **TINY)
    Trainer(cfg, progress=False).fit()
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint .*last.pt is corrupted or truncated"):
        load_checkpoint(last)
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        Trainer(cfg, progress=False).setup()
    last.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        Trainer(cfg, progress=False).setup()
    torch.save({"weights": torch.zeros(3)}, last)
    with pytest.raises(CheckpointError, match="not an ssod checkpoint"):
        load_checkpoint(last)


def test_checkpoint_of_another_model(tmp_path, data_root):
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), **TINY)
    Trainer(cfg, progress=False).fit()
    with pytest.raises(CheckpointError, match="differs in arch"):
        Trainer(make_config("demo", out_dir=str(tmp_path / "run"), **{**TINY, "arch": "small_resnet_wide"}),
                progress=False).setup()


def test_no_partial_checkpoint_files(tmp_path, data_root):
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), **TINY)
    Trainer(cfg, progress=False).fit()
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["best.pt", "last.pt"], names
