"""ssod on your own model: every post-hoc detector from plain DataLoaders (ODIN and Mahalanobis tuned with eps > 0
among them), the same numbers as the built-in path, clear errors for a model without the named module, and a
torchvision:<name> network trained, saved, reloaded and evaluated again to the same record."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ssod.adapt import Classifier, fit_detector, score, tune_detector
from ssod.detectors import detector_names, make_detector


@pytest.fixture(scope="module")
def tiny_resnet():
    import torchvision
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
    return m.eval()


@pytest.fixture(scope="module")
def loaders(data_root):
    "Plain DataLoaders of normalised Fashion-MNIST tensors: train (x, y), ID and OOD validation, ID and OOD test."
    from ssod.data import get_benchmark, load_dataset, load_val_ood
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
    from ssod.data import get_benchmark, load_dataset
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
    from ssod.train import model_from_checkpoint
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
    from ssod.data import folder_benchmark
    with pytest.raises(Exception, match="nowhere.*not found|not found.*nowhere"):   # the same check the CLI runs
        folder_benchmark(str(tmp_path / "nowhere"), str(root / "test"), str(root / "ood" / "noise"))
