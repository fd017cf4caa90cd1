"""Evaluation: the metrics, and nothing that runs a network.

Each evaluator scores predictions against ground truth (detectron2 style: ``reset()``,
``process(images, predictions)``, ``evaluate()``) and knows no model, task or config:
``CocoKeypointEvaluator`` (pycocotools COCOeval 'keypoints' with the dataset's OKS sigmas),
``MpiiMultiPersonEvaluator`` (MPII multi-person mAP, Pishchulin et al.; the toolkit's
evaluateAP) and ``InstanceSegmentationEvaluator`` (mAP^r over instance masks, paper Sec. 4.2).
The tasks (``tasks/``) run their networks and feed these.
"""

from associative_embedding.evaluation.coco_keypoints import (
    CocoKeypointEvaluator,
    poses_to_coco_results,
)
from associative_embedding.evaluation.instance_segmentation import InstanceSegmentationEvaluator
from associative_embedding.evaluation.mpii_multi_person import MpiiMultiPersonEvaluator

__all__ = [
    "CocoKeypointEvaluator",
    "InstanceSegmentationEvaluator",
    "MpiiMultiPersonEvaluator",
    "poses_to_coco_results",
]
