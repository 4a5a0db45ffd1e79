"""ssod on your own model: every post-hoc detector from plain DataLoaders (ODIN and Mahalanobis tuned with eps > 0
among them), the same numbers as the built-in path, clear errors for a model without the named module, and a
torchvision:<name> network trained, saved, reloaded and evaluated again to the same record."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ssod.adapt import Classifier, fit_detector, score, tune_detector
from ssod.tuning import detector_names, make_detector


@pytest.fixture(scope="module")
def tiny_resnet():
    import torchvision
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(1, 64, 3, 2, 1, bias=False)   # grey 28x28 in; stride 2 as torchvision's own (a 1x1 last map)
    return m.eval()


@pytest.fixture(scope="module")
def loaders(data_root):
    "Plain DataLoaders of normalised Fashion-MNIST tensors: train (x, y), ID and OOD validation, ID and OOD test."
    from ssod.data import load_dataset
    from ssod.benchmarks import get_benchmark, load_val_ood
    from ssod.inference import eval_transform
    bench = get_benchmark("fmnist")
    tf = eval_transform(bench)
    as_x = lambda ds, n: tf(ds.images[:n])
    train = load_dataset("fashion_mnist", "train")
    mk = lambda x, y=None: DataLoader(TensorDataset(x) if y is None else TensorDataset(x, y), batch_size=64)
    return {"train": mk(as_x(train, 256), train.labels[:256]),
            "val_id": mk(as_x(load_dataset("fashion_mnist", "val"), 96)),
            "val_ood": mk(as_x(load_val_ood(bench, limit=96), 96)),
            "test_id": as_x(load_dataset("fashion_mnist", "test"), 64),
            "test_ood": as_x(load_dataset("mnist", "test"), 64), "std": bench.std}


def test_every_posthoc_detector_from_plain_loaders(tiny_resnet, loaders):
    net = Classifier(tiny_resnet, head="fc", std=loaders["std"])
    for name in detector_names("posthoc"):
        det = fit_detector(name, net, loaders["train"], **({"k": 5} if name == "knn" else {}))
        s_id, s_ood = score(det, net, loaders["test_id"]), score(det, net, loaders["test_ood"])
        assert s_id.shape == (64,) and s_ood.shape == (64,) and torch.isfinite(s_id).all(), name
    for name in ("odin", "mahalanobis"):          # their default grids include eps > 0: input gradients on the loaders
        det = tune_detector(name, net, loaders["val_id"], loaders["val_ood"], loaders["train"])
        eps = [float(kv.split("=")[1]) for k in det.tuning for kv in k.split(", ") if kv.startswith("eps=")]
        assert max(eps) > 0 and len(det.tuning) >= 3, det.tuning
        assert torch.isfinite(score(det, net, loaders["test_id"])).all()


def test_the_new_path_gives_the_built_in_numbers(data_root):
    "An SSODNet scored through ssod's own data path and through a plain DataLoader of the same inputs: the same."
    from ssod.data import load_dataset
    from ssod.benchmarks import get_benchmark
    from ssod.inference import eval_transform, predict
    from ssod.model import build_model
    torch.manual_seed(1)
    model = build_model("small_resnet", 10, 1).eval()
    bench, tf = get_benchmark("fmnist"), eval_transform(get_benchmark("fmnist"))
    model.input_std = bench.std          # what Classifier(..., std=) records: ODIN's step is in pixel units
    train = load_dataset("fashion_mnist", "train").subset(range(200))
    test = load_dataset("mnist", "test").subset(range(50))
    train_loader = DataLoader(TensorDataset(tf(train.images), train.labels), batch_size=32)
    for name, params in (("msp", {}), ("energy", {}), ("knn", {"k": 3}), ("react", {}), ("mahalanobis", {}),
                         ("odin", {"T": 10.0, "eps": 0.002}), ("ssod", {}), ("ssod_posterior", {})):
        built_in = make_detector(name, model, **params)
        if built_in.needs_fit:
            built_in.fit(predict(model, train, tf, precision="fp32"))
        ours = (built_in.score_inputs(model, test, tf, precision="fp32") if built_in.needs_inputs
                else built_in.score(predict(model, test, tf, precision="fp32")))
        new = score(fit_detector(name, model, train_loader, **params), model, DataLoader(TensorDataset(tf(test.images)),
                                                                                       batch_size=16))
        torch.testing.assert_close(new, ours, rtol=1e-5, atol=1e-5, msg=name)


def test_a_model_without_the_named_module_fails_clearly(tiny_resnet):
    with pytest.raises(ValueError, match=r"no module 'classifier'; its linear layers: \['fc'\]"):
        Classifier(tiny_resnet, head="classifier")
    net = Classifier(tiny_resnet, head="fc")                                   # no std given
    with pytest.raises(ValueError, match="needs the std the inputs were normalised by"):
        score(make_detector("odin", net, T=1000, eps=0.0014), net, torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="SSOD needs a network with an OOD head"):
        score(make_detector("ssod", net), net, torch.zeros(2, 1, 28, 28))


def test_a_torchvision_network_trains_reloads_and_evaluates_to_the_same_record(tmp_path, data_root):
    from ssod.config import make_config
    from ssod.experiment import evaluate_checkpoint, run
    from ssod.checkpoints import model_from_checkpoint
    cfg = make_config("demo", benchmark="fmnist", arch="torchvision:mobilenet_v3_small", image_size=64, epochs=1,
                      batch_size=32, limit_train=128, limit_eval=64, precision="fp32", out_dir=str(tmp_path / "run"))
    rec = run(cfg, ["msp", "energy", "ssod"], tune=False, log=lambda *a: None, progress=False)
    model, c = model_from_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert c.arch == "torchvision:mobilenet_v3_small" and model(torch.zeros(1, 1, 64, 64), blocks=True).block_logits.shape[-1] == 2
    again = evaluate_checkpoint(tmp_path / "run", tmp_path / "eval", ["msp", "energy", "ssod"], tune=False, device="cpu",
                                log=lambda *a: None)
    assert again["ood"] == rec["ood"] and again["id_acc"] == rec["id_acc"]
    with pytest.raises(ValueError, match="torchvision has no classification model 'resnet9000'"):
        from ssod.model import build_model
        build_model("torchvision:resnet9000")


def _folders(root, n=12, size=40):
    "Two classes of small RGB images (training and test trees) and two OOD folders, as a user would have them."
    from PIL import Image
    import numpy as np
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, level in (("cat", 60), ("dog", 190)):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                img = np.clip(rng.normal(level, 30, (size, size, 3)), 0, 255).astype("uint8")
                Image.fromarray(img).save(d / f"{i}.png")
    for o in ("noise", "flat"):
        d = root / "ood" / o
        d.mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8) if o == "noise" else np.full((size, size, 3), 128, np.uint8)
            Image.fromarray(img).save(d / f"{i}.png")
    return root


def test_your_folders_train_and_evaluate_from_the_command_line(tmp_path, repo_root):
    import json, subprocess, sys
    root = _folders(tmp_path / "mine")
    base = [sys.executable, "-m", "ssod.experiment", "--benchmark", "folder", "--train_dir", str(root / "train"),
            "--test_dir", str(root / "test"), "--ood_dirs", f"{root / 'ood' / 'noise'},{root / 'ood' / 'flat'}",
            "--arch", "small_resnet", "--image_size", "32", "--epochs", "1", "--batch_size", "4", "--workers", "0",
            "--precision", "fp32", "--detectors", "msp,knn,ssod", "--detector-params", '{"knn": {"k": 2}}', "--no-tune"]
    r = subprocess.run(base + ["--out_dir", str(tmp_path / "run")], cwd=repo_root, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads((tmp_path / "run" / "record.json").read_text())
    assert set(rec["ood"]) == {"folder:noise", "folder:flat"} and rec["config"]["benchmark"] == "folder"
    assert len(rec["config"]["mean"]) == 0 and rec["runtime"]["precision"] == "fp32"    # measured, not given
    bad = root / "train" / "cat" / "3.png"
    bad.write_bytes(b"not an image")
    r = subprocess.run(base + ["--out_dir", str(tmp_path / "run2")], cwd=repo_root, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and f"{bad} is not a readable image" in r.stderr, r.stderr[-2000:]
    import pytest
    from ssod.benchmarks import folder_benchmark
    with pytest.raises(Exception, match="nowhere.*not found|not found.*nowhere"):   # the same check the CLI runs
        folder_benchmark(str(tmp_path / "nowhere"), str(root / "test"), str(root / "ood" / "noise"))


# ---- SSOD on your own network and data: a model factory by import path, torch Datasets, ssod's trainer

def tiny_cnn(num_classes: int = 10, width: int = 16):
    "A network of a user's, built by a function of an importable module (this one)."
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))


def no_pool_cnn(num_classes: int = 10):
    "A classifier ssod cannot cut: no global average pool before its classifier."
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 28 * 28, num_classes))


@pytest.fixture(scope="module")
def own_data(data_root):
    "Fashion-MNIST as plain TensorDatasets of normalised tensors (256 train, 64 val and test), MNIST as the OOD set."
    from ssod.sources import OwnData
    from ssod.data import load_dataset
    from ssod.benchmarks import get_benchmark
    from ssod.inference import eval_transform
    bench = get_benchmark("fmnist")
    tf = eval_transform(bench)
    def as_set(name, split, n):
        ds = load_dataset(name, split)
        return TensorDataset(tf(ds.images[:n]), ds.labels[:n])
    return OwnData(as_set("fashion_mnist", "train", 256), as_set("fashion_mnist", "val", 64),
                   as_set("fashion_mnist", "test", 64), ood={"mnist": as_set("mnist", "test", 64)}, std=bench.std)


def own_config(out_dir, **kw):
    from ssod.config import make_config
    return make_config("demo", **{**dict(benchmark="own", arch=tiny_cnn, arch_args={"width": 8}, epochs=1,
                                         batch_size=64, precision="fp32", out_dir=str(out_dir)), **kw})


QUIET = dict(log=lambda *a: None, progress=False)


def test_your_network_on_your_data_trains_reloads_and_evaluates_to_the_same_record(tmp_path, own_data):
    from ssod.experiment import evaluate_checkpoint, run
    from ssod.checkpoints import model_from_checkpoint
    dets = ["msp", "odin", "mahalanobis", "ssod"]           # ODIN and Mahalanobis tuned, eps > 0 in their grids
    rec = run(own_config(tmp_path / "run"), dets, data=own_data, **QUIET)
    c = rec["config"]
    assert (c["arch"], c["arch_args"], c["benchmark"]) == ("test_your_model:tiny_cnn", '{"width": 8}', "own")
    assert (c["num_classes"], c["in_channels"], c["image_size"]) == (10, 1, 28) and set(rec["ood"]) == {"mnist"}
    assert rec["data"]["sizes"] == {"train": 256, "val": 64, "test": 64, "ood:mnist": 64}
    assert any(float(k.split("eps=")[1]) > 0 for k in rec["tuning_auroc"]["odin"])
    model, cfg = model_from_checkpoint(tmp_path / "run")     # a run folder: its selected checkpoint
    assert model.backbone[0].out_channels == 8 and cfg.arch_kwargs == {"width": 8}
    again = evaluate_checkpoint(tmp_path / "run", tmp_path / "eval", dets, data=own_data, device="cpu", log=QUIET["log"])
    assert again["ood"] == rec["ood"] and again["id_acc"] == rec["id_acc"] and again["tuned"] == rec["tuned"]
    with pytest.raises(ValueError, match="trained on data sets passed in Python.*pass them again"):
        evaluate_checkpoint(tmp_path / "run", tmp_path / "eval2", dets, log=QUIET["log"])


def test_a_second_call_resumes_your_run_where_it_stopped(tmp_path, own_data):
    "Interrupted after epoch 1 of 2, the same call again continues from the checkpoint to what one run gives."
    from ssod.experiment import run
    from ssod.checkpoints import load_checkpoint
    from ssod.train import Trainer

    class Interrupt(Exception):
        pass

    def stop(trainer, rec):
        raise Interrupt
    full = run(own_config(tmp_path / "full", epochs=2), ["msp"], data=own_data, **QUIET)
    cfg = own_config(tmp_path / "cut", epochs=2)
    with pytest.raises(Interrupt):
        Trainer(cfg, callbacks=[stop], data=own_data, **QUIET).fit()
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["epoch"] == 1
    resumed = run(cfg, ["msp"], data=own_data, **QUIET)
    no_time = lambda hist: [{k: v for k, v in h.items() if k != "seconds"} for h in hist]
    assert no_time(resumed["train"]["history"]) == no_time(full["train"]["history"])
    assert resumed["ood"] == full["ood"]


def test_bad_factories_and_data_fail_before_any_work(tmp_path, own_data):
    from ssod.sources import OwnData
    from ssod.config import make_config
    from ssod.experiment import run

    def inner():
        return tiny_cnn()
    for factory in (lambda: tiny_cnn(), inner):              # no import path a checkpoint could store
        with pytest.raises(ValueError, match="cannot be found again by name"):
            own_config(tmp_path / "x", arch=factory)
    with pytest.raises(ValueError, match="__main__ does not define it"):
        own_config(tmp_path / "x", arch="__main__:no_such_factory", arch_args={})
    with pytest.raises(ValueError, match="arch_args must be JSON-serialisable"):
        own_config(tmp_path / "x", arch_args={"width": nn.ReLU})
    fails = [(dict(arch=no_pool_cnn, arch_args={}), "no global average pool"),
             (dict(arch_args={"num_classes": 5}), "gives 5 classes, the data has 10"),
             (dict(arch_args={"width": 8, "depth": 3}), "unexpected keyword argument 'depth'"),
             (dict(batch_size=512), "no optimisation step per epoch")]
    for over, message in fails[:3]:                           # checked by run before the lock, the data or a step
        with pytest.raises(ValueError, match=message):
            run(own_config(tmp_path / "bad", **over), ["msp"], data=own_data, **QUIET)
        assert not (tmp_path / "bad" / "checkpoints").exists()
    with pytest.raises(ValueError, match=fails[3][1]):
        run(own_config(tmp_path / "bad", **fails[3][0]), ["msp"], data=own_data, **QUIET)
    assert not (tmp_path / "bad" / "checkpoints").exists()
    no_test = OwnData(own_data.train, own_data.val, std=own_data.std)
    with pytest.raises(ValueError, match="an evaluation reads test, ood"):
        run(own_config(tmp_path / "bad"), data=no_test, **QUIET)
    with pytest.raises(ValueError, match="benchmark='own'"):
        run(make_config("demo", benchmark="fmnist", out_dir=str(tmp_path / "bad")), data=own_data, **QUIET)
    with pytest.raises(ValueError, match="benchmark 'own' is data passed in Python"):
        run(own_config(tmp_path / "bad"), ["msp"], **QUIET)
    with pytest.raises(ValueError, match="train is a DataLoader: pass its Dataset"):
        OwnData(DataLoader(own_data.train), own_data.val)
    assert not (tmp_path / "bad" / "checkpoints").exists()


DDP_SCRIPT = '''
import sys
from torch import nn
from torch.utils.data import TensorDataset
from ssod.sources import OwnData
from ssod.config import make_config
from ssod.data import load_dataset
from ssod.benchmarks import get_benchmark
from ssod.experiment import run
from ssod.inference import eval_transform

def tiny_cnn(num_classes=10, width=8):   # defined in the script: every process of the launch defines it
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

bench = get_benchmark("fmnist")
tf = eval_transform(bench)
def as_set(name, split, n):
    ds = load_dataset(name, split)
    return TensorDataset(tf(ds.images[:n]), ds.labels[:n])
data = OwnData(as_set("fashion_mnist", "train", 128), as_set("fashion_mnist", "val", 64),
               as_set("fashion_mnist", "test", 64), ood={"mnist": as_set("mnist", "test", 64)}, std=bench.std)
cfg = make_config("demo", benchmark="own", arch=tiny_cnn, epochs=2, batch_size=64, precision="fp64",
                  channels_last=False, num_threads=1, sync_bn=True, out_dir=sys.argv[1])   # batch norm over the global batch
run(cfg, ["msp"], tune=False, data=data, progress=False)
'''


@pytest.mark.slow   # three processes start torch: a minute on two cores (make test-slow)
def test_your_data_under_torchrun_trains_as_one_process(tmp_path, data_root):
    "2 processes x batch 32 on your Datasets train like 1 process x batch 64 (float64, as tests/test_ddp.py)."
    import os, subprocess, sys
    from pathlib import Path
    from ssod.checkpoints import load_checkpoint
    script = tmp_path / "mine.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = str(Path(sys.executable).parent / "torchrun")
    for cmd, out in (([sys.executable], "one"), ([torchrun, "--standalone", "--nproc_per_node=2"], "two")):
        r = subprocess.run(cmd + [str(script), str(tmp_path / out)], env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
    a, b = (load_checkpoint(tmp_path / out / "checkpoints" / "last.pt") for out in ("one", "two"))
    assert a["config"]["arch"] == "__main__:tiny_cnn" and len(a["history"]) == 2
    for h1, h2 in zip(a["history"], b["history"]):
        for k in h1:
            if k.startswith("train_"):
                assert h1[k] == pytest.approx(h2[k], rel=1e-9, abs=1e-12), (k, h1[k], h2[k])
    for k, v in a["model"].items():
        if v.is_floating_point():
            torch.testing.assert_close(b["model"][k], v, rtol=1e-7, atol=1e-9, msg=f"{k} differs")
    assert (tmp_path / "two" / "record.json").exists()
