import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # data_scripts
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture(scope="session")
def data_root():
    from ssod.data import data_root as find
    root = find()
    if not (root / "FashionMNIST" / "raw").exists():
        pytest.fail(f"offline data missing under {root}: run `make data` (python -m data_scripts.prepare fmnist)")
    return root
