"""MPII multi-person pose, the paper's recipe (Newell et al. 2017, Sec. 4.1) with MPII's 16 joints.

Command (MPII Human Pose in $MPII: the images and the common JSON conversion of the
annotations, e.g. HRNet's/mmpose's train.json and valid.json; the official .mat release
also works):
    python tools/train.py --config=experiments/mpii_hg4_512.py --workdir=runs/mpii_hg4_512 \
        --strategy=mirrored \
        --config.dataset.train_annotations=$MPII/annotations/train.json \
        --config.dataset.train_images=$MPII/images \
        --config.dataset.val_annotations=$MPII/annotations/valid.json \
        --config.dataset.val_images=$MPII/images
Several machines: the same command on each with --strategy=multi_worker and TF_CONFIG set (work
dir readable by every worker; only the chief writes there). Rerunning resumes.

Hardware assumed: one machine with 4-8 GPUs of >= 16 GB each, mirrored (global batch 32).

Settings: the network and training recipe of the paper's Sec. 4.1, which it uses for both MPII
and COCO: 4-stack hourglass (official widths, no BatchNorm), input 512 / output 128, batch 32,
Adam 2e-4 dropped to 1e-5 after 100k iterations, loss weights heatmap 1, pull 1e-3, push 1e-3
with the exp push; 16 joints with MPII's flip pairs and grouping order (keypoints='mpii').

Expected result: the paper's MPII Multi-Person test mAP 77.5 (Table 1; 1758 groups, evaluated
by the benchmark's server). Training-time evaluation reports the multi-person mAP of joint
detections (Pishchulin et al.'s PCKh-0.5 matching) on the validation split given, as 'AP'.

Variants:
    :smoke  a tiny model for a few steps on the 5 images of
            ../shared/data/mmpose_samples/mpii (test_mpii.json; train = val), resolved from
            the repository root, for tests and CI.
"""

from __future__ import annotations

import pathlib

import ml_collections

from associative_embedding.tasks.pose.config import (
    apply_paper_recipe,
    base_config,
    shrink_for_smoke,
)

# ../shared/data beside the repository (the experiments folder's parent), not the CWD.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
MPII_SAMPLES = SHARED_DATA / "mmpose_samples" / "mpii"


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config()
    config.dataset.kind = "mpii"
    config.dataset.keypoints = "mpii"
    # train/val paths come from --config.dataset.* flags (see the docstring).

    apply_paper_recipe(config)

    if variant == "smoke":
        annotations = str(MPII_SAMPLES / "test_mpii.json")
        config.dataset.train_annotations = annotations
        config.dataset.train_images = str(MPII_SAMPLES)
        config.dataset.val_annotations = annotations
        config.dataset.val_images = str(MPII_SAMPLES)
        shrink_for_smoke(config)
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '' or 'smoke'")
    return config

