"""iSUN, an OOD test set of the CIFAR-10 benchmark: 8,925 32x32 scene images, as released with ODIN
(Liang et al. 2018).

Source: iSUN.tar.gz from the ODIN release (Dropbox), md5-checked, kept in ROOT/downloads/, extracted into
ROOT/raw/isun/. Every image must already be 32x32; images are converted to RGB and read in sorted path order.
Output: ROOT/ood32/isun.pt, 8,925 x 3 x 32 x 32 uint8, no labels."""
from __future__ import annotations

from .archives import prepare_folder32

NAME = "isun"
URL = "https://www.dropbox.com/s/ssz7qxfqae0cca5/iSUN.tar.gz?dl=1"
FILENAME = "iSUN.tar.gz"
MD5 = "be77b0f2c26fda898afac5f99645ee70"
N_IMAGES = 8_925


def prepare(root, cache=None, source="auto", log=print):
    prepare_folder32(NAME, root, source, log, URL, FILENAME, MD5, N_IMAGES, resize=False)
