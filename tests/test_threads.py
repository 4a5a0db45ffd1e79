"""Workers x threads <= cores wherever `make test` starts several torch processes: OpenMP threads spin at barriers, and
two oversubscribed processes on two cores slow each other 5-30x."""
import re
import subprocess

import pytest

from ssod.runtime import available_cores, default_threads, set_threads


def dry_run(repo_root, *targets, **make_vars):
    cmd = ["make", "-n", "--always-make", *targets] + [f"{k}={v}" for k, v in make_vars.items()]
    return subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("cores", [1, 2, 3, 8])
def test_nbdev_test_workers_times_threads_fit_the_cores(repo_root, cores):
    out = dry_run(repo_root, "nbtest", CORES=cores)
    line = next(l for l in out.splitlines() if "nbdev_test" in l)
    threads = int(re.search(r"OMP_NUM_THREADS=(\d+)", line).group(1))
    workers = int(re.search(r"--n_workers (\d+)", line).group(1))
    assert workers >= 1 and threads >= 1 and workers * threads <= cores, line


@pytest.mark.parametrize("cores", [1, 2, 3, 8])
def test_pytest_workers_times_threads_fit_the_cores(repo_root, cores):
    out = dry_run(repo_root, "pytest", CORES=cores)
    line = next(l for l in out.splitlines() if "pytest" in l and "OMP_NUM_THREADS" in l)
    threads = int(re.search(r"OMP_NUM_THREADS=(\d+)", line).group(1))
    workers = int(re.search(r" -n (\d+)", line).group(1))
    assert workers >= 1 and threads >= 1 and workers * threads <= cores, line


def test_ddp_test_ranks_use_one_thread_each():
    import test_ddp  # tests/ is on sys.path under pytest's default import mode
    ranks = 2       # every torchrun call there uses --nproc_per_node=2
    assert test_ddp.TINY["num_threads"] == 1 and test_ddp.ENV["OMP_NUM_THREADS"] == "1"
    assert ranks * test_ddp.TINY["num_threads"] <= max(2, available_cores())


def test_torchrun_ranks_share_the_cores(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert default_threads("cpu") == max(1, available_cores() // 2)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    import torch
    before = torch.get_num_threads()
    try:
        assert set_threads(1, "cpu") == 1 and torch.get_num_threads() == 1   # an explicit num_threads wins
    finally:
        torch.set_num_threads(before)
