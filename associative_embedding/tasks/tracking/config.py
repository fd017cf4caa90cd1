"""The configuration schema (ml_collections) of pose-tracking experiments.

The model, optimizer and train sections come from `training.config.task_config`; this module
adds the tracking dataset (synthetic clips generated into the work dir, or PoseTrack 2018
files), the codec (said once: the target encoder and the per-frame decoder read it), the input
(frames per training clip and their gap), the loss (heatmap and space-time pull/push weights)
and the eval section (the tag tracker's and the overlap baseline's options).
"""

from __future__ import annotations

import ml_collections

from associative_embedding.codec.keypoint_config import decoder_options, keypoint_codec_fields
from associative_embedding.training.config import augmentation_fields, task_config

__all__ = ["decoder_options", "shrink_for_smoke", "tracking_base_config"]


def tracking_base_config() -> ml_collections.ConfigDict:
    """Defaults: the paper's network and schedule on PoseTrack 2018 (17 joints, 1-D tags)."""
    config = task_config("tracking")

    config.dataset = ml_collections.ConfigDict(
        dict(
            # 'posetrack' (PoseTrack 2018 per-video JSON files) or 'synthetic' (walking-people
            # clips written as a PoseTrack dataset into WORKDIR/synthetic_clips when missing).
            kind="posetrack",
            keypoints="coco",  # KeypointInfo name of the 17 joints (sigmas, flip, skeleton)
            # A PoseTrack annotation file or a folder of them, and the dataset root their
            # images' file_name entries are relative to.
            train_annotations="",
            train_images="",
            val_annotations="",
            val_images="",
            ignore="crowd_and_unlabelled",
            strict_annotations=False,
            skip_bad_images=False,
            synthetic_dir="",  # '' = WORKDIR/synthetic_clips
            synthetic_num_train=300,
            synthetic_num_val=40,
            synthetic_image_size=128,
            synthetic_num_frames=16,
            synthetic_seed=0,
        )
    )

    # What the target encoder and the grouping decoder share, said once
    # (codec.keypoint_config.keypoint_codec_fields documents each field); max_people is also
    # the temporal loss's track axis of a training clip.
    config.codec = ml_collections.ConfigDict(keypoint_codec_fields())

    config.input = ml_collections.ConfigDict(
        dict(
            # Frames per training sample: t, t + g1, t + g1 + g2, ... with every gap g drawn
            # from 1..max_frame_gap (each sample is one such window of one video).
            frames_per_clip=2,
            max_frame_gap=3,
            **augmentation_fields(),
        )
    )

    config.loss = ml_collections.ConfigDict(
        dict(
            heatmap_weight=1.0,
            heatmap_foreground_weight=0.0,
            # The space-time grouping loss (losses.temporal): pull over a track's joints in all
            # frames of the clip, push between the tracks of the clip.
            pull_weight=1e-3,
            push_weight=1e-3,
            push_type="exp",
        )
    )

    config.eval = ml_collections.ConfigDict(
        dict(
            every_steps=10_000,  # 0 = only at the end
            max_videos=0,  # 0 = every validation video
            frame_step=1,  # track every n-th frame (a lower frame rate: people move further)
            # TagTracker: a person continues a track only within this tag distance (RMS over
            # the tag dims, like codec.tag_threshold); the track's tag is a moving average.
            max_tag_distance=0.5,
            tag_momentum=0.5,
            overlap_weight=0.0,  # weight of (1 - OKS) added to the tag distance
            # Both trackers: births and deaths.
            min_birth_score=0.2,
            max_missed_frames=3,
            # The overlap baseline: the same detections matched by OKS or box IoU.
            baseline_overlap="oks",
            baseline_min_overlap=0.3,
            # Boxes of ground truth and predictions: the joints' box grown by this fraction.
            box_margin=0.1,
            # Per-joint protocol: a predicted joint counts when its score is above this.
            min_joint_score=0.1,
        )
    )
    return config


def shrink_for_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A 2-stack, 16-channel model at 64 input for 2 steps (seconds on a CPU), in place."""
    config.model.update(
        num_stacks=2, widths=(16, 16, 16, 16, 16), stem_widths=(8, 16), feature_width=16
    )
    config.codec.update(input_size=64)
    config.input.update(shuffle_buffer_size=16)
    config.train.update(global_batch_size=2, num_steps=2, log_every=1, checkpoint_every=1)
    config.eval.update(every_steps=0, max_videos=2)
    return config
