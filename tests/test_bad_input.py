"""Bad input gets a clear error that names the problem, and nothing is left half-written."""
import subprocess
import sys

import pytest
import torch

from ssod.files import DataNotFound
from ssod.data import load_dataset
from ssod.config import make_config
from ssod.checkpoints import CheckpointError, load_checkpoint
from ssod.train import Trainer

TINY = dict(benchmark="fmnist", epochs=1, batch_size=64, limit_train=256, limit_eval=128, precision="fp32")


def test_missing_data_folder(tmp_path):
    "The trainer stops on missing data before it writes anything (the loader's message is tested in 04_data)."
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), data_root=str(tmp_path / "nowhere"), **TINY)
    with pytest.raises(DataNotFound, match="fashion_mnist"):
        Trainer(cfg, progress=False).fit()
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_corrupted_data_file(tmp_path, data_root):
    (tmp_path / "ood28").mkdir()
    (tmp_path / "ood28" / "mnist.pt").write_bytes((data_root / "ood28" / "mnist.pt").read_bytes()[:5000])
    with pytest.raises(ValueError, match="corrupted .* run `python -m data_scripts.prepare mnist` again"):
        load_dataset("mnist", root=tmp_path)


def test_cli_reports_bad_parameters(tmp_path):
    """The command line turns a configuration error into exit status 2 and its message, and writes nothing (the checks
    themselves are tested where they are defined: notebooks 01, 03 and 04a)."""
    r = subprocess.run([sys.executable, "-m", "ssod.experiment", "--out_dir", str(tmp_path / "x"), "--alpha", "abc"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "alpha must be a number, got 'abc'" in r.stderr, r.stderr
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
