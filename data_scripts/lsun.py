"""LSUN (crop), an OOD test set of the CIFAR-10 benchmark: 10,000 32x32 scene crops, as released with ODIN
(Liang et al. 2018).

Source: LSUN.tar.gz from the ODIN release (Dropbox), md5-checked, kept in ROOT/downloads/, extracted into
ROOT/raw/lsun/. Every image must already be 32x32; images are converted to RGB and read in sorted path order.
Output: ROOT/ood32/lsun.pt, 10,000 x 3 x 32 x 32 uint8, no labels."""
from __future__ import annotations

from .archives import prepare_folder32

NAME = "lsun"
URL = "https://www.dropbox.com/s/fhtsw1m3qxlwj6h/LSUN.tar.gz?dl=1"
FILENAME = "LSUN.tar.gz"
MD5 = "458a0a0ab8e5f1cb4516d7400568e460"
N_IMAGES = 10_000


def prepare(root, cache=None, source="auto", log=print):
    prepare_folder32(NAME, root, source, log, URL, FILENAME, MD5, N_IMAGES, resize=False)
