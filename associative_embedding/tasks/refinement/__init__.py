"""The paper's single-person refinement network (Tables 2-4): training and inference.

Modules (import them directly; this package imports nothing, so tools can read the flags
without loading TensorFlow):
    crops    person crop affine (box side max(w, h, 60) * 1.3), crop / uncrop.
    refine   `PoseRefiner` and `load_refiner`: refine decoded poses on their crops.
    data     person-crop training pipeline (`build_person_dataset`).
    trainer  `RefinementTrainer` (config.task = 'refinement') and `refinement_base_config`.
    flags    the --refine_* command-line flags of tools/evaluate.py, predict.py and export.py.
"""
