"""A researcher's own classifier and DataLoaders (`ssod.adapt`): the model's mode and device are kept, mistakes are
refused before any pass, a factory's network reloads in a new process, and an ssod detector works inside pytorch-ood's
metric loop and grid search."""
import json
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import ssod.adapt as adapt
from ssod.adapt import Classifier, fit_detector, score, tune_detector
from ssod.outlier_scores import OutlierScores
from ssod.sources import OwnData
from ssod.metrics import auroc
from ssod.model import build_model


def tiny_classifier():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten())
    return nn.Sequential(body, nn.Linear(8, 4))


def batches(n, seed, labelled=True, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g) * scale
    return DataLoader(TensorDataset(x, torch.arange(n) % 4) if labelled else TensorDataset(x), batch_size=16)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_the_models_own_mode_is_kept(mode):
    model = tiny_classifier()
    getattr(model, mode)()
    net = Classifier(model, head="1")          # a wrapper is in train mode when built: its mode is not the model's
    fit_detector("knn", net, batches(32, 0), k=3)
    score(fit_detector("msp", net), net, batches(16, 1))
    assert all(m.training == (mode == "train") for m in model.modules())


def test_the_device_is_the_models(monkeypatch):
    seen = []
    def predict(model, data, device=None, **kw):
        seen.append(torch.device(device))
        raise StopIteration   # nothing runs on the meta device
    monkeypatch.setattr(adapt, "predict", predict)
    net = Classifier(tiny_classifier().to("meta"), head="1")
    for call in (lambda: fit_detector("knn", net, batches(8, 0)), lambda: score(adapt.make_detector("msp"), net, [])):
        with pytest.raises(StopIteration):
            call()
    assert seen == [torch.device("meta")] * 2


def test_react_refuses_a_fraction_for_a_percentile():
    net = Classifier(tiny_classifier(), head="1")
    with pytest.raises(ValueError, match=r"percentile on the 0-100 scale, in \(1, 100\) \(90, not 0.9\), got 0.9"):
        fit_detector("react", net, batches(32, 0), percentile=0.9)


def test_tuning_is_refused_before_any_pass(monkeypatch):
    def predict(*a, **k):
        raise AssertionError("a pass ran before the arguments were checked")
    monkeypatch.setattr(adapt, "predict", predict)
    net = Classifier(tiny_classifier(), head="1")
    with pytest.raises(ValueError, match=r"knn fits on the ID training data: pass train="):
        tune_detector("knn", net, batches(16, 1), batches(16, 2, False))
    with pytest.raises(ValueError, match=r"pass val_id and val_ood"):
        tune_detector("odin", net, batches(16, 1), None)


def test_the_knn_grid_fits_the_training_images():
    net = Classifier(tiny_classifier(), head="1")
    with pytest.warns(UserWarning, match=r"knn: its grid .* cut to \{'k': \[1, 10, 20\]\} for 48 training images"):
        det = tune_detector("knn", net, batches(16, 1), batches(16, 2, False), batches(48, 0))
    assert set(det.tuning) == {"k=1", "k=10", "k=20"}
    with pytest.raises(ValueError, match=r"k = 100 exceeds the 48 training images .*; pass grid= with values that fit"):
        tune_detector("knn", net, batches(16, 1), batches(16, 2, False), batches(48, 0), grid={"k": [5, 100]})


def test_a_factory_gets_the_datas_classes_and_channels():
    net = build_model("ssod.examples:small_cnn", num_classes=7, in_channels=3)
    assert net.cls_head.out_features == 7 and net.backbone[0].in_channels == 3
    net = build_model("ssod.examples:small_cnn", num_classes=7, in_channels=3, arch_args={"width": 4})
    assert net.cls_head.in_features == 4


def test_a_factorys_checkpoint_reloads_in_a_new_process(tmp_path):
    from ssod.config import make_config
    from ssod.experiment import run
    from ssod.checkpoints import model_from_checkpoint
    g = torch.Generator().manual_seed(0)
    sets = [TensorDataset(torch.randn(n, 1, 12, 12, generator=g), torch.arange(n) % 3) for n in (96, 32, 32)]
    data = OwnData(*sets, ood={"noise": TensorDataset(torch.rand(32, 1, 12, 12, generator=g))}, std=(1.0,))
    cfg = make_config("demo", benchmark="own", arch="ssod.examples:small_cnn", epochs=1, batch_size=32,
                      precision="fp32", out_dir=str(tmp_path / "run"), limit_tune=0, limit_fit=0, limit_eval=0)
    run(cfg, ["msp"], tune=False, data=data, progress=False, log=lambda *a: None)
    x = torch.randn(4, 1, 12, 12, generator=g)
    torch.save(x, tmp_path / "x.pt")
    here = model_from_checkpoint(cfg.out_dir)[0].eval()(x).logits
    code = ("import sys, json, torch; from ssod.checkpoints import model_from_checkpoint; "
            "net, c = model_from_checkpoint(sys.argv[1]); x = torch.load(sys.argv[2]); "
            "print(json.dumps([c.arch, net.eval()(x).logits.tolist()]))")
    r = subprocess.run([sys.executable, "-c", code, cfg.out_dir, str(tmp_path / "x.pt")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    arch, logits = json.loads(r.stdout)
    assert arch == "ssod.examples:small_cnn" and torch.allclose(torch.tensor(logits), here, atol=1e-6)


pood_metrics = pytest.importorskip("pytorch_ood.metrics")


@pytest.mark.parametrize("name", ["msp", "energy", "knn", "react", "mahalanobis"])
def test_an_ssod_detector_inside_pytorch_oods_metrics(name):
    from pytorch_ood.api import Detector as PeerDetector
    net = Classifier(tiny_classifier().eval(), head="1")
    train, ids, oods = batches(64, 0), batches(48, 1), batches(48, 2, False, scale=2.0)
    det = OutlierScores(name, net).fit(train)
    assert isinstance(det, PeerDetector)
    metrics = pood_metrics.OODMetrics()
    for x, y in ids:
        metrics.update(det(x), y)
    for (x,) in oods:
        metrics.update(det(x), -torch.ones(len(x), dtype=torch.long))   # pytorch-ood: a label < 0 is OOD
    ours = auroc(score(det.detector, net, ids), score(det.detector, net, oods))
    assert abs(metrics.compute()["AUROC"] - ours) < 1e-6
    z = torch.cat([net(x).features for x, _ in ids]).detach()
    assert torch.allclose(det.predict_features(z), -score(det.detector, net, ids), atol=1e-5)


def test_pytorch_oods_grid_search_tunes_an_ssod_detector():
    from pytorch_ood.utils import GridSearch
    net = Classifier(tiny_classifier().eval(), head="1")
    g = torch.Generator().manual_seed(3)
    val = DataLoader(TensorDataset(torch.cat([torch.randn(32, 1, 8, 8, generator=g),
                                              2 * torch.randn(32, 1, 8, 8, generator=g)]),
                                   torch.cat([torch.arange(32) % 4, -torch.ones(32, dtype=torch.long)])), batch_size=16)
    det = OutlierScores("knn", net)
    best = GridSearch(det, batches(64, 0), val, hyperparameter_space={"k": [1, 5, 20]}).run()
    assert best["k"] in (1, 5, 20) and det.get_hyperparameters() == {"k": best["k"]}
    with pytest.raises(ValueError, match=r"knn has no hyperparameter\(s\) \['T'\]"):
        det.set_hyperparameters(T=2.0)
