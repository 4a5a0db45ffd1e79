"""The objects-in-scenes benchmarks: disjoint photograph pools, pinned checksums, compositing whose masks match the
pixels, the prepared sets rebuilt exactly from their recorded placements; on shared scenes, disjoint regions and the
background-class correlation rho."""
import numpy as np
import pytest
import torch

from data_scripts import scenes, scenes_rho
from data_scripts.common import DataScriptError


def test_pools_are_disjoint_and_pinned():
    pools = {k: set(v) for k, v in scenes.POOLS.items()}
    assert not pools["train"] & pools["eval"] and not pools["train"] & pools["ood"] and not pools["eval"] & pools["ood"]
    pinned = set(scenes.DEBIAN_PHOTOS) | set(scenes.PACKAGE_PHOTOS)
    assert set().union(*pools.values()) <= pinned and set(scenes.MATE_PHOTOS) <= pinned
    assert all(len(h) == 64 for h in [h for *_, h in scenes.DEBIAN_PHOTOS.values()] + list(scenes.PACKAGE_PHOTOS.values()))


def test_composite_masks_match_pixels():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (300, 400), dtype=np.uint8)
    obj = np.zeros((5, 28, 28), np.uint8)
    obj[:, 6:22, 8:20] = 200                                  # a bright rectangle on black, as a garment is
    x, m, place = scenes.composite(obj, {"p": photo}, ["p"], seed=1)
    assert x.shape == m.shape == (5, 56, 56) and set(np.unique(m)) <= {0, 1}
    for i in range(5):
        _, top, left, side, oy, ox, s = place[i]
        bg = scenes._resize_one(photo[top:top + side, left:left + side], 56)
        pasted = scenes._resize_one(obj[i], s)
        on = m[i].astype(bool)
        assert on.any() and (~on).any()
        np.testing.assert_array_equal(x[i][~on], bg[~on])                      # background pixels: the photograph
        np.testing.assert_array_equal(x[i][oy:oy + s, ox:ox + s][on[oy:oy + s, ox:ox + s]],
                                      pasted[on[oy:oy + s, ox:ox + s]])         # object pixels: the object
        assert not on[:oy].any() and not on[oy + s:].any()                       # the mask stays in the object's box
        assert scenes.OBJECT_SIDE[0] <= s <= scenes.OBJECT_SIDE[1]
    x2, m2, place2 = scenes.composite(obj, {"p": photo}, ["p"], seed=1)        # seeded: the same again
    assert (x2 == x).all() and (m2 == m).all() and (place2 == place).all()


def test_photo_checksum_mismatch_is_named(tmp_path, monkeypatch):
    folder = tmp_path / scenes.DEBIAN_PACKAGE / scenes.MATE_DIR
    folder.mkdir(parents=True)
    (tmp_path / scenes.DEBIAN_PACKAGE / ".complete").touch()                  # a cached, unpacked package
    from PIL import Image
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "Aqua.jpg")
    with pytest.raises(DataScriptError, match=r"Aqua.jpg: expected sha256 5c30118205982da4.*got [0-9a-f]{64}; the "
                                              r"package mate-backgrounds is not the pinned version"):
        scenes.load_photos(tmp_path, ["Aqua.jpg"])
    monkeypatch.setitem(scenes.PACKAGE_PHOTOS, "camera", "0" * 64)
    with pytest.raises(DataScriptError, match="sample photograph camera: expected pixel sha256 0{64}"):
        scenes.load_photos(tmp_path, ["camera"])


def test_prepared_val_set_rebuilds_from_its_placement(data_root):
    from ssod.data import load_dataset
    val = load_dataset("fmnist_scenes", "val", data_root)
    garments = load_dataset("fashion_mnist", "val", data_root)
    obj = torch.load(data_root / "scenes56" / "fmnist_scenes_val.pt", weights_only=True)
    pool, place = obj["meta"]["pool"], obj["placement"].numpy()
    assert pool == scenes.POOLS["eval"] and val.masks is not None and (val.labels == garments.labels).all()
    photos = scenes.load_photos(data_root / ".cache", pool)
    for i in (0, 1, 2, 4999):
        p, top, left, side, oy, ox, s = place[i]
        bg = scenes._resize_one(photos[pool[p]][top:top + side, left:left + side], 56)
        pasted = scenes._resize_one(garments.images[i, 0].numpy(), s)
        on = val.masks[i].numpy().astype(bool)
        img = val.images[i, 0].numpy()
        np.testing.assert_array_equal(img[~on], bg[~on])
        np.testing.assert_array_equal(img[oy:oy + s, ox:ox + s][on[oy:oy + s, ox:ox + s]],
                                      pasted[on[oy:oy + s, ox:ox + s]])
    train = torch.load(data_root / "scenes56" / "fmnist_scenes_train.pt", weights_only=True)
    assert train["meta"]["pool"] == scenes.POOLS["train"] and len(train["images"]) == 55_000


def test_normalisation_constants_are_the_training_set_s(data_root):
    from ssod.data import load_dataset
    from ssod.benchmarks import get_benchmark
    x = load_dataset("fmnist_scenes", "train", data_root).images.double() / 255
    bench = get_benchmark("fmnist_scenes")
    assert (round(x.mean().item(), 4), round(x.std().item(), 4)) == (bench.mean[0], bench.std[0])


def test_shared_scene_pools_are_disjoint_pinned_and_grouped():
    id_pool, ood_pool = scenes_rho.pools()
    assert len(id_pool) == 30 and len(ood_pool) == 8 and not set(id_pool) & set(ood_pool)
    assert len(set(id_pool)) == 30 and set(id_pool + ood_pool) <= set(scenes.DEBIAN_PHOTOS) | set(scenes.PACKAGE_PHOTOS)
    assert all(len(h) == 64 for _, _, h in scenes.DEBIAN_PHOTOS.values())
    assert scenes_rho.pools() == (id_pool, ood_pool)                          # a fixed, seeded draw


@pytest.mark.parametrize("shape", [(300, 500), (500, 300)])
def test_regions_split_every_photograph_without_shared_pixels(shape):
    photo = np.arange(np.prod(shape)).reshape(shape)                          # every pixel its own value
    parts = {s: scenes_rho.region(photo, s) for s in ("train", "val", "test")}
    seen = [set(p.ravel().tolist()) for p in parts.values()]
    assert sum(map(len, seen)) == photo.size and set().union(*seen) == set(photo.ravel().tolist())   # a partition
    tall = shape[0] > shape[1]
    assert parts["train"].shape == ((round(0.6 * shape[0]), shape[1]) if tall else (shape[0], round(0.6 * shape[1])))
    assert (parts["train"] == (photo[:round(0.6 * shape[0])] if tall else photo[:, :round(0.6 * shape[1])])).all()


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_rho_is_the_share_of_own_group_backgrounds(rho):
    n, groups = 20_000, scenes_rho.PER_CLASS
    labels = np.random.default_rng(1).integers(10, size=n)
    choice, from_group = scenes_rho.background_choice(labels, rho, seed=5)
    sigma = np.sqrt(rho * (1 - rho) / n)
    assert abs(from_group.mean() - rho) <= 4 * sigma + 1e-12
    assert (choice[from_group] // groups == labels[from_group]).all()       # drawn from the class's own group
    own = (choice // groups == labels).mean()                                  # + the chance draws that land there
    expected = rho + (1 - rho) * groups / 30
    assert abs(own - expected) <= 4 * np.sqrt(expected * (1 - expected) / n)
    other, _ = scenes_rho.background_choice(labels, 0.0, seed=5)               # the same draws whatever rho
    assert (choice[~from_group] == other[~from_group]).all()


def test_composite_on_chosen_regions_keeps_masks_on_pixels():
    rng = np.random.default_rng(2)
    photos = {"a": rng.integers(0, 256, (400, 600), dtype=np.uint8), "b": rng.integers(0, 256, (300, 300), dtype=np.uint8)}
    obj = np.zeros((6, 28, 28), np.uint8)
    obj[:, 5:23, 9:19] = 220
    choice = np.array([0, 1, 1, 0, 1, 0])
    backgrounds = {k: scenes_rho.region(v, "test") for k, v in photos.items()}
    x, m, place = scenes.composite(obj, backgrounds, ["a", "b"], 3, choice=choice, ref_side={"a": 400, "b": 300})
    assert (place[:, 0] == choice).all()
    for i in range(6):
        p, top, left, side, oy, ox, s = place[i]
        bg_src = backgrounds[["a", "b"][p]]
        assert side <= min(bg_src.shape) and top + side <= bg_src.shape[0] and left + side <= bg_src.shape[1]
        bg = scenes._resize_one(bg_src[top:top + side, left:left + side], 56)
        on = m[i].astype(bool)
        assert on.any() and (~on).any()
        np.testing.assert_array_equal(x[i][~on], bg[~on])
        np.testing.assert_array_equal(x[i][on], scenes._resize_one(obj[i], s)[on[oy:oy + s, ox:ox + s]])
