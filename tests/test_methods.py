"""The training-based baselines (notebook 03a) on a tiny budget: each trains through the shared trainer and its own score
ranks Fashion-MNIST test images above uniform noise."""
import pytest
import torch

from ssod.data import ImageSet, load_dataset
from ssod.benchmarks import get_benchmark
from ssod.tuning import make_detector
from ssod.metrics import auroc
from ssod.config import make_config
from ssod.train import Trainer
from ssod.inference import eval_transform, predict

# (method, its score, training images, the AUROC vs uniform noise it must beat, the network). SSOD+SupCon after 2
# epochs on 5,000 images is unstable against noise: its OOD factor alone gave 0.62 (fp32), 0.75 (fp32, AVX2) and 0.98
# (bf16) on one machine, the rectified posterior of Eq. 2 0.81 (fp32, AVX2) and 0.92 (bf16); its bar is the lower one.
# GODIN after 2 epochs on 10,000 images depends on its head's initialisation: seeds 0 / 1 / 2 gave 0.71 / 0.98 / 0.55
# (bf16) with the MLP OOD head built before it, 0.91 / 0.92 / 0.89 with the linear one (the OOD head is unused but draws
# from the same random stream); seed 0 gave 0.708 (bf16) and 0.698 (fp32, AVX2) on an AMD EPYC and 0.512 (fp32, AVX2) on
# an Intel Xeon. So GODIN's case builds the linear OOD head, which its network never reads.
# The narrow network (2.3-2.9x the training images a second, fp32, AMD EPYC with AVX2) where it clears the bars on seeds
# 0, 1 and 2 (fp32, AVX2, AMD EPYC Zen 1): MOS 0.994 / 0.999 / 0.878, SupCon 0.976 / 0.995 / 0.980, SSOD+SupCon 1.000 /
# 0.961 / 1.000; CSI on 4,000 images 0.985 / 0.977 / 0.986 with 67-69% validation accuracy (on 2,000: 50-52%, below the
# 60% every case asks; on small_resnet_s2 0.99 on every seed but twice the seconds). GODIN on it gave 0.995 / 0.818 /
# 0.655 (small_resnet on 5,000 images 0.947 / 0.952 / 0.708); on 10,000 images small_resnet_s2 (a stride-2 stem: 0.6x
# small_resnet's seconds) gives 0.905 / 0.980 / 0.978 with 80-85% validation accuracy, so GODIN runs on it.
CASES = [("godin", "godin", 10000, 0.6, "small_resnet_s2"), ("mos", "mos", 10000, 0.8, "small_resnet_narrow"),
         ("supcon", "knn", 5000, 0.8, "small_resnet_narrow"),
         ("ssod_supcon", "ssod_posterior", 5000, 0.7, "small_resnet_narrow"),
         ("csi", "csi", 4000, 0.8, "small_resnet_narrow")]
OOD_HEAD = {"godin": "linear"}


@pytest.mark.parametrize("method,detector,n_train,min_auroc,arch", CASES)
def test_method_score_direction(tmp_path, data_root, method, detector, n_train, min_auroc, arch):
    # the first offline recipe (lr 3e-3, cosine), on which the bars above were set: the test checks scores, not recipes
    cfg = make_config("adamw_cosine", benchmark="fmnist", method=method, epochs=2, batch_size=64, limit_train=n_train,
                      augment="none", arch=arch, ood_head=OOD_HEAD.get(method, "mlp"), out_dir=str(tmp_path / method))
    trainer = Trainer(cfg, progress=False, log=lambda *a: None).fit()
    model = trainer.model.eval()
    assert all(torch.isfinite(torch.tensor(v)) for h in trainer.history for k, v in h.items() if k.startswith("train_"))
    tf = eval_transform(get_benchmark("fmnist"))
    test = load_dataset("fashion_mnist", "test").subset(range(500))
    noise = ImageSet(torch.randint(0, 256, (300, 1, 28, 28), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8), None, "noise")
    det = make_detector(detector, model)
    if det.needs_fit:
        det.fit(predict(model, load_dataset("fashion_mnist", "train").subset(range(n_train)), tf))
    if det.needs_inputs:
        s_id, s_ood = det.score_inputs(model, test, tf), det.score_inputs(model, noise, tf)
    else:
        s_id, s_ood = det.score(predict(model, test, tf)), det.score(predict(model, noise, tf))
    assert s_id.shape == (500,) and torch.isfinite(s_id).all() and torch.isfinite(s_ood).all()
    assert auroc(s_id, s_ood) > min_auroc, (method, auroc(s_id, s_ood))
    assert trainer.history[-1]["val_acc"] > 0.6


def test_method_scores_need_their_networks(tmp_path, data_root):
    cfg = make_config("demo", benchmark="fmnist", epochs=1, batch_size=64, limit_train=256, out_dir=str(tmp_path / "ssod"))
    model = Trainer(cfg, progress=False, log=lambda *a: None).fit().model
    for name in ("mos", "csi"):
        with pytest.raises(ValueError, match=f"needs a network trained with method='{name}'"):
            make_detector(name, model)
