"""One precision rule on any x86 CPU: `auto` resolves by what this machine does well (bf16 only where a probe finds it
native and faster), the run record and the results store carry the resolved value, and every accuracy and score that
is compared with another is computed in the same precision. Perturbation passes (ODIN, Mahalanobis, GODIN) run in fp32."""
import json

import pytest
import torch

import ssod.runtime as runtime
from ssod.experiment import evaluate_checkpoint, run
from ssod.runtime import resolve_precision
from ssod.store import run_key
from ssod.config import make_config
from ssod.checkpoints import model_from_checkpoint
from ssod.inference import accuracy, predict

TINY = dict(benchmark="fmnist", arch="small_resnet_narrow", epochs=1, batch_size=64, limit_train=256, limit_eval=128)


@pytest.fixture
def probe(monkeypatch, tmp_path):
    "Replace the CPU probe's measurement by a given answer, as on a machine with nothing cached yet."
    monkeypatch.setenv("SSOD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "_probe_memo", {})
    calls = []

    def use(fast: bool):
        def fake():
            calls.append(fast)
            return {"native": True, "fp32_ms": 1.0, "bf16_ms": 0.6 if fast else 7.0, "bf16_fast": fast}
        monkeypatch.setattr(runtime, "probe_cpu_bf16", fake)
        runtime._probe_memo.clear()
        (runtime.cache_dir() / "cpu_precision.json").unlink(missing_ok=True)  # another machine: nothing cached
        return calls
    return use


@pytest.mark.parametrize("fast, expected", [(False, "fp32"), (True, "bf16")])
def test_auto_follows_the_cpu_probe(probe, fast, expected):
    calls = probe(fast)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert make_config("demo").precision == "auto"          # the demo preset no longer forces bf16
    runtime._probe_memo.clear()                              # a new process: the answer comes from the cache file
    assert resolve_precision("auto", "cpu") == expected and calls == [fast]
    cached = json.loads((runtime.cache_dir() / "cpu_precision.json").read_text())
    assert cached[runtime.machine_key()]["bf16_fast"] is fast


def test_cache_is_per_machine_key(probe, monkeypatch):
    calls = probe(True)
    resolve_precision("auto", "cpu")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")         # another oneDNN limit: another key, a new probe
    probe(False)
    assert resolve_precision("auto", "cpu") == "fp32" and calls == [True, False]


def test_damaged_cache_is_probed_again(probe):
    calls = probe(False)
    path = runtime.cache_dir() / "cpu_precision.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert resolve_precision("auto", "cpu") == "fp32" and calls == [False]


def test_store_key_holds_the_resolved_precision(probe):
    probe(False)
    slow = run_key(make_config("demo"))
    assert slow == run_key(make_config("demo", precision="fp32"))
    probe(True)
    fast = run_key(make_config("demo"))
    assert fast != slow and fast == run_key(make_config("demo", precision="bf16"))


def test_real_probe_is_quick_and_consistent():
    out = runtime.probe_cpu_bf16()
    assert set(out) == {"native", "fp32_ms", "bf16_ms", "bf16_fast"}
    if not out["native"]:
        assert out["bf16_fast"] is False and out["fp32_ms"] is None
    else:
        assert out["fp32_ms"] < 1000 and out["bf16_ms"] < 1000   # milliseconds: the probe stays well under a second
        assert out["bf16_fast"] == (out["bf16_ms"] < runtime.BF16_SPEEDUP_NEEDED * out["fp32_ms"])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_compared_number_uses_one_precision(tmp_path, data_root, precision):
    """CI guard: a tiny training forced to fp32 / bf16 on the CPU; validation, the record, a later evaluation of the
    checkpoint and `predict` agree exactly because they all run in the training's precision."""
    out = tmp_path / precision
    cfg = make_config("demo", out_dir=str(out), precision=precision, **TINY)
    params = {"odin": {"T": 1000.0, "eps": 0.0014}}
    rec = run(cfg, ["msp", "odin", "ssod"], tune=False, detector_params=params, log=lambda *a: None, progress=False)
    assert rec["runtime"]["precision"] == precision and rec["config"]["precision"] == precision
    assert rec["runtime"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()

    model, c = model_from_checkpoint(out / "checkpoints" / "best.pt")
    from ssod.data import load_dataset
    from ssod.benchmarks import get_benchmark
    from ssod.inference import eval_transform, limit
    bench = get_benchmark(c.benchmark)
    val = limit(load_dataset(bench.id_set, "val"), c.limit_eval)
    val_acc = accuracy(predict(model, val, eval_transform(bench), precision=precision, channels_last=c.channels_last))
    assert val_acc == rec["train"]["best"]["val_acc"]          # selection and a later pass: same number

    again = evaluate_checkpoint(out, tmp_path / "eval", ["msp", "odin", "ssod"], tune=False, detector_params=params,
                                device="cpu", log=lambda *a: None)
    assert again["runtime"]["precision"] == precision         # the checkpoint's precision rule, not a default
    assert again["id_acc"] == rec["id_acc"]
    assert again["ood"] == rec["ood"]


def test_heads_and_scores_are_fp32_under_bf16_autocast():
    """Training or evaluating in bf16 runs the backbone under autocast, but the heads and every score in fp32 on the
    feature map cast to fp32: scores from bf16 logits would tie."""
    from ssod.model import build_model
    from ssod.detectors import MSP
    from ssod.head_scores import SSOD
    torch.manual_seed(0)
    net = build_model("small_resnet", 10, 1, ood_head="linear").eval()
    with torch.no_grad():   # a confident network: logits near 4-6, where bf16 steps by 1/32
        net.cls_head.bias[0] = 4.0
        net.ood_head.bias.fill_(6.0)
    x = torch.randn(64, 1, 56, 56)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x, blocks=True)
            X = net.backbone(x)
        ref = net.heads(X.float(), blocks=True)
    assert X.dtype == torch.bfloat16
    for name in ("logits", "features", "id_logit", "block_logits", "block_id_logits"):
        assert getattr(out, name).dtype == torch.float32, name
        torch.testing.assert_close(getattr(out, name), getattr(ref, name), rtol=0, atol=0)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        old = net.heads(X)                                          # the heads in bf16, as autocast alone would run them
    from ssod.framework import Outputs
    for det in (MSP(), SSOD()):
        fp32, bf16 = (len(torch.unique(det.score(Outputs(o.logits.float(), o.features.float(), o.id_logit.float()))))
                      for o in (out, old))
        # distinct scores: bf16 logits tie, fp32 ones less (a max softmax mixes ten logits, so it ties less often)
        assert fp32 > bf16 if isinstance(det, SSOD) else fp32 >= bf16, (det, fp32, bf16)
