"""Training throughput of an experiment's real training step fed by its real input pipeline.

Builds the experiment's trainer (`tasks.registry.make_trainer`: the network, the optimizer,
the loss and the distributed step of `tools/train.py`, with every `train.*` speed option:
`steps_per_execution`, `prefetch_to_device`, `mixed_precision`, `jit_compile`) on the chosen
strategy, and times calls of its step on the tf.data pipeline of the config. The images are
synthetic people in COCO format generated into a temporary folder at the config's input size
(or the config's own synthetic size when the experiment is synthetic), or a COCO-format set
given by --annotations and --images.

Reported per batch size: images/s, the step time split into input wait and compute, peak
memory, the training FLOPs per image and the model FLOP utilisation (MFU).

- compute: the step time on one batch held in memory (a repeated one-element dataset);
  input wait: the real pipeline's step time minus that (0 when the pipeline keeps up).
- FLOPs: an analytic count, not XLA's cost analysis: 2 FLOPs per multiply-add of every
  convolution at the config's input size, times 3 for a training step (forward, and the
  gradients with respect to the inputs and the weights, each costing one forward). Pooling,
  upsampling, element-wise ops, the loss and the optimizer update are left out (under 1 %).
- peak memory: on a GPU the device allocator's peak (`tf.config.experimental.get_memory_info`);
  on a CPU the process's peak resident set size (`ru_maxrss`), which includes TensorFlow
  itself and the input pipeline.
- MFU: achieved training FLOP/s over the device's dense peak: --peak_tflops, else the table
  `PEAK_TFLOPS` by the GPU's name (bf16 tensor-core peaks), else n/a (CPU).

--find_batch doubles the batch from --batch until the step runs out of memory, the peak
memory passes --memory_limit_gb, or --max_batch is reached, and reports the largest batch
that fit with its images/s.

Usage:
    python benchmarks/train_throughput.py                                  # paper config, batch 1
    python benchmarks/train_throughput.py --config=experiments/synthetic_pose.py --batch=32
    python benchmarks/train_throughput.py --config.train.mixed_precision=mixed_bfloat16 \\
        --config.train.jit_compile=True --config.train.steps_per_execution=10 \\
        --config.train.prefetch_to_device=True --find_batch --json_out=gpu.json
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import resource
import sys
import tempfile
import time
from typing import Any

# Runnable as `python benchmarks/train_throughput.py` from a source checkout without installing.
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_collections  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

DEFAULT_CONFIG = str(_REPO_ROOT / "experiments" / "coco_hg4_512.py")

#: Dense bf16 peak TFLOP/s by a substring of the GPU's name (vendor data sheets, no sparsity).
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "V100": 125.0,  # float16 tensor cores (no bf16)
}

_CONFIG = config_flags.DEFINE_config_file(
    "config", DEFAULT_CONFIG, "Experiment config file[:variant]; --config.<field>=<value>."
)
_STRATEGY = flags.DEFINE_enum(
    "strategy", "default", ["default", "mirrored"], "Distribution strategy."
)
_NUM_CPU_DEVICES = flags.DEFINE_integer(
    "num_cpu_devices", 0, "With --strategy=mirrored and no GPU: logical CPU devices (0 = 2)."
)
_BATCH = flags.DEFINE_integer("batch", 1, "Global batch size (the first one with --find_batch).")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps (rounded up to whole calls).")
_WARMUP = flags.DEFINE_integer(
    "warmup_steps", 1, "Untimed steps first (the first call traces and compiles)."
)
_FIND_BATCH = flags.DEFINE_bool("find_batch", False, "Double the batch until it does not fit.")
_MAX_BATCH = flags.DEFINE_integer("max_batch", 4096, "With --find_batch: the largest batch tried.")
_MEMORY_LIMIT = flags.DEFINE_float(
    "memory_limit_gb", 0.0,
    "With --find_batch: a batch whose peak memory passes this (GiB) does not fit (0 = none).",
)
_ANNOTATIONS = flags.DEFINE_string(
    "annotations", "", "COCO-format keypoint file to train on (default: synthetic people)."
)
_IMAGES = flags.DEFINE_string("images", "", "Image folder of --annotations.")
_NUM_IMAGES = flags.DEFINE_integer("num_images", 64, "Synthetic images to generate.")
_PEAK = flags.DEFINE_float("peak_tflops", 0.0, "Device peak TFLOP/s for the MFU (0 = table).")
_THREADS = flags.DEFINE_integer("threads", 0, "Intra- and inter-op threads (0 = TF default).")
_JSON_OUT = flags.DEFINE_string("json_out", "", "Also write the results as JSON here.")


def benchmark_config(
    config: ml_collections.ConfigDict, batch: int, data_dir: str
) -> ml_collections.ConfigDict:
    """The experiment's config set up for timing: `batch` images per step, the benchmark's
    data, no evaluation, checkpoints or time limit, and no end in sight."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.train.global_batch_size = batch
    config.train.num_steps = 10**9
    config.train.checkpoint_every = 10**9
    config.train.time_limit_minutes = 0.0
    config.train.loss_log = False
    config.train.init_checkpoint = ""
    config.eval.every_steps = 0
    dataset = config.dataset
    if _ANNOTATIONS.value:
        dataset.kind = "coco"
        dataset.train_annotations = dataset.val_annotations = _ANNOTATIONS.value
        dataset.train_images = dataset.val_images = _IMAGES.value
    else:
        if dataset.kind != "synthetic":
            # Images as large as the network's input, like COCO photos resized for it.
            dataset.synthetic_image_size = int(config.codec.input_size)
            dataset.kind = "synthetic"
        dataset.synthetic_dir = data_dir
        dataset.synthetic_num_train = _NUM_IMAGES.value
        dataset.synthetic_num_val = 1
    return config


def training_flops_per_image(model: Any, input_size: int) -> float:
    """Analytic training FLOPs of one image: 3 x 2 x the convolutions' multiply-adds."""
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    probe = keras.Model(model.inputs, [layer.output for layer in convs])
    inputs = keras.KerasTensor((1, input_size, input_size, 3))
    specs = probe.compute_output_spec(inputs)
    multiply_adds = 0
    for layer, spec in zip(convs, specs, strict=True):
        _, height, width, filters = spec.shape
        kernel_h, kernel_w = layer.kernel_size
        channels_in = layer.kernel.shape[2] * layer.groups
        multiply_adds += height * width * filters * kernel_h * kernel_w * channels_in // (
            layer.groups
        )
    return 3.0 * 2.0 * multiply_adds


def device_description() -> tuple[str, str]:
    """('GPU' or 'CPU', a name for the table)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "GPU", f"{len(gpus)} x {details.get('device_name', 'GPU')}"
    return "CPU", f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()})"


def peak_tflops(kind: str, name: str) -> float | None:
    """--peak_tflops, else the table's entry for the GPU, else None."""
    if _PEAK.value > 0:
        return _PEAK.value
    if kind == "GPU":
        for key, value in PEAK_TFLOPS.items():
            if key.lower() in name.lower():
                return value
    return None


def reset_peak_memory(kind: str) -> None:
    import tensorflow as tf

    if kind == "GPU":
        for index, _ in enumerate(tf.config.list_logical_devices("GPU")):
            tf.config.experimental.reset_memory_stats(f"GPU:{index}")


def peak_memory_gib(kind: str) -> float:
    """The GPU allocators' largest peak, or the process's peak RSS on a CPU, in GiB."""
    import tensorflow as tf

    if kind == "GPU":
        peaks = [
            tf.config.experimental.get_memory_info(f"GPU:{index}")["peak"]
            for index, _ in enumerate(tf.config.list_logical_devices("GPU"))
        ]
        return max(peaks) / 2**30
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 2**30 if sys.platform == "darwin" else 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def time_calls(trainer: Any, iterator: Any, steps: int) -> tuple[float, int]:
    """Runs whole calls until at least `steps` steps are done; (seconds, steps run)."""
    done, start = 0, time.perf_counter()
    while done < steps:
        # run_steps returns Python floats: the call has finished when it returns.
        done += len(trainer.run_steps(iterator))
    return time.perf_counter() - start, done


def measure(
    config: ml_collections.ConfigDict, strategy: Any, kind: str, workdir: str
) -> dict[str, Any]:
    """Builds the trainer for `config` and times its step on the real pipeline and on one
    batch held in memory."""
    import tensorflow as tf

    from associative_embedding.tasks.registry import make_trainer

    reset_peak_memory(kind)
    trainer = make_trainer(config, workdir, strategy)
    batch = int(config.train.global_batch_size)
    iterator = iter(trainer.build_inputs())
    start = time.perf_counter()
    first_steps = len(trainer.run_steps(iterator))
    first_call_s = time.perf_counter() - start
    warmup_done = first_steps
    while warmup_done < _WARMUP.value:
        warmup_done += len(trainer.run_steps(iterator))
    real_s, real_steps = time_calls(trainer, iterator, _STEPS.value)

    # The same step on a batch already produced (and, with prefetch_to_device, on the device):
    # no input work at all.
    held = tf.data.Dataset.from_tensors(next(iterator)).repeat()
    if trainer.prefetches_to_device():
        held = held.apply(tf.data.experimental.prefetch_to_device(_first_device(trainer), 2))
    held_iterator = iter(held)
    trainer.run_steps(held_iterator)
    compute_s, compute_steps = time_calls(trainer, held_iterator, _STEPS.value)

    step_s = real_s / real_steps
    compute_step_s = compute_s / compute_steps
    flops = training_flops_per_image(trainer.model, int(config.codec.input_size))
    images_per_s = batch / step_s
    result = {
        "batch": batch,
        "images_per_s": images_per_s,
        "step_ms": 1e3 * step_s,
        "input_wait_ms": 1e3 * max(step_s - compute_step_s, 0.0),
        "compute_ms": 1e3 * compute_step_s,
        "first_call_s": first_call_s,
        "timed_steps": real_steps,
        "peak_memory_gib": peak_memory_gib(kind),
        "train_gflop_per_image": flops / 1e9,
        "achieved_tflops": images_per_s * flops / 1e12,
    }
    return result


def _first_device(trainer: Any) -> str:
    from associative_embedding.training.trainer import first_local_device

    return first_local_device(trainer.strategy)


def find_batch(
    config: ml_collections.ConfigDict, strategy: Any, kind: str, workdir: str
) -> tuple[list[dict[str, Any]], str]:
    """Doubles the batch from --batch; returns every batch's result and why it stopped."""
    import tensorflow as tf

    results: list[dict[str, Any]] = []
    batch = _BATCH.value
    while batch <= _MAX_BATCH.value:
        try:
            result = measure(benchmark_config(config, batch, workdir + "/data"), strategy, kind,
                             f"{workdir}/run_{batch}")
        except tf.errors.ResourceExhaustedError as error:
            first_line = str(error).strip().splitlines()[0][:160]
            return results, f"batch {batch}: out of memory ({first_line})"
        results.append(result)
        print(f"batch {batch}: {result['images_per_s']:.3g} images/s, peak memory "
              f"{result['peak_memory_gib']:.2f} GiB", flush=True)
        if _MEMORY_LIMIT.value > 0 and result["peak_memory_gib"] > _MEMORY_LIMIT.value:
            results[-1]["over_memory_limit"] = True
            return results, (f"batch {batch}: peak memory {result['peak_memory_gib']:.2f} GiB "
                             f"> --memory_limit_gb={_MEMORY_LIMIT.value:g}")
        batch *= 2
    return results, f"--max_batch={_MAX_BATCH.value} reached"


def format_table(rows: list[dict[str, Any]], peak: float | None) -> str:
    header = ("| batch | images/s | step ms | input wait ms | compute ms | peak memory GiB "
              "| train GFLOP/image | TFLOP/s | MFU |")
    lines = [header, "|" + "---|" * 9]
    for row in rows:
        mfu = f"{row['mfu']:.1%}" if row.get("mfu") is not None else "n/a"
        lines.append(
            f"| {row['batch']} | {row['images_per_s']:.3g} | {row['step_ms']:.1f} "
            f"| {row['input_wait_ms']:.1f} | {row['compute_ms']:.1f} "
            f"| {row['peak_memory_gib']:.2f} | {row['train_gflop_per_image']:.1f} "
            f"| {row['achieved_tflops']:.3g} | {mfu} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    import tensorflow as tf

    if _THREADS.value:
        tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
        tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    from associative_embedding.core.config_checks import validate_config
    from associative_embedding.training import strategy as strategy_lib

    if _BATCH.value < 1 or _STEPS.value < 1 or _WARMUP.value < 1:
        raise app.UsageError("--batch, --steps and --warmup_steps must be >= 1")
    # The strategy first: splitting the CPU into logical devices must precede any TF op.
    strategy = strategy_lib.make_strategy(_STRATEGY.value, num_cpu_devices=_NUM_CPU_DEVICES.value)
    config = _CONFIG.value
    validate_config(config)
    kind, device = device_description()
    peak = peak_tflops(kind, device)
    train = config.train
    with tempfile.TemporaryDirectory(prefix="train_throughput_") as workdir:
        if _FIND_BATCH.value:
            rows, stopped = find_batch(config, strategy, kind, workdir)
        else:
            rows = [measure(benchmark_config(config, _BATCH.value, workdir + "/data"), strategy,
                            kind, workdir + "/run")]
            stopped = ""
    for row in rows:
        row["mfu"] = row["achieved_tflops"] / peak if peak else None
    fitting = [row for row in rows if not row.get("over_memory_limit")]
    summary = {
        "config": config_flags.get_config_filename(flags.FLAGS["config"]),
        "overrides": {k: repr(v) for k, v in config_flags.get_override_values(
            flags.FLAGS["config"]).items()},
        "device": device,
        "device_kind": kind,
        "replicas": strategy.num_replicas_in_sync,
        "strategy": _STRATEGY.value,
        "input_size": int(config.codec.input_size),
        "mixed_precision": train.mixed_precision or "float32",
        "jit_compile": bool(train.jit_compile),
        "steps_per_execution": int(train.get("steps_per_execution", 1)),
        "prefetch_to_device": bool(train.get("prefetch_to_device", False)),
        "data": _ANNOTATIONS.value or f"{_NUM_IMAGES.value} synthetic people images",
        "peak_tflops": peak,
        "flops": "analytic: 3 x 2 x convolution multiply-adds per image",
        "peak_memory": ("GPU allocator peak" if kind == "GPU"
                        else "process peak RSS (CPU: includes TensorFlow and tf.data)"),
        "results": rows,
    }
    if _FIND_BATCH.value:
        summary["find_batch"] = {
            "stopped": stopped,
            "largest_batch": fitting[-1]["batch"] if fitting else None,
            "images_per_s": fitting[-1]["images_per_s"] if fitting else None,
        }
    print(f"{summary['config']} on {device} ({kind}, {summary['replicas']} replica(s)), "
          f"input {summary['input_size']}, {summary['mixed_precision']}, "
          f"jit_compile={summary['jit_compile']}, "
          f"steps_per_execution={summary['steps_per_execution']}, "
          f"prefetch_to_device={summary['prefetch_to_device']}; data: {summary['data']}")
    print(format_table(rows, peak))
    print(f"FLOPs: {summary['flops']}; peak memory: {summary['peak_memory']}; "
          f"MFU against {f'{peak:g} TFLOP/s' if peak else 'n/a (no peak known: --peak_tflops)'}")
    if _FIND_BATCH.value:
        found = summary["find_batch"]
        print(f"find_batch: largest batch that fits {found['largest_batch']} "
              f"({found['images_per_s'] and round(found['images_per_s'], 3)} images/s); "
              f"stopped: {stopped}")
    if _JSON_OUT.value:
        with open(_JSON_OUT.value, "w") as handle:
            json.dump(summary, handle, indent=2)


if __name__ == "__main__":
    app.run(main)
