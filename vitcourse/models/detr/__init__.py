"""DETR, one file per part as in DETR's own repository.

* :mod:`.backbone`: the CNN (torchvision's ResNet-50 layout, or our small ResNet),
  frozen batch norms;
* :mod:`.position_encoding`: the 2-D sine code of each feature-map cell;
* :mod:`.transformer`: encoder and decoder layers, positions on queries and keys;
* :mod:`.matcher`: :class:`HungarianMatcher`, the one-to-one assignment;
* :mod:`.loss`: :class:`SetCriterion`, CE + L1 + GIoU with auxiliary losses;
* :mod:`.detr`: :class:`DETR` composes them; presets ``detr_resnet50``, ``detr_mini``;
* :mod:`.grounding`: :class:`GroundingDETR`, phrases instead of classes (open-set
  detection in the spirit of Grounding DINO); preset ``grounding_detr_mini``.
"""

from .backbone import Backbone, TorchvisionResNet, freeze_batch_norm, torchvision_resnet
from .detr import DETR, DETRConfig, MLPHead, postprocess
from .grounding import GroundingCriterion, GroundingDETR, GroundingDETRConfig, GroundingMatcher, PhraseEncoder
from .loss import SetCriterion
from .matcher import HungarianMatcher
from .position_encoding import sine_position_encoding
from .transformer import DetrDecoderLayer, DetrEncoderLayer, DetrTransformer

__all__ = [
    "DETR",
    "Backbone",
    "DETRConfig",
    "DetrDecoderLayer",
    "DetrEncoderLayer",
    "DetrTransformer",
    "GroundingCriterion",
    "GroundingDETR",
    "GroundingDETRConfig",
    "GroundingMatcher",
    "HungarianMatcher",
    "MLPHead",
    "PhraseEncoder",
    "SetCriterion",
    "TorchvisionResNet",
    "freeze_batch_norm",
    "postprocess",
    "sine_position_encoding",
    "torchvision_resnet",
]
