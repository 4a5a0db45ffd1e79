"""One configuration source, parameters that mean what they say, and every input checked before work starts: each case a
user met (papermill and the CLI overriding presets, strings where numbers belong, degenerate runs, errors that came only
after training) with the message it must print."""
import ast
import json
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest

from ssod.config import RUN_PARAMETERS, TrainConfig, make_config, parameters_cell
from ssod.files import DataNotFound
from ssod.detectors import Detector
from ssod.tuning import DETECTORS, register_detector
from ssod.checks import check_run
from ssod.experiment import main, run
from ssod.results import read_record
from ssod.train import Trainer

TINY = dict(benchmark="fmnist", epochs=1, batch_size=64, limit_train=256, limit_eval=128, precision="fp32")


def papermill(repo_root, tmp_path, *params):
    out = tmp_path / "out.ipynb"
    cmd = [str(Path(sys.executable).parent / "papermill"), "nbs/train.ipynb", str(out), *params]
    return subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)


def train_parameters(repo_root) -> dict:
    nb = json.loads((repo_root / "nbs" / "train.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    return {t.id: ast.literal_eval(node.value) for node in tree.body for t in node.targets}


# ---- one source for every default

def test_every_config_field_is_a_papermill_parameter_defaulting_to_the_preset(repo_root):
    params = train_parameters(repo_root)
    assert set(params) == {f.name for f in fields(TrainConfig)} | set(RUN_PARAMETERS)
    assert all(params[f.name] is None for f in fields(TrainConfig))
    nb = json.loads((repo_root / "nbs" / "train.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    assert "".join(cell["source"]).strip() == parameters_cell().strip(), "regenerate with ssod.config.parameters_cell()"


def test_loss_hyperparameters_are_defined_once():
    from ssod.params import LossConfig
    from ssod.losses import SSODLoss
    cfg = make_config("demo", released_thresh=0.9, lw_weight=0.3)
    loss = SSODLoss(**cfg.loss_config())
    assert loss.released_thresh == 0.9 and loss.lw_weight == 0.3      # built by name: every loss field can be set
    assert {f.name: f.default for f in fields(LossConfig)} == {f.name: f.default for f in fields(TrainConfig)
                                                                if f.name in cfg.loss_config()}


def test_preset_values_survive_the_notebook(repo_root, tmp_path, data_root):
    r = papermill(repo_root, tmp_path, "-p", "preset", "released", "-p", "benchmark", "fmnist", "-p", "epochs", "1", "-p", "limit_train", "256",
                  "-p", "limit_eval", "128", "-p", "detectors", "msp,ssod", "-p", "out_dir", str(tmp_path / "rel"))
    assert r.returncode == 0, r.stderr[-3000:]
    c = read_record(tmp_path / "rel")["config"]
    assert (c["alpha"], c["sampler"], c["ood_head"], c["freeze_backbone"]) == (0.1, "released", "mlp", True)


def test_method_and_image_size_are_parameters(repo_root, tmp_path, data_root):
    r = papermill(repo_root, tmp_path, "-p", "method", "godin", "-p", "benchmark", "fmnist", "-p", "image_size", "32",
                  "-p", "epochs", "1",
                  "-p", "limit_train", "256", "-p", "limit_eval", "128", "-p", "tune", "False",
                  "-p", "out_dir", str(tmp_path / "godin"))
    assert r.returncode == 0, r.stderr[-3000:]
    rec = read_record(tmp_path / "godin")
    assert (rec["config"]["method"], rec["config"]["alpha"], rec["config"]["image_size"]) == ("godin", 0.0, 32)
    assert "godin" in rec["ood_avg"]


# ---- types from papermill and the command line

@pytest.mark.parametrize("field, value, message", [
    ("alpha", "abc", "alpha must be a number, got 'abc'"),
    ("limit_train", 1.5, "limit_train must be an integer, got 1.5"),
    ("seed", "0.5", "seed must be an integer, got '0.5'"),
    ("image_size", 22.5, "image_size must be an integer, got 22.5"),
    ("hflip", "sometimes", "hflip must be true or false, got 'sometimes'"),
    ("epochs", 0, "epochs must be >= 1, got 0"),
    ("lr", "-1", "lr must be in (0, 10], got -1.0"),
    ("precision", "half", "unknown precision 'half'"),
    ("device", "gpu7", "device must be auto, cpu, cuda or cuda:N"),
    ("arch", "resnet9000", "unknown arch 'resnet9000'"),
    ("method", "odin", "unknown method 'odin'"),
    ("benchmark", "cifar100", "unknown benchmark 'cifar100'"),
    ("label_smoothing", 1.0, "label_smoothing must be a number in [0, 1), got 1.0"),
    ("label_smoothing", "-0.1", "label_smoothing must be a number in [0, 1), got -0.1"),
    ("optimizer", "sgd", "unknown optimizer 'sgd'; use one of adamw, muon"),
])
def test_bad_types_and_ranges_name_the_field(field, value, message):
    with pytest.raises(ValueError) as e:
        make_config("demo", **{field: value})
    assert message in str(e.value)


def test_strings_from_papermill_become_numbers():
    c = make_config("demo", alpha="0.7", epochs="4", hflip="true", image_size="56")
    assert (c.alpha, c.epochs, c.hflip, c.image_size) == (0.7, 4, True, 56)


def test_method_sets_alpha_instead_of_failing():
    assert make_config("demo", method="godin").alpha == 0.0
    with pytest.raises(ValueError, match="alpha must be 0"):
        make_config("demo", method="godin", alpha=1.5)   # an explicit contradiction still fails


def test_label_smoothing_only_where_eq9s_cross_entropy_is_trained():
    assert make_config("demo", method="supcon", label_smoothing=0.1).loss_config()["label_smoothing"] == 0.1
    with pytest.raises(ValueError, match="which method 'csi' does not train"):
        make_config("demo", method="csi", label_smoothing=0.1)


# ---- degenerate runs stop before the first step

def test_no_optimisation_step_per_epoch(tmp_path, data_root):
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), **{**TINY, "limit_train": 50})
    with pytest.raises(ValueError, match=r"no optimisation step per epoch: 50 training images .* batch_size=64"):
        Trainer(cfg, progress=False).setup()


def test_last_feature_map_must_have_blocks(tmp_path, data_root):
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), image_size=2, **TINY)
    with pytest.raises(ValueError, match=r"image_size 2 gives a 1x1 last feature map .* at least 2x2"):
        Trainer(cfg, progress=False).setup()
    assert not (tmp_path / "run" / "checkpoints").exists()


# ---- errors that used to come after training

def test_unknown_detector_fails_before_training(tmp_path, data_root):
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), **TINY)
    with pytest.raises(ValueError, match="unknown detector 'foo'; known: msp, odin"):
        run(cfg, ["msp", "foo"], progress=False, log=lambda *a: None)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bad_detector_parameters_fail_before_training(tmp_path, data_root):
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), **TINY)
    with pytest.raises(ValueError, match=r"detector 'odin' has no parameter\(s\) \['temp'\]"):
        check_run(cfg, ["odin"], {"odin": {"temp": 1000}})
    with pytest.raises(ValueError, match="detector_params names \\['knn'\\], which this run does not evaluate"):
        check_run(cfg, ["odin"], {"knn": {"k": 5}})
    with pytest.raises(ValueError, match="detector 'mos' needs a network trained with method='mos'"):
        check_run(cfg, ["mos"])
    with pytest.raises(ValueError, match="detector 'ssod' reads the OOD head, which alpha = 0 does not train"):
        check_run(replace(cfg, alpha=0.0), ["ssod"])


def test_missing_ood_sets_fail_before_training(tmp_path, data_root):
    root = tmp_path / "data"
    root.mkdir()
    (root / "FashionMNIST").symlink_to(data_root / "FashionMNIST")   # the ID set only: no OOD set prepared
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), data_root=str(root), **TINY)
    with pytest.raises(DataNotFound, match=r"5 data set\(s\) this run reads are missing(.|\n)*data_scripts.prepare mnist"):
        check_run(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_knn_k_above_the_training_set(tmp_path, data_root):
    cfg = make_config("demo", out_dir=str(tmp_path / "run"), **{**TINY, "limit_train": 100, "batch_size": 50})
    with pytest.raises(ValueError, match="knn: k = 200 exceeds the 100 training images"):
        check_run(cfg, ["knn"])                                  # the tuning grid goes up to 200
    with pytest.raises(ValueError, match="knn: k = 150 exceeds"):
        check_run(cfg, ["knn"], {"knn": {"k": 150}})
    check_run(cfg, ["knn"], {"knn": {"k": 50}})                 # fits


def test_out_dir_must_be_a_writable_folder(tmp_path, data_root):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match="out_dir .*afile exists and is not a folder"):
        check_run(make_config("demo", out_dir=str(afile), **TINY))
    with pytest.raises(ValueError, match="out_dir .*afile/sub cannot be created or written"):
        check_run(make_config("demo", out_dir=str(afile / "sub"), **TINY))


# ---- a detector is one cell

def test_a_new_detector_is_one_registered_class(tmp_path, data_root):
    @register_detector
    class MaxLogit(Detector):
        "Max logit (a toy for this test): max_i f_i(x)."
        name, hyperparameters, order = "toy_maxlogit", ("scale",), 50
        grid = {"scale": [1.0, 2.0]}

        def __init__(self, scale: float = 1.0):
            self.scale = scale

        def score(self, outputs):
            return self.scale * outputs.logits.amax(-1)

    try:
        cfg = make_config("demo", out_dir=str(tmp_path / "run"), **TINY)
        rec = run(cfg, ["msp", "toy_maxlogit"], progress=False, log=lambda *a: None)
        assert set(rec["ood_avg"]) == {"msp", "toy_maxlogit"}
        assert rec["tuned"]["toy_maxlogit"]["scale"] in (1.0, 2.0)
        assert set(rec["tuning_auroc"]["toy_maxlogit"]) == {"scale=1.0", "scale=2.0"}
        with pytest.raises(ValueError, match="has no parameter"):
            check_run(cfg, ["toy_maxlogit"], {"toy_maxlogit": {"T": 2}})
    finally:
        DETECTORS.pop("toy_maxlogit")


def test_main_exits_2_before_training_on_an_unknown_detector(tmp_path, data_root):
    assert main(["--detectors", "msp,foo", "--out_dir", str(tmp_path / "x"), "--epochs", "1", "--limit_train", "256"]) == 2
    assert not (tmp_path / "x" / "checkpoints").exists()
