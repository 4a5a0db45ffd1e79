"""OOD test sets of the offline `fmnist` benchmark built from images that ship inside Python packages:

- `digits`: scikit-learn's 1,797 handwritten 8x8 digits, scaled to 20x20 and centred on a 28x28 canvas
  (the way MNIST itself was made);
- `textures`: seeded random square crops of scikit-image's CC0 brick, grass and gravel textures;
- `scenes`: seeded random square crops of scikit-image's and scikit-learn's natural photographs, in grey;
- `noise`: seeded uniform, Gaussian and smoothed noise images.

Every set is grey 28x28 uint8, deterministic for a given seed, written to ROOT/ood28/<name>.pt."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .common import DataScriptError, prepare_built_set

SEED = 20240101
N_CROPS = 3000
TEXTURE_IMAGES = ["brick", "grass", "gravel"]
SCENE_IMAGES = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "hubble_deep_field", "moon"]
SKLEARN_PHOTOS = ["china.jpg", "flower.jpg"]


def dest(root, name) -> Path:
    return Path(root) / "ood28" / f"{name}.pt"


def to_grey(img: np.ndarray) -> np.ndarray:
    "ITU-R 601 luma of an RGB(A) image; grey images pass through. Returns uint8."
    img = np.asarray(img)
    if img.ndim == 3:
        img = img[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    "Antialiased bilinear resize of N x H x W uint8 images to N x size x size."
    t = torch.as_tensor(images, dtype=torch.float32)[:, None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def random_crops(image: np.ndarray, n: int, rng: np.random.Generator, size=28, min_frac=0.1, max_frac=0.5):
    """`n` square crops of a grey image, each side a uniform fraction in [min_frac, max_frac] of the short side,
    placed uniformly, resized to `size` x `size`."""
    h, w = image.shape
    short = min(h, w)
    crops = []
    for _ in range(n):
        side = max(size // 2, int(rng.uniform(min_frac, max_frac) * short))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crops.append(resize(image[None, top:top + side, left:left + side], size)[0])
    return np.stack(crops)


def crops_of(images: dict, n_total: int, seed: int, size=28, min_frac=0.1, max_frac=0.5):
    "Split `n_total` crops evenly over the named grey images; label = index of the source image."
    rng = np.random.default_rng(seed)
    names = list(images)
    per = [n_total // len(names) + (i < n_total % len(names)) for i in range(len(names))]
    out, labels = [], []
    for i, (name, k) in enumerate(zip(names, per)):
        out.append(random_crops(images[name], k, rng, size, min_frac, max_frac))
        labels.append(np.full(k, i))
    return np.concatenate(out), np.concatenate(labels), names


def build_digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    img = np.clip(np.rint(d.images * (255 / 16)), 0, 255).astype(np.uint8)
    canvas = np.zeros((len(img), 28, 28), np.uint8)
    canvas[:, 4:24, 4:24] = resize(img, 20)
    return canvas, d.target, {"source": "sklearn.datasets.load_digits", "classes": [str(i) for i in range(10)]}


def _skimage(name):
    import skimage.data
    return getattr(skimage.data, name)()


def build_textures(seed=SEED, n=N_CROPS):
    images = {name: to_grey(_skimage(name)) for name in TEXTURE_IMAGES}
    x, y, names = crops_of(images, n, seed)
    return x, y, {"source": "skimage.data " + ", ".join(names), "classes": names, "seed": seed}


def build_scenes(seed=SEED + 1, n=N_CROPS):
    from sklearn.datasets import load_sample_images
    images = {name: to_grey(_skimage(name)) for name in SCENE_IMAGES}
    sk = load_sample_images()
    for fname, img in zip(sk.filenames, sk.images):
        images[Path(fname).name] = to_grey(img)
    x, y, names = crops_of(images, n, seed)
    return x, y, {"source": "skimage.data and sklearn load_sample_images: " + ", ".join(names), "classes": names,
                  "seed": seed}


def noise_images(kind: str, n: int, g: torch.Generator, size: int = 28, blur_sigma: float = 2.0) -> torch.Tensor:
    """n float noise images (0..255) drawn from `g`: uniform U(0, 255); gaussian N(128, 64^2) clipped; smooth: uniform
    noise blurred with a Gaussian of `blur_sigma` px (separable, reflect-padded), stretched to 0..255."""
    if kind == "uniform":
        return torch.randint(0, 256, (n, size, size), generator=g).float()
    if kind == "gaussian":
        return (128 + 64 * torch.randn(n, size, size, generator=g)).clamp(0, 255)
    if kind != "smooth":
        raise DataScriptError(f"unknown noise kind {kind!r}")
    raw = torch.rand(n, 1, size, size, generator=g)
    rad = round(3 * blur_sigma)
    r = torch.arange(-rad, rad + 1, dtype=torch.float32)
    kern = torch.exp(-r ** 2 / (2 * blur_sigma ** 2))
    kern = kern / kern.sum()
    blurred = F.conv2d(F.pad(raw, (rad, rad, 0, 0), mode="reflect"), kern.view(1, 1, 1, -1))
    blurred = F.conv2d(F.pad(blurred, (0, 0, rad, rad), mode="reflect"), kern.view(1, 1, -1, 1))[:, 0]
    lo = blurred.amin((1, 2), keepdim=True)
    hi = blurred.amax((1, 2), keepdim=True)
    return (blurred - lo) / (hi - lo) * 255


def build_noise(seed=SEED + 2, n=N_CROPS):
    "Thirds: uniform U(0, 255); Gaussian N(128, 64^2) clipped; uniform noise blurred (Gaussian, sigma 2) and stretched."
    g = torch.Generator().manual_seed(seed)
    k = n // 3
    parts = [noise_images(kind, m, g) for kind, m in (("uniform", k), ("gaussian", k), ("smooth", n - 2 * k))]
    x = torch.cat(parts).round().to(torch.uint8).numpy()
    y = np.repeat([0, 1, 2], [k, k, n - 2 * k])
    return x, y, {"source": "synthetic", "classes": ["uniform", "gaussian", "smooth"], "seed": seed}


BUILDERS = {"digits": build_digits, "textures": build_textures, "scenes": build_scenes, "noise": build_noise}


def prepare(name, root, cache=None, source="auto", log=print):
    if name not in BUILDERS:
        raise DataScriptError(f"unknown offline OOD set {name!r}; known: {sorted(BUILDERS)}")
    prepare_built_set(root, name, dest(root, name), lambda: (*BUILDERS[name](), {}), log)
