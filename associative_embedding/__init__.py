"""Associative Embedding (Newell, Huang, Deng, NIPS 2017) in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
