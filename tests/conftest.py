import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # data_scripts
if "OMP_NUM_THREADS" not in os.environ:   # make test sets it: workers x threads <= cores
    torch.set_num_threads(min(2, os.cpu_count() or 1))


# The files that train the most, longest first: make test hands whole files to its two pytest-xdist workers in
# collection order (--dist loadfile --no-loadscope-reorder), so these start at once and the short files fill in last.
LONGEST_FIRST = ("test_methods.py", "test_paper_path.py", "test_gpu_check.py", "test_resume.py", "test_your_model.py",
                 "test_seeds.py", "test_papermill.py", "test_ddp.py", "test_docs.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: the other files keep their order


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture(scope="session")
def data_root():
    from ssod.files import data_root as find
    root = find()
    if not (root / "FashionMNIST" / "raw").exists():
        pytest.fail(f"offline data missing under {root}: run `make data` (python -m data_scripts.prepare fmnist)")
    return root


def load_script(path: Path, name: str):
    "A script that is not in a package (docs/*.py, benchmarks/*.py) loaded as module `name`."
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def md_tables(text: str) -> dict:
    "{heading (None before the first '## '): (header cells, {row label: cells})} of every Markdown table in `text`."
    out, heading, lines = {}, None, []
    def flush():
        if lines:
            split = lambda l: [c.strip() for c in l.strip().strip("|").split("|")]
            out[heading] = (split(lines[0])[1:], {split(l)[0]: split(l)[1:] for l in lines[2:]})
    for line in text.splitlines() + [""]:
        if line.startswith("## "):
            flush(); heading, lines = line[3:].strip(), []
        elif line.startswith("|"):
            lines.append(line)
        elif lines:
            flush(); lines = []
    return out


# ---- Table 2 with two seeds at a smoke budget: run once, read by tests/test_seeds.py and tests/test_reproduce.py

# the narrow network and 64 + 64 tuning images: these tests check tables and commands, not detection
SMOKE = {"epochs": 1, "limit_train": 256, "limit_eval": 128, "limit_tune": 64, "arch": "small_resnet_narrow"}


def papermill(args, cwd):
    "Run papermill with `args`; the completed process."
    return subprocess.run([str(Path(sys.executable).parent / "papermill"), *args], cwd=cwd, capture_output=True, text=True)


def seeds_of_runs(store: Path) -> list:
    "The seed of every run folder in the store (folder names end in _s<seed>_<hash>)."
    return sorted(int(p.name.rsplit("_", 2)[-2][1:]) for p in store.iterdir())


@pytest.fixture(scope="session")
def two_seeds(tmp_path_factory, repo_root, data_root):
    """Table 2 run by the command papermill_command writes for seeds [0, 1] (smoke budget): (folder, command). Made
    once a session: under pytest-xdist the first worker to ask makes it in the session's shared folder and the others
    wait for it (a file lock), as pytest-xdist's guide does for session fixtures."""
    from filelock import FileLock
    from ssod.paper import papermill_command
    command = papermill_command("table2_cifar10", "fmnist", "demo", [0, 1], SMOKE)
    args = shlex.split(command)
    assert args[:3] == ["papermill", "nbs/table2_cifar10.ipynb", "out.ipynb"], command
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        tmp = tmp_path_factory.mktemp("seeds")
    else:
        tmp = tmp_path_factory.getbasetemp().parent / "two_seeds"   # the parent: this session's, shared by its workers
    with FileLock(str(tmp) + ".lock"):
        if not (tmp / "done").exists():
            tmp.mkdir(exist_ok=True)
            r = papermill([args[1], str(tmp / "out.ipynb"), *args[3:], "-p", "store_dir", str(tmp / "store"),
                           "-p", "figures_dir", str(tmp / "figures")], repo_root)
            assert r.returncode == 0, r.stderr[-3000:]
            (tmp / "done").touch()
    return tmp, command
