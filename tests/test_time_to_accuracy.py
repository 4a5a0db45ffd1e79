"""benchmarks/time_to_accuracy.py end to end on a tiny budget: a curve per recipe and ISA, the table and the figure."""
import json
import subprocess
import sys

from conftest import load_script


def test_curves_table_and_figure(tmp_path, repo_root, data_root):
    out = tmp_path / "tta"
    recipes = ("demo[arch=small_resnet_narrow,limit_train=512,limit_eval=500,batch_size=128],"
               "demo[arch=small_resnet_narrow,limit_train=512,limit_eval=500,lr_schedule=cosine,alpha=1.5]")
    r = subprocess.run([sys.executable, "benchmarks/time_to_accuracy.py", "--isa", "avx2", "--benchmark", "fmnist",
                        "--recipes", recipes, "--every", "0.5", "--out", str(out)],
                       cwd=repo_root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    saved = json.loads(out.with_suffix(".json").read_text())
    assert [x["recipe"] for x in saved["results"]] == recipes.replace("],", "]\n").split("\n")
    assert [x["alpha"] for x in saved["results"]] == [0.0, 1.5]   # a recipe that sets alpha trains SSOD's network
    for res in saved["results"]:
        assert res["isa"] == "avx2" and res["onednn_max_isa"] == "AVX2" and res["precision"] == "fp32"
        assert res["val_images"] == 500 and res["benchmark"] == "fmnist"
        points = res["points"]
        assert points[0][:2] == [0.0, 0] and points[-1][1] == 4 * 128   # 512 images, batch 128, one epoch
        assert all(b[0] >= a[0] and b[1] > a[1] for a, b in zip(points, points[1:]))
        assert all(0 <= acc <= 100 for _, _, acc in points)
    table = out.with_suffix(".md").read_text()
    assert "demo[arch=small_resnet_narrow,limit_train=512,limit_eval=500,lr_schedule=cosine,alpha=1.5]" in table
    assert "of the vanilla network (SSOD's where a recipe sets alpha) on fmnist" in table
    assert "s to 88%" in table and "--every 0.5" in table
    assert out.with_suffix(".png").stat().st_size > 10_000
    again = subprocess.run([sys.executable, "benchmarks/time_to_accuracy.py", "--plot-only", "--out", str(out)],
                           cwd=repo_root, capture_output=True, text=True)
    assert again.returncode == 0 and out.with_suffix(".md").read_text() == table, again.stderr[-2000:]


def test_accuracy_at_a_time_reads_the_first_evaluation_at_or_after_it(repo_root):
    tta = load_script(repo_root / "benchmarks" / "time_to_accuracy.py", "tta")
    every_60 = [[0.0, 0, 9.94], [60.6, 100, 50.0], [120.4, 200, 65.0], [130.0, 215, 79.0]]
    assert tta.acc_at(every_60, 60) == 50.0 and tta.acc_at(every_60, 120) == 65.0   # a step late, not the 0-s value
    every_120 = [[0.0, 0, 9.94], [120.4, 200, 65.0], [266.0, 430, 79.0]]
    assert tta.acc_at(every_120, 60) is None     # no evaluation near 60 s
    assert tta.acc_at(every_120, 300) is None    # past the run's end
