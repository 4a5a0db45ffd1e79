"""What a GPU machine without the internet or faiss needs, checked on the CPU: KNN's exact torch search (the GPU's) finds
what faiss finds; pretrained weights come from a local file, and a missing one fails before any work, naming the file
and the URL to fetch it from."""
import pytest
import torch
import torch.nn.functional as F

from ssod.config import make_config
from ssod.detectors import kth_neighbour_distance
from ssod.checks import check_run


def test_knn_torch_search_equals_faiss():
    pytest.importorskip("faiss")
    g = torch.Generator().manual_seed(0)
    train = F.normalize(torch.randn(3000, 64, generator=g), dim=1)
    query = F.normalize(torch.randn(500, 64, generator=g), dim=1)
    ks = [1, 20, 200]
    faiss = kth_neighbour_distance(train, query, ks, search="faiss")
    for chunk in (2048, 7):    # in one product, and in many small ones (as on a GPU for ImageNet's 1.28M features)
        mine = kth_neighbour_distance(train, query, ks, chunk=chunk, search="torch")
        for k in ks:
            torch.testing.assert_close(mine[k], faiss[k], rtol=0, atol=1e-5)


def test_a_missing_weights_file_fails_before_any_work(tmp_path):
    cfg = make_config("paper", benchmark="cifar10", arch="resnet50", pretrained=True,
                      pretrained_path=str(tmp_path / "resnet50.pth"), out_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError) as e:
        check_run(cfg, ["msp"])
    assert str(tmp_path / "resnet50.pth") in str(e.value) and "https://download.pytorch.org/models/resnet50" in str(e.value)
    assert not (tmp_path / "run" / "checkpoints").exists()
