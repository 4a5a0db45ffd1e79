"""Objects in scenes: the offline benchmark `fmnist_scenes`, where every image has an object and a background.

Each in-distribution image is a Fashion-MNIST garment pasted at a random position and scale onto a random crop of a
natural photograph, grey, 56x56, with its object mask (1 where the garment's pixels are). The photographs come from
offline sources and are split, by name and before any result was seen, into three disjoint pools, so that no
background seen in training appears in a test set:

- `train`: crops behind the training garments;
- `eval`: crops behind the validation and test garments (ID validation and ID test);
- `ood`: crops behind every OOD test set that has a background.

Sources (every file checked against the sha256 below before use):
- Debian package `mate-backgrounds` 1.26.0-1 (fetched with `apt-get download`): the twelve photographs of
  /usr/share/backgrounds/mate/nature/ (licences in the package's copyright file);
- scikit-image's bundled sample photographs (astronaut, camera, chelsea, coffee, rocket) and scikit-learn's two sample
  images (china.jpg, flower.jpg); their pixels are checked by sha256 of the decoded array.

Output, in ROOT/scenes56/ (each file recorded in ROOT/manifest.json):
- `fmnist_scenes_{train,val,test}.pt`: ID splits. Train: the 55,000 Fashion-MNIST training garments of
  `ssod.data.train_val_split` on `train` photographs; val: the other 5,000 on `eval` photographs; test: the 10,000 test
  garments on `eval` photographs. Val and test carry `masks` (uint8 N x 56 x 56); every split keeps each image's
  placement (photo, crop box, object box) as `placement` (int32 N x 7, columns in `meta["placement_columns"]`).
- OOD test sets, 2,000 images each (noise 1,000 per kind), grouped before any result was seen:
  near: `mnist_scenes` (MNIST digits pasted onto `ood` photographs exactly as the garments are; with masks) and
  `empty_scenes` (`ood` photograph crops, no object); texture: `textures56` (scikit-image brick/grass/gravel); noise:
  `uniform_noise56`, `gaussian_noise56_sigma64` (N(128, 64^2), clipped) and `smooth_noise56` (uniform noise blurred
  with a Gaussian of sigma 3 px, stretched to 0..255)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .common import DataScriptError, debian_package_dir, prepare_built_set
from .offline_ood import TEXTURE_IMAGES, _skimage, crops_of, noise_images, resize, to_grey

SIZE = 56                    # image side; the small networks' last map is 14x14 at this size
OBJECT_SIDE = (24, 40)       # the pasted object's side in pixels, uniform (inclusive)
CROP_FRAC = (0.15, 0.5)      # background crop side as a fraction of the photograph's short side
PHOTO_SHORT_SIDE = 448       # photographs are downscaled to this short side first (antialiased)
SEED = 20241127
N_OOD, N_NOISE = 2000, 1000
FOLDER = "scenes56"

DEBIAN_PACKAGE = "mate-backgrounds"
MATE_DIR = "usr/share/backgrounds/mate/nature"
# sha256 of the files in mate-backgrounds 1.26.0-1 (Debian bookworm)
MATE_PHOTOS = {
    "Aqua.jpg": "5c30118205982da441bf7e6a1ada636a8a0be879408140b3148280c665ed6bce",
    "Blinds.jpg": "f7aac0dcc2e06d0491643e84df3da1d9db7c4610f58806a880d56e074799f600",
    "Dune.jpg": "8a67c2cb0be8c46b70c237311a4fa4d2b4ac7d39568135384787801fa5cc9a91",
    "FreshFlower.jpg": "972b0a0c4e5e3fa93f4f244fc84bc64b121a5eac3aaa5856f1308c1f38a02f8e",
    "Garden.jpg": "d3095ee09d425ef23d27155412136cf14fc3c9af76ca58b452f55e23da324e78",
    "GreenMeadow.jpg": "8fa0de0aa4089f7319c9fb7a6d006d4cab6023e8c8853731557cff53567b4832",
    "LadyBird.jpg": "e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d",
    "RainDrops.jpg": "3e4ea9671c28c90a86cf67b3db9daf18c4741587c596333a7529ca589aaa0c16",
    "Storm.jpg": "77ca53077831d3237f73393a91fc879158abc046d852941c26e90de336356957",
    "TwoWings.jpg": "665e5abf8a5399070a91a9a8e455fe071e5b61697ff78fdeda4e9843ef545aeb",
    "Wood.jpg": "19c78500ac00a622e19907ab9cc7d06d46fe08c4a6142759a84195696150ec07",
    "YellowFlower.jpg": "254da96256acb7add685679775a04d1e4a5bc8cd13e5a5a3d61351ce198a5306",
}
# the photographs (not the drawings or renders) of lomiri-wallpapers-16.04 and -20.04 20.04.0-2 (Debian bookworm):
# CC-BY-4.0, CC-BY-SA-3.0/4.0 or CC0-1.0 by their authors (the packages' copyright files)
LOMIRI_DIR = "usr/share/backgrounds"
LOMIRI_16_PHOTOS = {
    "Bridge_by_Sander_Klootwijk.jpg": "bd86b081f9975e2b83527f71e49b9271a8ab40885428395969d9f7d834d7f050",
    "Dragonfly_by_Bolly.jpg": "af5af17841009732def24b09bb1e669a1b09d2b4bdeee7812c371101c30d2bb3",
    "Picture_0B_by_freespace.jpg": "c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad",
    "Picture_1A_by_freespace.jpg": "89e86af38d04daaef975665dc2127e9fa76f0fd68f4eea105a2d0ae3390b010b",
    "Wine_by_Jakkub_Mede.jpg": "d2e96e6d4da40dd804b3d0ce295e94de04a2d7d9b6785d42cd9d92ba58bced74",
    "aitzgorri_by_Aitzol_Berasategi.jpg": "66268e7b48f8854d36a28765fac6e23ec1aee251daa6da1f64715f201020ad36",
    "free_by_Peter_Nerlich.jpg": "85a5453c2fed514c75973016f3d862aca62eb7ca087618822469274ac1092373",
    "friends_by_Aitzol_Berasategi.jpg": "cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d",
    "greentock_by_Peter_Nerlich.jpg": "e7b20e2db9dcd6e2b278ca55873c2110b35d89cd38b04d0b18728726888e6889",
    "life_by_Aitzol_Berasategi.jpg": "4c119350ead80201fe256850c3d316309ddfb4bdf10b235ce982dcde0c667c05",
    "picosdeeuropa_by_Aitzol_Berasategi.jpg": "414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a",
    "seeding_by_Clements_Engelhardt.jpg": "a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f",
    "sunset_by_Aitzol_Berasategi.jpg": "474dab6a4b9f94dc76c29dfe30e9f5db4af0fd2e33fe5d695f8152b371efca18",
}
LOMIRI_20_PHOTOS = {
    "Infinite-Sea_by_Aury88.jpg": "9319dfb3651833881339a8d9b769b99efaf474969e6cd58e427eb2524aca8e8a",
    "Kleiber_by_Lukas_Baubkus.jpg": "6572410c09f4492c74ccadde133565a14c0161617d5917d4c820c66d65a44ba7",
}
# name -> (Debian package, folder in it, sha256 of the file)
DEBIAN_PHOTOS = {**{n: (DEBIAN_PACKAGE, MATE_DIR, h) for n, h in MATE_PHOTOS.items()},
                 **{n: ("lomiri-wallpapers-16.04", LOMIRI_DIR, h) for n, h in LOMIRI_16_PHOTOS.items()},
                 **{n: ("lomiri-wallpapers-20.04", LOMIRI_DIR, h) for n, h in LOMIRI_20_PHOTOS.items()}}
# sha256 of the decoded pixel arrays (shape and bytes) of the scikit-image / scikit-learn sample photographs
PACKAGE_PHOTOS = {
    "astronaut": "7605af19ba2b975845037d479d9429d3fbc334ff78c7b51f67f112d50f85ed65",
    "camera": "4c25d57d0fcec8b28b0931b30543360fe332ee044bb5f3d461cc6325af018ed9",
    "chelsea": "2a48da897e30584d1ae09abf8802730963e97735ab7f4ccede25b412ab11e5dd",
    "coffee": "013a8175a6f60538e29aa8bee676f3e4b4c9a4388defc9a81368b20fc7b3fe9c",
    "rocket": "9d55b6a566c73f3c20e2e36b81acc5d14fddc66453247ba544eced175a87cf54",
    "coins": "6f62becaf20fd036880a27a059c83b0ee2e67895243ab9241b12eabd2514d46d",
    "hubble_deep_field": "b368ad50e13b6113ba330ad1fdd6dbe41ad8074c2c97791f5f34d510b886586e",
    "moon": "8711e607fc0971cb6b59b88f048c4b5ce569b5debdfd3bd15d813f710f6950ee",
    "motorcycle_left": "6a51b16e82babbafbffdff644108b2085a8ee609f08cfdc0d60bff950e42b6fc",  # the stereo pair's left
    "china.jpg": "9459dffd4ad72e7b57c431b62b1c14c636e1885ca56c49f1a7efe5a1bd4b448a",
    "flower.jpg": "028008e42002966d0d18ae40c6aeb65f49ffb1a0238f997431a2a0d78538d15c",
}
POOLS = {
    "train": ["Aqua.jpg", "Blinds.jpg", "Dune.jpg", "Garden.jpg", "GreenMeadow.jpg", "RainDrops.jpg", "Storm.jpg",
              "Wood.jpg", "astronaut", "coffee", "rocket"],
    "eval": ["FreshFlower.jpg", "TwoWings.jpg", "chelsea", "china.jpg"],
    "ood": ["LadyBird.jpg", "YellowFlower.jpg", "camera", "flower.jpg"],
}
ID_SPLITS = ("train", "val", "test")
NEAR = ("mnist_scenes", "empty_scenes")
FAR = ("textures56", "uniform_noise56", "gaussian_noise56_sigma64", "smooth_noise56")
OOD_SETS = NEAR + FAR


def dest(root, name) -> Path:
    return Path(root) / FOLDER / f"{name}.pt"


def id_name(split: str) -> str:
    return f"fmnist_scenes_{split}"


def array_sha256(a: np.ndarray) -> str:
    "sha256 of an array's shape and bytes: pins a decoded image whatever the file format it came from."
    a = np.ascontiguousarray(a)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()


def _downscale(grey: np.ndarray, short=PHOTO_SHORT_SIDE) -> np.ndarray:
    h, w = grey.shape
    s = short / min(h, w)
    if s >= 1:
        return grey
    t = torch.as_tensor(grey, dtype=torch.float32)[None, None]
    out = F.interpolate(t, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True, align_corners=False)
    return out[0, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def _sample_photo(name: str) -> np.ndarray:
    "A scikit-image or scikit-learn sample photograph by name."
    if name.endswith(".jpg"):
        from sklearn.datasets import load_sample_images
        samples = load_sample_images()
        return {Path(f).name: img for f, img in zip(samples.filenames, samples.images)}[name]
    if name == "motorcycle_left":
        import skimage.data
        return skimage.data.stereo_motorcycle()[0]
    return _skimage(name)


_loaded: dict = {}   # (cache, name) -> photograph: each is decoded and checked once per process


def load_photos(cache, names=None) -> dict:
    "{name: grey uint8 photograph, downscaled}, every source checked against its pinned sha256."
    from PIL import Image
    names = list(names or [n for pool in POOLS.values() for n in pool])
    unknown = set(names) - set(DEBIAN_PHOTOS) - set(PACKAGE_PHOTOS)
    if unknown:
        raise DataScriptError(f"unknown photographs {sorted(unknown)}")
    out = {}
    for n in names:
        if (str(cache), n) in _loaded:
            out[n] = _loaded[str(cache), n]
            continue
        if n in DEBIAN_PHOTOS:
            package, folder, want = DEBIAN_PHOTOS[n]
            path = debian_package_dir(package, cache) / folder / n
            if not path.exists():
                raise DataScriptError(f"{path} is missing from the Debian package {package}")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != want:
                raise DataScriptError(f"{path}: expected sha256 {want}, got {digest}; the package {package} is not "
                                      "the pinned version (mate-backgrounds 1.26.0-1, lomiri-wallpapers-* 20.04.0-2)")
            with Image.open(path) as im:
                out[n] = _downscale(to_grey(np.asarray(im.convert("RGB"))))
        else:
            img = _sample_photo(n)
            digest = array_sha256(np.asarray(img))
            if digest != PACKAGE_PHOTOS[n]:
                raise DataScriptError(f"sample photograph {n}: expected pixel sha256 {PACKAGE_PHOTOS[n]}, got {digest}; "
                                      "the installed scikit-image / scikit-learn ships a different image")
            out[n] = _downscale(to_grey(img))
        _loaded[str(cache), n] = out[n]
    return out


def _resize_one(img: np.ndarray, side: int) -> np.ndarray:
    return resize(img[None], side)[0]


def composite(objects: np.ndarray, photos: dict, pool: list, seed: int, size: int = SIZE, choice=None, ref_side=None):
    """Paste every grey 28x28 object (black background, as Fashion-MNIST and MNIST are) onto a background crop.

    For object i: background `choice[i]` of `pool` (None: drawn uniformly), a square crop whose side is a uniform
    fraction CROP_FRAC of `ref_side[name]` (default: the background's own short side; at most that short side),
    resized to size x size; the object resized to a side drawn from OBJECT_SIDE and placed uniformly inside the image.
    The mask is the resized object's pixels above 1/8 of its maximum grey level (its own black background excluded);
    the image takes the object's pixels there and the photograph's elsewhere.
    Returns (images N x size x size uint8, masks N x size x size uint8 in {0, 1}, placement int32 N x 7:
    background index in `pool`, crop top, left, side, object top, left, side)."""
    rng = np.random.default_rng(seed)
    n = len(objects)
    images = np.empty((n, size, size), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    placement = np.empty((n, 7), np.int32)
    lo, hi = OBJECT_SIDE
    for i in range(n):
        p = int(rng.integers(len(pool))) if choice is None else int(choice[i])
        photo = photos[pool[p]]
        h, w = photo.shape
        ref = min(h, w) if ref_side is None else ref_side[pool[p]]
        side = min(min(h, w), max(size, int(rng.uniform(*CROP_FRAC) * ref)))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        bg = _resize_one(photo[top:top + side, left:left + side], size)
        s = int(rng.integers(lo, hi + 1))
        oy, ox = int(rng.integers(0, size - s + 1)), int(rng.integers(0, size - s + 1))
        obj = _resize_one(objects[i], s)
        m = obj > max(int(obj.max()) // 8, 1)
        window = bg[oy:oy + s, ox:ox + s]
        window[m] = obj[m]
        masks[i, oy:oy + s, ox:ox + s] = m
        images[i] = bg
        placement[i] = (p, top, left, side, oy, ox, s)
    return images, masks, placement


def noise(kind: str, n: int, seed: int, size: int = SIZE) -> np.ndarray:
    "Seeded uint8 noise images of one kind (`offline_ood.noise_images`; smooth: blurred with sigma 3 px)."
    x = noise_images(kind, n, torch.Generator().manual_seed(seed), size, blur_sigma=3.0)
    return x.round().to(torch.uint8).numpy()


def _fashion_mnist(root, split):
    from ssod.data import load_dataset
    ds = load_dataset("fashion_mnist", split, root)
    return ds.images[:, 0].numpy(), ds.labels.numpy(), list(ds.classes)


PLACEMENT_COLUMNS = ["photo", "crop_top", "crop_left", "crop_side", "object_top", "object_left", "object_side"]


def build(name: str, root, cache) -> tuple:
    "(images, labels, masks or None, extra tensors, meta) of one set of the benchmark."
    seeds = {s: SEED + i for i, s in enumerate(ID_SPLITS + OOD_SETS)}
    common = {"size": SIZE, "seed": seeds.get(name.replace("fmnist_scenes_", ""), None)}
    if name.startswith("fmnist_scenes_"):
        split = name[len("fmnist_scenes_"):]
        objects, labels, classes = _fashion_mnist(root, split)
        pool = POOLS["train" if split == "train" else "eval"]
        x, m, place = composite(objects, load_photos(cache, pool), pool, common["seed"])
        meta = {"source": f"Fashion-MNIST {split} garments on {'/'.join(pool)}", "classes": classes,
                "pool": pool, "placement_columns": PLACEMENT_COLUMNS, **common}
        return x, labels, (m if split != "train" else None), {"placement": place}, meta
    if name == "mnist_scenes":
        from ssod.data import load_dataset
        digits = load_dataset("mnist", "test", root)
        idx = np.random.default_rng(common["seed"]).permutation(len(digits))[:N_OOD]
        pool = POOLS["ood"]
        x, m, place = composite(digits.images[idx, 0].numpy(), load_photos(cache, pool), pool, common["seed"] + 1)
        return x, digits.labels.numpy()[idx], m, {"placement": place}, {"source": f"MNIST test digits on {'/'.join(pool)}",
                                                  "classes": [str(i) for i in range(10)],
                                                  "pool": pool, "placement_columns": PLACEMENT_COLUMNS,
                                                  **common}
    if name == "empty_scenes":
        pool = POOLS["ood"]
        photos = load_photos(cache, pool)
        x, y, _ = crops_of({p: photos[p] for p in pool}, N_OOD, common["seed"], SIZE, *CROP_FRAC)
        return x, y, None, {}, {"source": "crops of " + "/".join(pool), "classes": pool, **common}
    if name == "textures56":
        images = {t: to_grey(_skimage(t)) for t in TEXTURE_IMAGES}
        x, y, _ = crops_of(images, N_OOD, common["seed"], SIZE, *CROP_FRAC)
        return x, y, None, {}, {"source": "skimage.data " + ", ".join(TEXTURE_IMAGES), "classes": TEXTURE_IMAGES, **common}
    kinds = {"uniform_noise56": "uniform", "gaussian_noise56_sigma64": "gaussian", "smooth_noise56": "smooth"}
    if name in kinds:
        return noise(kinds[name], N_NOISE, common["seed"]), None, None, {}, {"source": "synthetic", **common}
    raise DataScriptError(f"unknown set {name!r} of the objects-in-scenes benchmark")


SETS = tuple(id_name(s) for s in ID_SPLITS) + OOD_SETS


def prepare(name, root, cache=None, source="auto", log=print):
    "Prepare one set (`fmnist_scenes` prepares its three splits); skipped when prepared and matching the manifest."
    names = [id_name(s) for s in ID_SPLITS] if name == "fmnist_scenes" else [name]
    cache = Path(cache) if cache is not None else Path(root) / ".cache"
    for n in names:
        if n not in SETS:
            raise DataScriptError(f"unknown set {n!r}; known: {', '.join(SETS)}")

        def built(n=n):
            x, y, masks, extra, meta = build(n, root, cache)
            return x, y, meta, {"masks": masks, "extra": extra}
        prepare_built_set(root, n, dest(root, n), built, log, "scikit-image, scikit-learn and Pillow")
