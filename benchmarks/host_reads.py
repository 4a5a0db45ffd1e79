"""Count the host's reads of tensor values: on a GPU each one makes the host wait until the GPU has computed the value.

    with HostReads() as reads:
        ...                          # e.g. one training step, loader included
    reads.count, reads.where()       # how many, and from which lines of code

Counted: the aten operations whose result size or value the host must know (`.item()`, `bool()`, `float()` of a tensor,
`nonzero`, `masked_select`, boolean-mask indexing and assignment, `unique`, `bincount`, `repeat_interleave` without an
output size), copies from a device to the CPU, and calls of `.tolist()`, `.numpy()` and `.cpu()` on CPU tensors (no aten
operation there, so they are counted by name; on a device they are counted once, as their copy). This works on the CPU, where nothing waits: it finds in a CPU test the reads
that would stall a GPU. Not counted (listed apart in `skipped`): reads inside `torch.optim`, whose non-fused optimisers
keep their step counters as CPU tensors by design (the trainer uses fused AdamW on GPUs, which reads none). Blocking
host-to-device copies also stall a GPU but cannot be seen on a CPU: `benchmarks/gpu_check.py` counts them on the GPU
with `torch.cuda.set_sync_debug_mode`.
"""
from __future__ import annotations

import traceback
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
READ_OPS = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
            aten.bincount.default, aten._unique2.default, aten.unique_dim.default, aten.unique_consecutive.default,
            aten.repeat_interleave.Tensor}
INDEX_OPS = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
NAMED = ("tolist", "numpy", "cpu")


def _caller() -> str:
    "The innermost frame outside torch (and this file): where the read is written."
    for f in reversed(traceback.extract_stack()[:-3]):
        if "/torch/" not in f.filename and not f.filename.endswith("host_reads.py"):
            return f"{f.filename.rsplit('/', 2)[-2]}/{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.line}"
    return "?"


def _in_optimizer() -> bool:
    return any("/torch/optim/" in f.filename for f in traceback.extract_stack())


def _bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (indices or ()))


class HostReads(TorchDispatchMode):
    "A context that records every read of a tensor value by the host (see the module's docstring)."
    def __init__(self):
        super().__init__()
        self.reads, self.skipped, self._patched = [], [], {}

    def _record(self, what: str):
        (self.skipped if _in_optimizer() else self.reads).append((what, _caller()))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in READ_OPS:
            self._record(str(func.overloadpacket.__name__))
        elif func in INDEX_OPS and _bool_index(args):
            self._record(f"{func.overloadpacket.__name__} with a boolean mask")
        elif func in (aten._to_copy.default, aten.copy_.default):
            src = args[1] if func is aten.copy_.default else args[0]
            dst = args[0].device if func is aten.copy_.default else kwargs.get("device", src.device)
            if src.device.type != "cpu" and torch.device(dst).type == "cpu":
                self._record("copy to the CPU")
        return func(*args, **kwargs)

    def __enter__(self):
        for name in NAMED:
            original = getattr(torch.Tensor, name)
            self._patched[name] = original

            def counted(t, *a, _name=name, _original=original, **k):
                if t.device.type == "cpu":   # on a device the copy it makes is counted once, as a copy to the CPU
                    self._record(f".{_name}()")
                return _original(t, *a, **k)
            setattr(torch.Tensor, name, counted)
        return super().__enter__()

    def __exit__(self, *exc):
        for name, original in self._patched.items():
            setattr(torch.Tensor, name, original)
        self._patched = {}
        return super().__exit__(*exc)

    @property
    def count(self) -> int:
        return len(self.reads)

    def where(self) -> dict:
        "{'what at file:line': how many}."
        return dict(Counter(f"{what} at {line}" for what, line in self.reads))
