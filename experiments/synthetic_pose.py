"""Embedded default: learn detection AND grouping of synthetic people on a CPU in minutes.

Command:
    python tools/train.py --config=experiments/synthetic_pose.py --workdir=runs/synthetic_pose

Hardware assumed: 2 CPU cores (AVX512-BF16), no GPU. The synthetic dataset (the default splits
of tools/make_synthetic.py: 5000 train / 500 val images of 256x256 stick-figure people at
COCO's scale, see data/synthetic.py: annotated people 10-32 output pixels tall at this 128
input, smaller background people unannotated, 63 % of val images with >= 3 annotated people)
is generated into WORKDIR/synthetic on the first run (~40 s).
Variants: ':long' (24000 steps over 20000 training images, wider scale augmentation,
evaluated every 8000 steps at five test scales with stricter decoder thresholds; ~49 minutes,
AP 0.551), ':smoke' (a few steps on tiny data, for CI).

Expected result: see the README ("What to expect"): the measured AP of the whole command
(data generation, 5000 steps of batch 8, evaluation of the 500 val images) and the AP-vs-time
curve of ':long'. The command evaluates single scale at 128 input; ':long' averages five test
scales (multi-scale test, below).

Departures from the official recipe, each a config field, and why (measured on this data with
1300-step runs; AP / detection alone (ground-truth tags) / grouping alone (ground-truth
heatmaps) on the val split):
  * A small 2-stack hourglass with BatchNorm at 128 input instead of 4 stacks at 512.
    1 stack at the same step count: 0.066 / 0.244 / 0.540 against 0.101 / 0.272 / 0.550, not
    made up by its ~1.4x speed; 192 input (2.25x the cost) gave the same detection-alone AP
    per wall-clock time as 128 (0.225 after half the images).
  * Sub-pixel Gaussian targets (sigma 1) with the Taylor (DARK) decoder: at 128 input the
    official integer targets and quarter-pixel adjust cap even perfect maps at AP 0.32.
    Sigma 1.5 scored lower at 5000 steps: AP 0.335 / grouping alone 0.684 against 0.361 / 0.702.
  * Heatmap loss weighted 1 + 10 * target (the plain MSE sits on flat maps for longer);
    weight 20 scored lower over the whole default run (AP 0.353 against 0.361).
  * 2-D tags (model.tag_dim = 2) and coordinate channels in the heads
    (model.coordinate_channels, CoordConv): grouping alone 0.386 -> 0.555 and AP 0.072 ->
    0.079 (with bfloat16, below).
  * Hinge push (HigherHRNet's max-margin form) at weight 5e-2 for pull and push: the official
    exp push collapses tags from a random init in short runs.
  * No colour jitter, rotation +-15 deg and scale 0.85-1.15 (official: jitter on, +-30 deg,
    0.75-1.25): the hue shift moves the left limbs' warm colours into the right limbs' cool
    ones, destroying the synthetic people's left/right cue. AP 0.079 -> 0.101, detection
    alone 0.221 -> 0.272. Without rotation the whole default run scores the same (AP 0.363
    against 0.361, grouping alone 0.701 against 0.702).
  * No flip augmentation (the left/right limbs differ by colour).
  * mixed_bfloat16 compute (train.mixed_precision) on this CPU's AVX512-BF16 units: 101
    against 93 images/s of float32 on quiet cores (1.3x when the cores are shared).
  * Batch 8 and Adam at 1.2e-2 (warm-up 400 steps, cosine decay), 10 steps per call
    (train.steps_per_execution). On 2 CPU cores the network is far from saturating the
    machine at any batch, so the number of updates, not images, limits learning in minutes.
    Runs over the same 32k images (AP / detection alone / grouping alone):
        batch 32, Adam 4e-3, 1000 steps:   0.205 / 0.269 / 0.630
        batch 16, Adam 4e-3, 2000 steps:   0.254 / 0.323 / 0.662
        batch 16, Adam 8e-3, 2000 steps:   0.292 / 0.369 / 0.676
        batch 16, Adam 1.2e-2, 2000 steps: 0.299 / 0.376 / 0.679
        batch 8,  Adam 4e-3, 4000 steps:   0.308 / 0.386 / 0.676
        batch 8,  Adam 8e-3, 4000 steps:   0.331 / 0.411 / 0.689
        batch 8,  Adam 1.2e-2, 4000 steps: 0.344 / 0.423 / 0.692
    (batch 8 at 8e-3 over 44.8k images, 5600 steps: 0.366 / 0.447 / 0.705; the whole default
    run of 5000 steps at Adam 2e-2: AP 0.353 / grouping alone 0.688, against 0.361 / 0.702
    at 1.2e-2). A batch-8 step costs 1.4x a batch-16 step per image on quiet cores (81
    against 113 images/s); ten steps per call (one traced loop, identical losses) brings
    batch 8 to 91 images/s.
  * Decoder thresholds codec.tag_threshold = 0.3 and codec.detection_threshold = 0.4 (official
    1.0 and 0.1), chosen on 500 *training* images with a 1800-step model: AP 0.159 (official)
    -> 0.241 (tag threshold 0.3) -> 0.269 / 0.289 / 0.301 / 0.304 (detection threshold 0.2 /
    0.3 / 0.4 / 0.5). The same model on the val split: 0.155 -> 0.289; with ground-truth
    heatmaps 0.59 -> 0.68 (tag threshold 0.25). The official threshold is meant for 1-D tags
    and the exp push; with the hinge (margin 1 in L2, 0.71 in the decoder's RMS) it merges
    neighbours.
  * Not used: codec.output_stride = 2 (high-resolution heads, see modeling/hourglass.py) with
    sigma 2. At 1000 steps it reached AP 0.210 / detection alone 0.290 / grouping alone 0.653
    against 0.205 / 0.269 / 0.630 at stride 4, but each step costs 1.38x as much, so at equal
    time stride 4 is as good or better. In ':long' form (batch 8, 18000 steps, 20000 training
    images) a batch-8 step cost 1.9x a stride-4 one (54 against 101 images/s) and it trailed
    the stride-4 curve: AP 0.284 at step 4500 and 0.366 at step 9000, where stride 4 passes
    0.350 at step 6000 and 0.422 at step 12000 (run stopped at step 14200).
  * ':long' first ran on the 5000 training images with the default's decoder and ended at
    AP 0.460 on the val split. That checkpoint overfits a little (AP 0.496 on 500 training
    images) and prefers a stricter decoder: chosen on those training images, detection
    threshold 0.5 and tag threshold 0.2 give 0.509 there and 0.474 on val. ':long' therefore
    uses those thresholds and 20000 training images (generation ~2 minutes). Measured end to
    end (README): AP 0.361 / 0.416 / 0.463 / 0.473 at steps 6000 / 12000 / 18000 / 24000
    (the 5000-image run: 0.350 / 0.422 / 0.448 / 0.460), detection alone 0.551, grouping
    alone 0.769; AP on 500 training images 0.495, so the train-val gap shrank (0.035 ->
    0.022) but val AP gained no more than the thresholds alone give.
    Also measured on a ':long' checkpoint, without gain: averaging both stacks' heatmaps
    (AP 0.4732 either way), a larger test input (144 or 160 for this 128 model: AP 0.39),
    flip test (0.169 with the COCO joint swap, 0.403 without: the model never saw a mirrored
    person), pose NMS by OKS (0.466-0.494 against 0.495 on training images: true people
    overlap), dropping people with few grouped joints, and person scores taken after refine.
    A person score regressed from the decoded joints' scores and tags (ridge, fitted on 2500
    training images) gave +0.012 only, although ordering the people by their true OKS would
    give 0.55 (duplicates alone: +0.007). Half the occluded joints (v = 1, 18 % of labelled
    joints) are off by more than 1.5 output pixels, against 11 % of the visible ones.
  * Multi-scale test (':long', eval.scales, paper Table 4's "multi scale"): the heatmaps of
    enlarged inputs, averaged on the finest grid, place joints more precisely. Scales and
    thresholds chosen on 500 training images. With the 0.85-1.15 training scales the ':long'
    checkpoint above scores on val 0.473 (scale 1), 0.517 (1.25, 1), 0.529 (1.5, 1.25, 1);
    'paper' tag fusion is lower (0.463 against 0.530 on training images), as are 2x scales.
    Training with crop scales 0.65-1.15 (people up to ~1.5x larger) then lets 1.75 help:
    measured end to end (README), AP at scales (1.5, 1.25, 1) 0.366 / 0.457 / 0.516 / 0.527 at
    steps 6000 / 12000 / 18000 / 24000 (grouping alone 0.769), and the final model at
    (1.75, 1.5, 1.25, 1) 0.538 (detection alone 0.642; single scale 0.453), 52 minutes.
    The decoder thresholds stay best at detection 0.5 / tag 0.2 with four scales.
    Crop scales 0.55-1.15 (people up to ~1.8x larger) and a fifth test scale, 2, set before
    the run from that trend: measured end to end (README) AP 0.404 / 0.518 / 0.551 at steps
    8000 / 16000 / 24000 on val at the five scales (grouping alone 0.668 / 0.735 / 0.759;
    detection alone 0.667; single scale 0.449), 49 minutes; this is ':long'.
    Also measured on the 0.65-1.15 model at four scales, without enough gain to adopt (AP on
    500 training images unless said; 0.555 unchanged): a person score regressed from the
    decoded joints' scores, tags and duplicate cues (ridge, fitted on 2000 training images)
    0.538 -> 0.548 on val, where ordering the people by their true OKS would give 0.606;
    merging fragments (people with disjoint joints and mean tags within 0.25-0.5) 0.552-0.557;
    Gaussian blur of the fused maps before the Taylor step (DARK) 0.549 / 0.541 / 0.526 at
    sigma 0.75 / 1 / 1.5, and the full 2-D Hessian 0.555; refine limited to pixels near the
    person, or with a continuous tag penalty, 0.48-0.546; averaging the weights of the
    checkpoints at steps 20000, 22000 and 24000 0.555. Training changes at ':long' length:
    4-D tags (model.tag_dim = 4) trailed the 2-D curve at step 12000 (AP 0.446 at its best tag
    threshold against 0.457, three scales; stopped there); 30000 steps do not fit in an hour
    at the 53-67 images/s these shared cores gave (ETA 66 minutes); XLA (train.jit_compile)
    cuts the step's compute from 148 to 127 ms here but the input pipeline then waits 46 ms per
    step (46 against 52 images/s).
"""

from __future__ import annotations

import ml_collections

from associative_embedding.tasks.pose.config import base_config, shrink_for_smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    config = base_config()
    config.dataset.kind = "synthetic"
    config.dataset.keypoints = "coco"
    # Exactly the default splits of tools/make_synthetic.py (train 5000, val 500 at 256x256).
    config.dataset.synthetic_num_train = 5000
    config.dataset.synthetic_num_val = 500
    config.dataset.synthetic_image_size = 256

    config.model.num_stacks = 2
    config.model.widths = (32, 48, 64, 80, 96)
    config.model.stem_widths = (16, 32)
    config.model.batch_norm = True
    config.model.tag_dim = 2
    config.model.coordinate_channels = True

    # 128 input / 32x32 output: 4x the images per second of 256 input; sub-pixel targets and the
    # Taylor decoder keep the ceiling at 0.88 AP (0.32 with the official integer targets).
    config.codec.input_size = 128
    config.codec.output_stride = 4
    config.codec.sigma = 1.0
    config.codec.subpixel_targets = True
    config.codec.adjust = "taylor"
    # 2-D tags are compared by their RMS over the two dimensions, and the hinge pushes people's
    # mean tags 1 apart in L2, i.e. ~0.71 in RMS: accept a joint only within 0.3 of a person
    # (the official 1.0 suits 1-D tags and the exp push, and merges neighbours here). Weak
    # peaks below 0.4 mostly seed fragments; refine still fills a person's missing joints.
    config.codec.tag_threshold = 0.3
    config.codec.detection_threshold = 0.4
    # Left/right limbs differ by colour in the synthetic people; a flip with joint swap
    # would contradict that cue.
    config.input.flip_probability = 0.0
    # The hue shift of the colour jitter would turn warm (left) limbs cool (right).
    config.input.color_jitter = False
    config.input.max_rotation_degrees = 15.0
    config.input.scale_range = (0.85, 1.15)

    config.loss.push_type = "hinge"
    config.loss.pull_weight = 5e-2
    config.loss.push_weight = 5e-2
    config.loss.heatmap_foreground_weight = 10.0

    # Many small updates learn faster per minute on a CPU than few large ones (docstring).
    config.optimizer.learning_rate = 1.2e-2
    config.optimizer.schedule = "cosine"
    config.optimizer.final_learning_rate = 1e-5
    config.optimizer.warmup_steps = 400

    config.train.global_batch_size = 8
    config.train.num_steps = 5000
    config.train.steps_per_execution = 10
    config.train.mixed_precision = "mixed_bfloat16"
    config.train.log_every = 200
    config.train.checkpoint_every = 1000
    config.train.time_limit_minutes = 0.0

    config.eval.every_steps = 0
    config.eval.max_images = 0

    if variant == "long":
        config.dataset.synthetic_num_train = 20000
        # Chosen on 500 training images with a ':long' checkpoint (docstring).
        config.codec.detection_threshold = 0.5
        config.codec.tag_threshold = 0.2
        # Multi-scale test on enlarged inputs: the heatmaps of the five scales are averaged on
        # the 2x grid, finer than the 32x32 one, with the tags of scale 1 (official fusion).
        # Training therefore also shows people up to ~1.8x larger (crop scale 0.55).
        config.input.scale_range = (0.55, 1.15)
        config.eval.scales = (2.0, 1.75, 1.5, 1.25, 1.0)
        config.train.num_steps = 24000
        config.train.checkpoint_every = 2000
        config.eval.every_steps = 8000
    elif variant == "smoke":
        config.dataset.synthetic_num_train = 16
        config.dataset.synthetic_num_val = 4
        config.dataset.synthetic_image_size = 128
        shrink_for_smoke(config)
        config.train.mixed_precision = ""
    elif variant:
        raise ValueError(f"unknown variant {variant!r}; choose '', 'long' or 'smoke'")
    return config
