"""Data: annotation files in, batches of images and training targets out.

The keypoint readers sit behind one registry (``readers``: format detection, ``read_split``,
``read_train_records``; the formats in ``coco``, ``mpii`` and ``mpii_mat``), the instance
readers beside them (``coco_instances``, ``voc``), with the annotation checks every reader
shares (``annotation_checks``, ``annotation_fields``) and image reading (``image_io``,
``image_bounds``). ``augment`` and ``augmentation`` are the TF augmentation ops, ``pipeline``
and ``instance_pipeline`` the tf.data pipelines (targets from ``codec``), ``tfrecord`` and
``tfds`` the serialised forms, ``synthetic`` the generated people and shapes. The package
imports nothing itself, so a tool can import one reader without loading TensorFlow.
"""
