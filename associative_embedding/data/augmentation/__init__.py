"""The pieces of the training augmentation, one concept a module: the settings and the draw of
random parameters (``params``), the TF affine matrices (``affine``), image and mask warping
(``warp``), colour jitter (``color``) and test-time resize and pad (``eval_preprocess``).
``data.augment`` assembles them into ``Augmenter`` and is the public entry point.
"""
