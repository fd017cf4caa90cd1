"""The multi-person pose task (paper Sec. 3-4.1): keypoints detected and grouped by tags.

It owns its config schema (``config``), training inputs (``inputs``), trainer (``trainer``),
the evaluation run during training (``evaluation_hook``), test-time estimation on dataset
records (``estimator``: multi-scale, flip, oracles, refinement) and on images in memory
(``image_estimator``), the prediction loop of ``tools/predict.py`` (``predict``) and the
paper's ground-truth oracles (``oracle``). Submodules are imported where used (the package
itself loads no TensorFlow; importing it registers every task's config checks, see
``tasks.registry``).
"""
