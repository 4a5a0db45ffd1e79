"""Nothing a user made is lost or silently wrong: one writer per run folder, evaluations beside training records,
resume=False sets old results aside, detector values checked before training, papermill typos named, and messages
that name the problem."""
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from ssod.config import make_config
from ssod.checks import check_run, parse_detector_params
from ssod.experiment import RunLock, RunFolderBusy, evaluate_checkpoint, run
from ssod.results import read_record

TINY = dict(benchmark="fmnist", epochs=1, batch_size=64, limit_train=256, limit_eval=64, precision="fp32")
quiet = lambda *a, **k: None


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    "A finished tiny training run: its folder."
    out = tmp_path_factory.mktemp("nothing_lost") / "run"
    run(make_config("demo", out_dir=str(out), **TINY), ["msp"], tune=False, log=quiet, progress=False)
    return out


def test_a_second_run_into_a_held_folder_fails_at_once(tmp_path, repo_root, data_root):
    out = tmp_path / "run"
    with RunLock(out, quiet):
        t0 = time.time()
        r = subprocess.run([sys.executable, "-m", "ssod.experiment", "--benchmark", "fmnist", "--epochs", "1",
                            "--limit_train", "256", "--limit_eval", "64", "--out_dir", str(out)],
                           cwd=repo_root, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and f"{out} is in use by another run (pid {os.getpid()} on" in r.stderr, r.stderr
        assert time.time() - t0 < 60 and not (out / "checkpoints").exists()          # before any training step
    with pytest.raises(RunFolderBusy):                                              # the same within one process
        with RunLock(out, quiet), RunLock(out, quiet):
            pass


def test_a_dead_holder_s_lock_is_taken_over_with_a_message(tmp_path):
    (tmp_path / ".lock").write_text("pid 999999 on elsewhere, since 2026-01-01 00:00:00\n")   # no process holds it
    said = []
    with RunLock(tmp_path, said.append):
        assert f"pid {os.getpid()} on" in (tmp_path / ".lock").read_text()
    assert said and "took over the lock" in said[0] and "pid 999999" in said[0]
    assert (tmp_path / ".lock").read_text() == ""                                   # released: nothing left to take over


def test_an_evaluation_never_replaces_a_training_record(trained, tmp_path):
    before = (trained / "record.json").read_bytes()
    with pytest.raises(ValueError, match="holds a training run: an evaluation there would replace its record"):
        evaluate_checkpoint(trained, trained, ["msp"], tune=False, device="cpu", log=quiet)
    assert (trained / "record.json").read_bytes() == before
    rec = evaluate_checkpoint(trained, trained / "eval" / "energy", ["energy"], benchmark="fmnist", tune=False,
                              device="cpu", log=quiet)
    assert (trained / "record.json").read_bytes() == before
    assert rec["config"]["benchmark"] == "fmnist" and rec["config"]["eval_benchmark"] == "fmnist"
    with pytest.raises(ValueError, match="reads the OOD head, which alpha = 0 does not train"):
        ce = make_config("demo", alpha=0, out_dir=str(tmp_path / "ce"), **TINY)
        run(ce, ["ssod"], tune=False, log=quiet, progress=False)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):                  # before the evaluation
        evaluate_checkpoint(trained, afile, ["msp"], tune=False, device="cpu", log=quiet)


def test_resume_false_sets_the_earlier_results_aside(trained, tmp_path):
    import shutil
    out = tmp_path / "again"
    shutil.copytree(trained, out, ignore=shutil.ignore_patterns("eval"))
    old = (out / "record.json").read_bytes()
    said = []
    rec = run(make_config("demo", out_dir=str(out), resume=False, seed=1, **TINY), ["msp"], tune=False, log=said.append,
              progress=False)
    (previous,) = (out / "previous").iterdir()
    assert (previous / "record.json").read_bytes() == old and (previous / "checkpoints" / "last.pt").exists()
    assert read_record(out)["config"]["seed"] == 1 == rec["config"]["seed"]           # the record fits its checkpoints
    assert any("earlier results" in s for s in said)


@pytest.mark.parametrize("params, message", [
    ({"knn": {"k": 0}}, "k must be a whole number >= 1, got 0"),
    ({"knn": {"k": 2.5}}, "k must be a whole number >= 1, got 2.5"),
    ({"react": {"percentile": 150}}, "on the 0-100 scale, in (1, 100) (90, not 0.9), got 150"),
    ({"odin": {"T": -1}}, "T must be > 0, got -1"),
    ({"mahalanobis": {"eps": -0.1}}, "eps must be >= 0"),
    ({"knn": {"k": 10_000}}, "exceeds the 256 training images"),
    ("[1, 2]", "must map detectors to parameters"),
    ('{"ssod": 3}', "each detector needs a mapping of its parameters"),
    ("{odin", "detector_params is not valid JSON"),
])
def test_every_detector_value_is_checked_before_training(tmp_path, data_root, params, message):
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), **TINY)
    with pytest.raises(ValueError, match=re.escape(message)):
        check_run(cfg, None, params)


def test_too_little_tuning_data_is_said(tmp_path, data_root):
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), **{**TINY, "limit_tune": 1})
    with pytest.warns(UserWarning, match="tuned on 1 ID and 1 OOD validation images"):
        check_run(cfg, ["knn"])


def test_a_misspelt_papermill_parameter_fails_naming_the_closest(tmp_path, repo_root):
    cmd = [str(Path(sys.executable).parent / "papermill"), "nbs/train.ipynb", str(tmp_path / "o.ipynb"),
           "-p", "epoch", "2", "-p", "out_dir", str(tmp_path / "run")]
    r = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert r.returncode != 0 and "unknown parameter(s): 'epoch' (did you mean 'epochs'?)" in r.stderr, r.stderr[-2000:]
    assert "Unable to parse" not in r.stderr and "Passed unknown parameter: out_dir" not in r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field, value, message", [
    ("alpha", "1e308", "alpha must be a number in [0, 1000]"),
    ("seed", str(2**62), "seed must be in [0, 2^31)"),
    ("lr", "1e9", "lr must be in (0, 10]"),
])
def test_overflowing_values_name_their_option(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_config("demo", **{field: value})


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file "
                 "write failed"),
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 9728 vs 9622"),
    OSError(28, "No space left on device"),
])
def test_disk_full_says_so(tmp_path, monkeypatch, error):
    from ssod import files
    def full(*a, **k):
        raise error
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(files.DiskFull, match=r"no space left to write .*last.pt: [0-9.]+ MiB free"):
        files.save_atomic({"x": 1}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []                                          # nothing written half


def test_library_inputs_are_checked():
    from ssod.detectors import KNN, MSP
    from ssod.framework import Outputs
    from ssod.metrics import auroc, ood_metrics
    with pytest.raises(ValueError, match=r"logits must have 2 dimension\(s\)"):
        MSP().score(Outputs(torch.randn(5), torch.randn(5, 3)))
    with pytest.raises(ValueError, match="scores must be one number per image"):
        auroc(torch.randn(4, 2), torch.randn(4))
    with pytest.warns(UserWarning, match="every score is the same"):
        ood_metrics(torch.ones(8), torch.ones(8))
    with pytest.raises(ValueError, match="k must be a whole number >= 1"):
        KNN(k=0)
    with pytest.raises(ValueError, match="call fit"):
        KNN().score(Outputs(torch.randn(3, 2), torch.randn(3, 4)))
    with pytest.raises(ValueError, match="same C"):
        KNN(1).fit(Outputs(torch.randn(3, 2), torch.randn(3, 4))).score(Outputs(torch.randn(2, 2), torch.randn(2, 5)))
    assert parse_detector_params('{"odin": {"T": 10}}') == {"odin": {"T": 10}}


def test_records_and_tables_say_what_is_wrong(trained, tmp_path, capsys):
    from ssod.results import main
    rec = json.loads((trained / "record.json").read_text())
    del rec["ood"]["mnist"]["msp"]["auroc"]
    bad = tmp_path / "bad" / "record.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match=rf"{bad}: record ood\['mnist'\]\['msp'\] lacks \['auroc'\]"):
        read_record(bad)
    other = json.loads((trained / "record.json").read_text())
    other["runtime"]["precision"] = "bf16"
    (tmp_path / "bf16").mkdir()
    (tmp_path / "bf16" / "record.json").write_text(json.dumps(other))
    main([str(trained), str(tmp_path / "bf16")])
    out = capsys.readouterr().out
    assert "== evaluated on fmnist, scores in fp32" in out and "== evaluated on fmnist, scores in bf16" in out


def test_more_threads_than_cores_is_warned_about():
    from ssod.runtime import available_cores, set_threads
    n = torch.get_num_threads()
    try:
        with pytest.warns(UserWarning, match=f"num_threads {available_cores() + 1} exceeds"):
            set_threads(available_cores() + 1, "cpu")
    finally:
        torch.set_num_threads(n)


def test_a_set_of_the_wrong_size_is_refused(tmp_path, data_root):
    from data_scripts.common import save_image_set
    from ssod.data import load_dataset
    import shutil
    root = tmp_path / "root"
    (root / "scenes56").mkdir(parents=True)
    save_image_set(root / "scenes56" / "textures56.pt", torch.zeros(4, 1, 28, 28, dtype=torch.uint8), name="textures56")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                                            # no manifest here
        with pytest.raises(ValueError, match="holds 28x28 images, but textures56 is 56x56"):
            load_dataset("textures56", root=root)
    shutil.rmtree(root)
