"""ID validation accuracy against training seconds for the offline recipes, natively and under oneDNN's AVX2 kernels.

    python benchmarks/time_to_accuracy.py                            # every recipe, natively and under AVX2 (fp32)
    python benchmarks/time_to_accuracy.py --isa avx2 --recipes adamw_cosine,demo
    python benchmarks/time_to_accuracy.py --isa avx2 --recipes "demo,demo[arch=small_resnet]" --out /tmp/tta

A preset of ssod.config names a whole recipe (network, optimiser, schedule, augmentation and budget) on
`fmnist_scenes`, optionally with settings changed in brackets (`demo[arch=small_resnet,lr=0.003]`): so each choice of
a recipe is measured against the recipe without it. The vanilla network (alpha = 0; `demo[alpha=1.5]` trains SSOD's)
is trained with the library's own loader and training step; every `--every` seconds of training the clock stops and
the network is scored on the ID validation split (5,000 images; never test or OOD data). The curve of a run with a
decaying schedule is not what a shorter run of the same recipe would reach at that time (its learning rate has not
decayed yet): read the end of each curve as the recipe's result, the rest as its path. Each ISA runs in a process of its own (oneDNN reads
ONEDNN_MAX_CPU_ISA once per process), one after the other; nothing else should run beside it. Writes
figures/time_to_accuracy.{json,md,png} (the JSON keeps every curve; --plot-only redraws the table and figure from it).
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ISAS = {"native": {}, "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}
THRESHOLDS = (85.0, 88.0)
AT_SECONDS = (60, 120)


def parse_recipe(recipe: str) -> tuple:
    "'preset[key=value,...]' -> (preset, {key: value}); the values are parsed by the configuration."
    preset, _, rest = recipe.partition("[")
    if rest and not rest.endswith("]"):
        raise ValueError(f"recipe {recipe!r}: settings go in brackets, e.g. demo[arch=small_resnet,lr=0.003]")
    pairs = [kv.split("=", 1) for kv in rest[:-1].split(",") if kv.strip()] if rest else []
    bad = [kv[0] for kv in pairs if len(kv) != 2]
    if bad:
        raise ValueError(f"recipe {recipe!r}: {', '.join(bad)} has no value (key=value)")
    return preset.strip(), {k.strip(): v.strip() for k, v in pairs}


def recipe_config(recipe: str, benchmark: str, precision: str, threads: int, out_dir: str = ""):
    from ssod.config import make_config
    preset, changes = parse_recipe(recipe)
    return make_config(preset, **{"benchmark": benchmark, "alpha": 0, "precision": precision, "num_threads": threads,
                                  "resume": False, "limit_eval": 0, **({"out_dir": out_dir} if out_dir else {}),
                                  **changes})


def curve(recipe: str, benchmark: str, precision: str, every: float, threads: int) -> dict:
    "Train `recipe`'s network (vanilla unless it sets alpha), scoring it on ID validation data every `every` seconds."
    import tempfile
    import torch
    from ssod.inference import accuracy, predict
    from ssod.train import Trainer
    cfg = recipe_config(recipe, benchmark, precision, threads, tempfile.mkdtemp(prefix="tta_"))
    tr = Trainer(cfg, log=lambda *_: None, progress=False).setup()
    val_acc = lambda: 100 * accuracy(predict(tr.model, tr.val_set, tr.eval_tf, tr.eval_batch_size, tr.device,
                                             tr.precision, cfg.channels_last))
    points, seconds, images, next_eval = [(0.0, 0, val_acc())], 0.0, 0, every
    for epoch in range(cfg.epochs):
        tr.epoch = epoch
        for x, y, g in tr.epoch_batches():   # the trainer's own batches and random draws, as in `fit`
            t0 = time.perf_counter()
            loss, _ = tr.train_step(x, y, g)
            loss.item()   # the step is finished when the clock stops
            seconds += time.perf_counter() - t0
            images += x.shape[0]
            if seconds >= next_eval:
                points.append((round(seconds, 2), images, val_acc()))
                tr.model.train()
                next_eval += every
    if points[-1][1] != images:
        points.append((round(seconds, 2), images, val_acc()))
    return {"recipe": recipe, "benchmark": benchmark, "val_images": len(tr.val_set), "arch": cfg.arch,
            "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "alpha": cfg.alpha,
            "optimizer": cfg.optimizer,
            "lr_schedule": cfg.lr_schedule, "augment": cfg.augment, "hflip": cfg.hflip,
            "train_images": len(tr.train_set), "precision": tr.precision, "threads": tr.num_threads,
            "aten": torch.backends.cpu.get_cpu_capability(), "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
            "img_per_s": round(images / seconds, 1),
            "train_s": round(seconds, 1), "points": points}


def fail(message: str):
    "A user's mistake: one line on stderr and exit status 2, before any work."
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def first_time(points, threshold):
    return next((s for s, _, acc in points if acc >= threshold), None)


def acc_at(points, second):
    """Validation accuracy once `second` seconds of training are spent: the first evaluation at or after it (the clock
    is read between steps, so an evaluation falls up to a step late); None where none fell within 10% after it."""
    return next((acc for s, _, acc in points if second <= s <= 1.1 * second), None)


def table(results: list, cpu: str) -> str:
    fmt = lambda v, f="{:.2f}": "—" if v is None else f.format(v)
    rows = ["| recipe | kernels | precision | arch, optimiser | img/s | "
            + " | ".join(f"acc @ {s} s" for s in AT_SECONDS)
            + " | " + " | ".join(f"s to {t:g}%" for t in THRESHOLDS) + " | final acc (train s) |"]
    rows.append("|" + "---|" * (rows[0].count("|") - 1))
    for r in results:
        p = r["points"]
        kernels = f"oneDNN {r['onednn_max_isa']}" if r["onednn_max_isa"] else f"native (ATen {r['aten']})"
        optimiser = r.get("optimizer", "adamw")   # records made before the optimizer setting existed trained with AdamW
        rows.append(f"| {r['recipe']} | {kernels} | {r['precision']} | {r['arch']}, {optimiser} | "
                    f"{r['img_per_s']:.0f} | "
                    + " | ".join(fmt(acc_at(p, s)) for s in AT_SECONDS) + " | "
                    + " | ".join(fmt(first_time(p, t), "{:.0f}") for t in THRESHOLDS)
                    + f" | {p[-1][2]:.2f} ({r['train_s']:.0f}) |")
    ratios = []
    for isa in dict.fromkeys(r["isa"] for r in results):
        rs = [r for r in results if r["isa"] == isa]
        base = rs[0]
        for r in rs[1:]:
            for t in THRESHOLDS:
                a, b = first_time(base["points"], t), first_time(r["points"], t)
                if b is not None:
                    ratios.append(f"- {isa}: {r['recipe']} reaches {t:g}% in {b:.0f} s; {base['recipe']} "
                                  + (f"in {a:.0f} s ({a / b:.1f}x longer)" if a is not None
                                     else f"not within its {base['train_s']:.0f} s"))
    first = results[0]
    return "\n".join([f"CPU: {cpu}, {first['threads']} threads; ID validation accuracy (%) of the {networks(results)} on "
                      f"{first['benchmark']} ({first['val_images']:,} images), against seconds of training steps "
                      "(evaluations not counted).", "", *rows, "", *ratios])


def networks(results: list) -> str:
    "What the curves train: the vanilla network, unless a recipe sets alpha (older records have no alpha: 0)."
    return ("vanilla network" if all(r.get("alpha", 0) == 0 for r in results)
            else "vanilla network (SSOD's where a recipe sets alpha)")


def plot(results: list, path: Path, cpu: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for r in results:
        s, _, acc = zip(*r["points"])
        ax.plot(s, acc, marker=".", ls="-" if r["isa"] == "avx2" else "--",
                label=f"{r['recipe']} ({r['isa']}, {r['precision']})")
    for t in THRESHOLDS:
        ax.axhline(t, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="training seconds", ylabel="ID validation accuracy (%)", ylim=(40, 95),
           title=f"{results[0]['benchmark']}, {networks(results)}; {cpu}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", default="adamw_cosine,demo,trained", help="comma-separated presets of ssod.config, "
                   "each optionally with changed settings in brackets; the first is the baseline of the others")
    p.add_argument("--isa", default="native,avx2", help="comma-separated: native, avx2 (ONEDNN_MAX_CPU_ISA=AVX2)")
    p.add_argument("--benchmark", default="fmnist_scenes")
    p.add_argument("--precision", default="fp32", help="fp32, or auto (bf16 where this machine runs it faster)")
    p.add_argument("--every", type=float, default=15.0, help="training seconds between evaluations")
    p.add_argument("--threads", type=int, default=0, help="CPU threads; 0: PyTorch's default")
    p.add_argument("--out", default=str(ROOT / "figures" / "time_to_accuracy"), help="output path without extension")
    p.add_argument("--plot-only", action="store_true", help="redraw the table and figure from OUT.json")
    p.add_argument("--append", action="store_true", help="keep OUT.json's other curves (a recipe and ISA measured "
                   "again replaces its own)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:   # one recipe in this process, under the ISA the parent set
        print(json.dumps(curve(a.child, a.benchmark, a.precision, a.every, a.threads)))
        return
    out = Path(a.out)
    isas = [i.strip() for i in a.isa.split(",") if i.strip()]
    bad = [i for i in isas if i not in ISAS]
    if bad:
        fail(f"unknown --isa {', '.join(bad)}; use {', '.join(ISAS)}")
    recipes = [r.strip() for r in re.split(r",(?![^\[]*\])", a.recipes) if r.strip()]
    for r in recipes:   # every recipe's configuration checked before any training
        try:
            recipe_config(r, a.benchmark, a.precision, a.threads)
        except ValueError as e:
            fail(str(e))
    if a.every <= 0:
        fail("--every must be > 0")
    from ssod.runtime import cpu_name   # the CPU's model name, as every record names it
    cpu = cpu_name()
    if a.plot_only:
        if not out.with_suffix(".json").exists():
            fail(f"--plot-only reads {out.with_suffix('.json')}, which does not exist: run without --plot-only first")
        saved = json.loads(out.with_suffix(".json").read_text())
        results, cpu, commands = saved["results"], saved["cpu"], saved["commands"]
    else:
        results = []
        for isa in isas:
            for recipe in recipes:
                print(f"== {recipe}, {isa}", flush=True)
                env = {**os.environ, **ISAS[isa]}
                if isa == "native":
                    env.pop("ONEDNN_MAX_CPU_ISA", None)
                r = subprocess.run([sys.executable, __file__, "--child", recipe, "--benchmark", a.benchmark,
                                    "--precision", a.precision, "--every", str(a.every), "--threads", str(a.threads)],
                                   env=env, capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"error: {recipe} under {isa} failed:\n{r.stderr[-2000:]}")
                res = {"isa": isa, **json.loads(r.stdout.strip().splitlines()[-1])}
                print(f"   {res['img_per_s']:.0f} img/s, final {res['points'][-1][2]:.2f}% after "
                      f"{res['train_s']:.0f} s",
                      flush=True)
                results.append(res)
        # a recipe list wrapped over lines (a Makefile's) is recorded as one list
        argv = [re.sub(r",\s+", ",", a) for a in sys.argv[1:]]
        commands = [shlex.join(["python", "benchmarks/time_to_accuracy.py", *argv])]
        if a.append and out.with_suffix(".json").exists():
            saved = json.loads(out.with_suffix(".json").read_text())
            new = {(r["isa"], r["recipe"]) for r in results}
            results = [r for r in saved["results"] if (r["isa"], r["recipe"]) not in new] + results
            commands = saved["commands"] + commands
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "commands": commands, "results": results},
                                                       indent=1))
    text = table(results, cpu)
    made = "\n".join(f"`{c}`  " for c in commands)
    out.with_suffix(".md").write_text(f"# Time to accuracy\n\nMade by\n\n{made}\n\n{text}\n")
    plot(results, out.with_suffix(".png"), cpu)
    print(text)


if __name__ == "__main__":
    main()
