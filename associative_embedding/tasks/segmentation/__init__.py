"""Instance segmentation (paper Sec. 3.4): one detection map per category and pixel tags.

Modules: ``config`` (the schema and the decoder options), ``trainer`` (``SegmentationTrainer``
and its data), ``segmenter`` (``InstanceSegmenter``: image -> instance masks, multi-scale
proposals merged by NMS), ``evaluation_hook`` (mAP^r during training and offline) and
``predict`` (the predict loop of ``tools/predict.py``).
"""
