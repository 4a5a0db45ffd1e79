"""Bad input gets a clear error that names the problem, and nothing is left half-written."""
import subprocess
import sys
from pathlib import Path

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


ENTRY_POINTS = [["ssod-train"], ["-m", "ssod.experiment"], ["-m", "ssod.results"], ["-m", "ssod.openood"],
                ["-m", "data_scripts.prepare"],
                *([f"benchmarks/{name}.py"] for name in ("time_to_accuracy", "step_overhead", "eval_cost", "gpu_check",
                                                         "throughput", "input_grid")),
                ["docs/quoted.py"]]


@pytest.mark.parametrize("command", ENTRY_POINTS, ids=" ".join)
def test_entry_points_print_their_help(command, repo_root):
    exe = [str(Path(sys.executable).parent / command[0])] if command == ["ssod-train"] else [sys.executable, *command]
    r = subprocess.run([*exe, "--help"], capture_output=True, text=True, cwd=repo_root)
    assert r.returncode == 0 and "usage:" in r.stdout and not r.stderr.strip(), r.stderr[-2000:]


def test_a_reader_that_stops_early_is_no_error(repo_root):
    # every committed record four times: about 400 KB of tables, far more than a pipe holds (64 KB on Linux), so the
    # writer meets the closed pipe
    records = 4 * sorted(str(p) for p in (repo_root / "figures").rglob("record.json"))
    proc = subprocess.Popen([sys.executable, "-m", "ssod.results", *records], cwd=repo_root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()   # as `| head -1` does
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and first and not err.strip(), err[-2000:]


@pytest.mark.parametrize("args, key, value", [
    (["--out-dir", "a", "--no-tune", "--pretrained"], "out_dir", "a"),
    (["--out_dir", "a", "--tune", "false"], "tune", "false"),
    (["--no-pretrained", "--hflip", "true"], "pretrained", "false"),
    (["--channels_last"], "channels_last", "true"),
    (["--no-tune"], "tune", "false"),
    (["--cache-features"], "cache_features", "true"),
])
def test_one_spelling_for_every_flag(args, key, value):
    from ssod.experiment import build_parser
    assert getattr(build_parser().parse_args(args), key) == value


@pytest.mark.parametrize("args, message", [
    (["-m", "ssod.results", "runs/no_such_run"], "no run record at runs/no_such_run"),
    (["-m", "ssod.experiment", "--arch", "small_vit", "--benchmark", "fmnist"], "a ViT's input size is fixed"),
    (["-m", "ssod.experiment", "--arch", "timm:vit_tiny_patch16_224", "--benchmark", "fmnist_scenes"],
     "takes 224x224 images, this run's are 56x56"),
    (["-m", "ssod.experiment", "--arch", "torchvision:maxvit_t", "--benchmark", "fmnist"],
     "has no global average pool"),
    (["benchmarks/time_to_accuracy.py", "--recipes", "demo[lr]"], "lr has no value"),
    (["benchmarks/input_grid.py", "--checkpoint", "runs/no_such_run"], "runs/no_such_run"),
    (["benchmarks/eval_cost.py", "--benchmark", "no_such_benchmark"], "unknown benchmark 'no_such_benchmark'"),
])
def test_user_mistakes_exit_2_without_a_traceback(args, message, repo_root, tmp_path):
    out = ["--out_dir", str(tmp_path / "x")] if "ssod.experiment" in args else []
    r = subprocess.run([sys.executable, *args, *out], capture_output=True, text=True, cwd=repo_root)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "x").exists()
