"""Golden step losses: the first 20 losses of a seeded tiny run are pinned (detectron2 style).

Any change to the synthetic data, the input pipeline, the targets, the network, the losses or
the optimizer moves these numbers. If a change is *meant* to alter training, rerun this test,
check that the printed new values are what the change should give, and paste them in.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from associative_embedding.tasks.pose.trainer import PoseTrainer
from associative_embedding.training.trainer import LOSS_LOG_NAME
from tests.training.scripts.tiny_config import tiny_config

NUM_STEPS = 20

# (loss, heatmap, pull, push) of steps 1..20; see the module docstring before editing.
GOLDEN = [
    (0.525477, 0.519427, 0.189928, 0.415103),
    (0.321505, 0.316956, 0.176418, 0.278422),
    (0.32753, 0.323445, 0.123166, 0.285361),
    (0.318154, 0.313039, 0.118957, 0.392473),
    (0.298683, 0.293327, 0.128457, 0.407144),
    (0.26297, 0.258358, 0.153632, 0.307504),
    (0.28446, 0.279, 0.104976, 0.440974),
    (0.219409, 0.21545, 0.129513, 0.266397),
    (0.194178, 0.189929, 0.114932, 0.309936),
    (0.235617, 0.230419, 0.0876602, 0.43222),
    (0.160187, 0.156117, 0.0636933, 0.343286),
    (0.24307, 0.237891, 0.069006, 0.448909),
    (0.193469, 0.189282, 0.0963878, 0.322282),
    (0.211027, 0.205868, 0.0857019, 0.430169),
    (0.219498, 0.214368, 0.0706841, 0.442336),
    (0.146063, 0.142123, 0.0663686, 0.327594),
    (0.15133, 0.147717, 0.0659211, 0.295357),
    (0.212987, 0.207965, 0.0804143, 0.421873),
    (0.181385, 0.1764, 0.0804898, 0.418018),
    (0.176762, 0.172618, 0.0775499, 0.336887),
]


def _golden_config(synthetic_root):
    """The tiny network with the embedded default's options (experiments/synthetic_pose.py):
    sub-pixel targets, foreground-weighted heatmap loss, hinge push, 2-D tags with coordinate
    channels, warm-up + cosine schedule, deterministic ops and input order."""
    config = tiny_config(
        train__num_steps=NUM_STEPS,
        train__loss_log=True,
        train__deterministic=True,
        train__checkpoint_every=NUM_STEPS,
        train__log_every=10,
        train__seed=7,
    )
    config.dataset.synthetic_dir = str(synthetic_root)
    config.model.tag_dim = 2
    config.model.coordinate_channels = True
    config.model.batch_norm = True
    config.codec.subpixel_targets = True
    config.codec.sigma = 1.0
    config.input.flip_probability = 0.0
    config.loss.heatmap_foreground_weight = 10.0
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup_steps = 5
    config.optimizer.learning_rate = 4e-3
    config.eval.max_images = 1
    return config


def test_first_twenty_step_losses_match_the_golden_values(tmp_path, synthetic_root):
    PoseTrainer(_golden_config(synthetic_root), tmp_path).train()
    with open(os.path.join(tmp_path, LOSS_LOG_NAME)) as handle:
        logged = [json.loads(line) for line in handle]
    assert [entry["step"] for entry in logged] == list(range(1, NUM_STEPS + 1))
    actual = np.array(
        [[entry[name] for name in ("loss", "heatmap", "pull", "push")] for entry in logged]
    )
    new_values = "GOLDEN = [\n" + "".join(
        "    ({:.6g}, {:.6g}, {:.6g}, {:.6g}),\n".format(*row) for row in actual
    ) + "]"
    if not GOLDEN:
        pytest.fail(f"no golden values yet; the run gave:\n{new_values}")
    # Float summation order may differ across CPUs; behaviour changes move losses far more.
    if not np.allclose(actual, np.array(GOLDEN), rtol=2e-3, atol=1e-6):
        pytest.fail(f"step losses changed; if that is intended, the new values are:\n{new_values}")
