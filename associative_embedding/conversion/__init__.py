"""Converters of the authors' released weights into `StackedHourglass` models.

- `released.convert_released_weights(format, path)`: pose-ae-train PyTorch checkpoints and
  pose-ae-demo TensorFlow 1 snapshots (multi-person and refinement networks) -> a model with
  the project's input and output conventions (`tools/convert_weights.py` is its command line).
- `torch_reader.load_torch_file(path)`: both `torch.save` formats read without PyTorch and
  without unpickling anything but tensors, storages and OrderedDicts.
- `release_config`: the side config `OUT.release.json` with a release's test-time settings,
  which the tools take as flag defaults.

Importing this package imports neither TensorFlow nor Keras (the tools read the side config
before loading anything heavy).
"""
