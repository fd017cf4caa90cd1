"""CPU benchmark of the stacked hourglass: forward pass and full training step.

Times, on a configurable model (default: the official 4-stack network at 512x512, batch 1,
2 intra-op and 2 inter-op threads):

- forward: `model(images, training=False)` inside a tf.function;
- train step: forward + `associative_embedding.losses.total_loss` on random but well-formed
  targets (Gaussian heatmaps at random joints, a partial ignore mask, up to 30 people with some
  invalid joints) + gradients + Adam update;
- with --xla, the same two with `jit_compile=True`, plus their compile times.

It prints images/s and seconds per image (mean over the timed iterations, and the fastest one),
the analytic multiply-adds per image, and the process's peak resident memory after each phase.

Usage:
    python benchmarks/model_step.py                 # full model, 512x512, batch 1 (slow on CPU)
    python benchmarks/model_step.py --xla           # ... plus the XLA figures
    python benchmarks/model_step.py --small --xla   # quick smoke run of a tiny model
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

# Runnable as `python benchmarks/model_step.py` from a source checkout without installing.
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MAX_PEOPLE = 30  # contract 4: keypoints are padded to 30 people.
SMALL_CONFIG = {
    "stacks": 2,
    "widths": "32,32,48,48,64",
    "stem_widths": "16,32",
    "input_size": 128,
    "batch": 2,
    "warmup": 2,
    "iterations": 5,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; --small fills every flag the user did not set with a tiny config."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="quick tiny config (smoke runs)")
    parser.add_argument("--stacks", type=int, default=None, help="hourglass stacks (4)")
    parser.add_argument(
        "--widths", default=None, help="comma-separated hourglass widths (256,384,512,640,768)"
    )
    parser.add_argument("--stem-widths", default=None, help="comma-separated stem widths (64,128)")
    parser.add_argument("--input-size", type=int, default=None, help="input height (512)")
    parser.add_argument("--input-width", type=int, default=None, help="input width (= height)")
    parser.add_argument("--batch", type=int, default=None, help="images per step (1)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps (1)")
    parser.add_argument("--iterations", type=int, default=None, help="timed steps (3)")
    parser.add_argument("--threads", type=int, default=2, help="intra- and inter-op threads (2)")
    parser.add_argument("--num-joints", type=int, default=17, help="K (17)")
    parser.add_argument("--tag-dim", type=int, default=1, help="D (1)")
    parser.add_argument("--batch-norm", action="store_true", help="BatchNorm after 3x3 convs")
    parser.add_argument("--push-type", default="exp", choices=("exp", "hinge"))
    parser.add_argument("--xla", action="store_true", help="also time jit_compile=True")
    parser.add_argument(
        "--xla-only", action="store_true", help="with --xla, time only the XLA functions"
    )
    parser.add_argument("--forward-only", action="store_true", help="skip the train step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    defaults = {
        "stacks": 4,
        "widths": "256,384,512,640,768",
        "stem_widths": "64,128",
        "input_size": 512,
        "batch": 1,
        "warmup": 1,
        "iterations": 3,
    }
    if args.small:
        defaults.update(SMALL_CONFIG)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.widths = tuple(int(width) for width in args.widths.split(","))
    args.stem_widths = tuple(int(width) for width in args.stem_widths.split(","))
    if args.input_width is None:
        args.input_width = args.input_size
    if args.xla_only and not args.xla:
        parser.error("--xla-only needs --xla")
    if min(args.batch, args.iterations, args.threads) < 1 or args.warmup < 0:
        parser.error("batch, iterations and threads must be >= 1, warmup >= 0")
    return args


def configure_threads(threads: int) -> None:
    """Sets TensorFlow's thread pools; must run before TensorFlow executes any op."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss is KiB on Linux)."""
    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def multiply_adds_per_image(model: Any) -> int:
    """Multiply-adds of all convolutions for one image (the model needs a static input shape)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            total += height * width * filters * kernel_h * kernel_w * layer.input.shape[-1]
    return int(total)


def random_targets(
    batch: int, height: int, width: int, num_joints: int, seed: int
) -> dict[str, Any]:
    """Random but well-formed targets at output resolution (contract 4 and 5).

    Args:
        batch: B.
        height: output height h.
        width: output width w.
        num_joints: K.
        seed: NumPy seed.

    Returns:
        dict of float32 NumPy arrays: 'heatmaps' (B, h, w, K) Gaussians (sigma = w / 64, peak 1
        at each valid joint, people combined by max), 'mask' (B, h, w) ones with a zeroed
        random box, 'keypoints' (B, 30, K, 3) (x, y, valid) integer output pixels.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    sigma = max(width, height) / 64.0
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    heatmaps = np.zeros((batch, height, width, num_joints), np.float32)
    mask = np.ones((batch, height, width), np.float32)
    keypoints = np.zeros((batch, MAX_PEOPLE, num_joints, 3), np.float32)
    for image in range(batch):
        num_people = int(rng.integers(1, 9))
        keypoints[image, :num_people, :, 0] = rng.integers(0, width, (num_people, num_joints))
        keypoints[image, :num_people, :, 1] = rng.integers(0, height, (num_people, num_joints))
        keypoints[image, :num_people, :, 2] = rng.random((num_people, num_joints)) < 0.7
        for person in range(num_people):
            for joint in range(num_joints):
                x, y, valid = keypoints[image, person, joint]
                if valid:
                    gaussian = np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2))
                    np.maximum(
                        heatmaps[image, :, :, joint], gaussian, out=heatmaps[image, :, :, joint]
                    )
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        mask[image, top : top + height // 4, left : left + width // 4] = 0.0
    return {"heatmaps": heatmaps, "mask": mask, "keypoints": keypoints}


def time_steps(step: Callable[[], Any], warmup: int, iterations: int) -> dict[str, float]:
    """Runs `step` (which must block until its result is ready) and times it.

    Returns:
        first_s: the first call (tracing / compilation + one step); warm-up calls after it are
        untimed; mean_s and min_s over `iterations` timed calls.
    """
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        step()
    durations = []
    for _ in range(iterations):
        start = time.perf_counter()
        step()
        durations.append(time.perf_counter() - start)
    return {"first_s": first, "mean_s": sum(durations) / len(durations), "min_s": min(durations)}


def report(label: str, timing: dict[str, float], batch: int, compile_note: bool) -> dict:
    """Prints one result line and returns it as a dict."""
    result = dict(timing)
    result.update(
        images_per_s=batch / timing["mean_s"],
        s_per_image=timing["mean_s"] / batch,
        best_s_per_image=timing["min_s"] / batch,
        peak_rss_mib=peak_rss_mib(),
    )
    line = (
        f"{label:<16} {result['images_per_s']:8.3f} img/s  {result['s_per_image']:8.3f} s/img "
        f"(best {result['best_s_per_image']:.3f})  first call {timing['first_s']:7.2f} s"
    )
    if compile_note:
        # The first call is compile + one step; subtracting a steady step estimates the compile.
        result["compile_s"] = max(timing["first_s"] - timing["mean_s"], 0.0)
        line += f" (compile ~{result['compile_s']:.2f} s)"
    line += f"  peak RSS {result['peak_rss_mib']:.0f} MiB"
    print(line, flush=True)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    configure_threads(args.threads)  # before keras / the model create any tensor

    import keras
    import numpy as np
    import tensorflow as tf

    from associative_embedding.losses import total_loss
    from associative_embedding.modeling import StackedHourglass

    keras.utils.set_random_seed(args.seed)
    height, width = args.input_size, args.input_width
    model = StackedHourglass(
        num_stacks=args.stacks,
        widths=args.widths,
        stem_widths=args.stem_widths,
        num_joints=args.num_joints,
        tag_dim=args.tag_dim,
        batch_norm=args.batch_norm,
        input_shape=(height, width, 3),
    )
    out_h, out_w = height // model.output_stride, width // model.output_stride
    macs = multiply_adds_per_image(model)
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs visible; threads intra {intra} "
        f"inter {inter}"
    )
    print(
        f"model: {args.stacks} stacks, widths {list(args.widths)}, stem {list(args.stem_widths)}, "
        f"K={args.num_joints}, D={args.tag_dim}, batch_norm={args.batch_norm}; "
        f"{model.count_params() / 1e6:.3f} M params, {macs / 1e9:.2f} G multiply-adds per image"
    )
    print(
        f"input {height}x{width}, output {out_h}x{out_w}, batch {args.batch}, "
        f"warm-up {args.warmup}, timed iterations {args.iterations}, push {args.push_type}",
        flush=True,
    )

    rng = np.random.default_rng(args.seed)
    images = tf.constant(rng.random((args.batch, height, width, 3), dtype=np.float32))
    targets = {
        key: tf.constant(value)
        for key, value in random_targets(
            args.batch, out_h, out_w, args.num_joints, args.seed
        ).items()
    }
    optimizer = keras.optimizers.Adam(learning_rate=2e-4)  # official learning rate
    optimizer.build(model.trainable_variables)

    def forward(batch_images):
        return model(batch_images, training=False)

    def train_step(batch_images, batch_targets):
        with tf.GradientTape() as tape:
            outputs = model(batch_images, training=True)
            loss, _ = total_loss(
                outputs,
                batch_targets,
                num_joints=args.num_joints,
                tag_dim=args.tag_dim,
                push_type=args.push_type,
            )
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    results: dict[str, Any] = {
        "config": {
            key: (list(value) if isinstance(value, tuple) else value)
            for key, value in vars(args).items()
            if key != "json"
        },
        "params": model.count_params(),
        "multiply_adds_per_image": macs,
        "peak_rss_after_build_mib": peak_rss_mib(),
    }
    modes = [("graph", False)] if not args.xla_only else []
    if args.xla:
        modes.append(("xla", True))
    for mode, jit_compile in modes:
        forward_fn = tf.function(forward, jit_compile=jit_compile)
        results[f"forward_{mode}"] = report(
            f"forward {mode}",
            time_steps(lambda fn=forward_fn: fn(images).numpy(), args.warmup, args.iterations),
            args.batch,
            compile_note=jit_compile,
        )
        if args.forward_only:
            continue
        train_fn = tf.function(train_step, jit_compile=jit_compile)
        timing = time_steps(
            lambda fn=train_fn: float(fn(images, targets).numpy()), args.warmup, args.iterations
        )
        results[f"train_{mode}"] = report(
            f"train {mode}", timing, args.batch, compile_note=jit_compile
        )
        loss = float(train_fn(images, targets).numpy())
        if not np.isfinite(loss):
            raise FloatingPointError(f"train step ({mode}) produced a non-finite loss {loss}")
        results[f"train_{mode}"]["final_loss"] = loss
    print(f"peak RSS {peak_rss_mib():.0f} MiB", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
