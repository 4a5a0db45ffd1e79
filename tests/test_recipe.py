"""The offline recipe on hand-made cases: the learning rate at the first, middle and last step of its schedule, and a
translated (and flipped) image whose object mask moves in step with its pixels."""
from dataclasses import replace

import pytest
import torch

from ssod.config import make_config
from ssod.optim import lr_factor
from ssod.transforms import BatchTransform, shift_params


@pytest.mark.parametrize("preset", ["demo", "trained"])
def test_linear_schedule_warms_up_then_falls_to_zero(preset):
    cfg = replace(make_config(preset, benchmark="fmnist_scenes"), epochs=2, warmup_epochs=0.1)
    steps = 100                                   # per epoch: 200 steps in all, the first 10 warming up
    assert cfg.lr_schedule == "linear"
    assert lr_factor(0, steps, cfg) == pytest.approx(1 / 10)     # the first step
    assert lr_factor(9, steps, cfg) == pytest.approx(1.0)
    assert lr_factor(10, steps, cfg) == pytest.approx(1.0)
    assert lr_factor(105, steps, cfg) == pytest.approx(0.5)      # half-way through the 190 steps after the warm-up
    assert lr_factor(199, steps, cfg) == pytest.approx(1 / 190)  # the last step
    assert lr_factor(200, steps, cfg) == 0.0


def test_optimiser_follows_the_schedule():
    from ssod.model import build_model
    from ssod.optim import make_optimizer
    cfg = replace(make_config("trained", benchmark="fmnist_scenes"), epochs=1, warmup_epochs=0.0)
    net = build_model(cfg.arch, 10, 1)
    opt, sched, _ = make_optimizer(net, cfg, steps_per_epoch=10, device="cpu", precision="fp32")
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step(); sched.step()
    assert lrs[0] == pytest.approx(cfg.lr) and lrs[5] == pytest.approx(cfg.lr / 2)
    assert lrs[9] == pytest.approx(cfg.lr / 10)


def square_scene(n=6, size=20):
    "Images of a bright 5x7 object on a horizontal ramp background, each at another place, with their masks."
    ramp = torch.linspace(0, 100, size).round().to(torch.uint8).expand(size, size)
    x = ramp.repeat(n, 1, 1, 1).clone()
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    for i in range(n):
        r, c = 5 + i, 6 + i // 2
        x[i, 0, r:r + 5, c:c + 7] = 250
        masks[i, r:r + 5, c:c + 7] = 1
    return x, masks


@pytest.mark.parametrize("hflip", [False, True])
def test_shifted_image_keeps_its_mask_in_step(hflip):
    x, masks = square_scene()
    t = BatchTransform((0.0,), (1.0,), 20, train=True, augment="shift", hflip=hflip, max_shift=3)
    out, moved = t(x, torch.Generator().manual_seed(5), masks=masks)
    assert out.shape == (6, 1, 20, 20) and moved.shape == (6, 20, 20) and moved.dtype == masks.dtype
    obj = out[:, 0] > 200 / 255
    assert torch.equal(obj, moved.bool()), "the object's pixels and its mask went different ways"
    assert torch.equal(moved.sum((1, 2)), masks.sum((1, 2))), "the object left the frame or changed size"
    # the draws the transform made (shifts, then flips, from one generator): each image is its original, moved and
    # flipped by them (interior; the border is repeated)
    g = torch.Generator().manual_seed(5)
    _, _, cx, cy = shift_params(6, 20, 3, g)
    flips = torch.rand(6, generator=g) < 0.5 if hflip else torch.zeros(6, dtype=torch.bool)
    assert not hflip or 0 < flips.sum() < 6, "the case should hold flipped and unflipped images"
    for i in range(6):
        dx, dy = round((cx[i].item() - 0.5) * 20), round((cy[i].item() - 0.5) * 20)
        src = x[i, 0].float() / 255
        expect = src.flip(-1).roll((-dy, dx), (0, 1)) if flips[i] else src.roll((-dy, -dx), (0, 1))
        assert torch.allclose(out[i, 0, 3:-3, 3:-3], expect[3:-3, 3:-3], atol=1e-5)


def test_shift_is_drawn_from_the_generator_and_bounded():
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, b = shift_params(1000, 56, 4, g1), shift_params(1000, 56, 4, g2)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    d = torch.stack([(a[2] - 0.5) * 56, (a[3] - 0.5) * 56])
    assert torch.allclose(d, d.round(), atol=1e-4) and d.round().abs().max() == 4


def test_evaluation_does_not_move_the_mask():
    x, masks = square_scene()
    out, same = BatchTransform((0.0,), (1.0,), 20)(x, masks=masks)
    assert torch.equal(same, masks) and torch.allclose(out, x.float() / 255)
