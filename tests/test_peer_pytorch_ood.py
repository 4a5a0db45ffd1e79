"""Peer check: ssod's detectors on a user's model and plain DataLoaders (`ssod.adapt`) give pytorch-ood's scores, up to
the sign (pytorch-ood scores outliers: higher = more OOD) and, for Mahalanobis, a positive factor (pytorch-ood's
covariance is the sum of the centred outer products, not their mean, and it reports half the squared distance). The
largest difference per detector is printed (pytest -s)."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pood = pytest.importorskip("pytorch_ood.detector")

from ssod.adapt import Classifier, fit_detector, score   # noqa: E402

STD = [0.5, 0.25, 0.3]


class Tiny(nn.Module):
    "A small CNN whose head `fc` reads the pooled feature, as torchvision's ResNets do."
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.body(x))


@pytest.fixture(scope="module")
def setting():
    torch.manual_seed(0)
    model = Tiny().eval()
    g = torch.Generator().manual_seed(1)
    train = DataLoader(TensorDataset(torch.randn(200, 3, 12, 12, generator=g), torch.arange(200) % 4), batch_size=50)
    x = torch.randn(40, 3, 12, 12, generator=g) * 1.5
    return model, Classifier(model, head="fc", std=STD), train, x


def report(name, ours, theirs):
    gap = (ours - theirs).abs().max().item()
    print(f"\n{name}: largest |ssod - pytorch-ood| = {gap:.3g}")
    return gap


@pytest.mark.parametrize("name, peer", [
    ("msp", lambda m: pood.MaxSoftmax(m)),
    ("energy", lambda m: pood.EnergyBased(m)),
    ("odin", lambda m: pood.ODIN(m, eps=0.0014, temperature=1000.0, norm_std=STD)),
])
def test_logit_detectors_agree(setting, name, peer):
    model, net, _, x = setting
    params = {"odin": {"T": 1000.0, "eps": 0.0014}}.get(name, {})
    ours = score(fit_detector(name, net, **params), net, x).double()
    theirs = -peer(model).predict(x).double()          # outlier scores -> ssod's sign
    assert report(name, ours, theirs) < 1e-5


def test_feature_detectors_agree(setting):
    model, net, train, x = setting
    ours = score(fit_detector("knn", net, train, k=7), net, x).double()
    knn = pood.KNN(model.body, k=7)
    assert report("knn", ours, -knn.fit(train).predict(x).double()) < 1e-4

    react = pood.ReAct(model.body, model.fc, percentile=0.9).fit(train)
    ours = score(fit_detector("react", net, train, percentile=90), net, x).double()
    assert report("react", ours, -react.predict(x).double()) < 1e-4

    n = len(train.dataset)
    for eps, peer in ((0.0, pood.Mahalanobis(model.body)), (0.002, pood.MahalanobisODIN(model.body, eps=0.002, norm_std=STD))):
        theirs = peer.fit(train).predict(x).double()     # 0.5 x squared distance under the summed covariance
        ours = score(fit_detector("mahalanobis", net, train, eps=eps), net, x).double()   # -squared distance, mean covariance
        assert report(f"mahalanobis eps={eps} (after x 1 / (2 n))", ours / (2 * n), -theirs) < 1e-3 * theirs.abs().max()
