"""SSOD on a vision transformer's tokens: torchvision's ViTs and `small_vit` give their patch tokens as the map Eq. 6-10
read, and an SSOD network with the topk (LoCoOp) sampler trains on objects in scenes, its sampler checked against the
object masks."""
import pytest
import torch

from ssod.config import make_config
from ssod.model import build_model
from ssod.train import Trainer


def test_a_torchvision_vit_gives_its_token_grid():
    net = build_model("torchvision:vit_b_16", num_classes=10, in_channels=3)
    o = net(torch.zeros(1, 3, 224, 224), blocks=True)
    assert o.feature_map.shape == (1, 768, 14, 14) and o.block_logits.shape == (1, 10, 14, 14)
    assert o.features.shape == (1, 768) and o.id_logit.shape == (1,)


def test_small_vit_trains_with_ssod_and_the_topk_sampler(tmp_path, data_root):
    cfg = make_config("demo", benchmark="fmnist_scenes", arch="small_vit", alpha=1.5, sampler="topk", topk=2, epochs=1,
                      batch_size=64, limit_train=256, limit_eval=128, precision="fp32", out_dir=str(tmp_path / "run"))
    tr = Trainer(cfg, log=lambda *a: None, progress=False)
    tr.fit()
    last = tr.history[-1]
    assert torch.isfinite(torch.tensor(last["train_ce"])) and 0 <= last["val_acc"] <= 1
    s = last["sampler"]                              # Eq. 7 / topk labels of the 7x7 tokens against the garment masks
    assert abs(s["id_blocks"] + s["ood_blocks"] + s["ignored_blocks"] - 1) < 1e-6


def test_a_timm_vit_trains_with_ssod_and_its_checkpoint_reloads(tmp_path, data_root):
    pytest.importorskip("timm")
    from ssod.checkpoints import model_from_checkpoint
    args = {"img_size": 56, "patch_size": 8, "depth": 2, "embed_dim": 64, "num_heads": 2}   # a 7x7 token grid
    cfg = make_config("demo", benchmark="fmnist_scenes", arch="timm:vit_tiny_patch16_224", arch_args=args, alpha=1.5,
                      epochs=1, batch_size=64, limit_train=128, limit_eval=64, precision="fp32",
                      out_dir=str(tmp_path / "run"))
    tr = Trainer(cfg, log=lambda *a: None, progress=False)
    tr.fit()
    x = torch.randn(2, 1, 56, 56)
    o = tr.model.eval()(x, blocks=True)
    assert o.feature_map.shape == (2, 64, 7, 7) and o.block_logits.shape == (2, 10, 7, 7)
    again, c = model_from_checkpoint(cfg.out_dir)        # rebuilt from its name and arch_args, weights as trained
    with torch.no_grad():
        assert torch.allclose(again(x).logits, tr.model(x).logits, atol=1e-5) and c.arch_args == cfg.arch_args
