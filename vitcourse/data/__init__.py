"""Data that works offline, and loaders for the data that doesn't.

* :mod:`.world`, :mod:`.shapes`, :mod:`.backgrounds`, :mod:`.captions`, :mod:`.text`:
  the generated image world (shapes with boxes, masks, captions; words for OCR);
* :mod:`.datasets`: PyTorch datasets over it (classification, detection/segmentation, text lines);
* :mod:`.digits`: scikit-learn's 8×8 handwritten digits;
* :mod:`.photos`: photos bundled with scikit-image, scikit-learn and matplotlib;
* :mod:`.mnist`: Fashion-MNIST and MNIST (real 28×28 images), offline or through torchvision;
* :mod:`.labelled_photos`: foolbox's labelled CIFAR-10 / ImageNet test photos;
* :mod:`.augment`: augmentation presets (none / light / medium / heavy, MixUp, CutMix);
* :mod:`.sources`: real data that installs offline from the package registries
  (Fashion-MNIST, MNIST, labelled photos, boxes, masks, video, scanned text, vocabularies);
* :mod:`.remote`: CIFAR-10 and Hugging Face Hub data sets for the ``full`` profile,
  failing fast and clearly offline.
"""

from . import sources
from .augment import LEVELS, PRESETS, AugmentPreset, batch_mix, build_transform
from .backgrounds import BACKGROUNDS, COLOR_NAMES, COLORS
from .datasets import (
    CLASSIFICATION_WORLD,
    SHAPES_MEAN,
    SHAPES_STD,
    SPLITS,
    ShapesClassification,
    ShapesDetection,
    TextLines,
    detection_collate,
    text_collate,
)
from .digits import DigitsDataset
from .labelled_photos import CIFAR10_CLASSES_ES, FOOLBOX_SETS, FoolboxPhotos, imagenet_classes
from .mnist import (
    FASHION_CLASSES,
    FASHION_CLASSES_EN,
    FASHION_MEAN,
    FASHION_STD,
    MNIST,
    MNIST_MEAN,
    MNIST_STD,
    FashionMNIST,
    stratified_order,
)
from .photos import PHOTOS, load_photo
from .remote import CIFAR10_CLASSES, DataUnavailableError, load_cifar10, load_hub_dataset
from .shapes import SHAPE_NAMES, SHAPES
from .text import WORDS, generate_text_line
from .world import Sample, WorldConfig, generate

__all__ = [
    "BACKGROUNDS",
    "CIFAR10_CLASSES",
    "CIFAR10_CLASSES_ES",
    "FASHION_CLASSES",
    "FASHION_CLASSES_EN",
    "FASHION_MEAN",
    "FASHION_STD",
    "FOOLBOX_SETS",
    "MNIST",
    "MNIST_MEAN",
    "MNIST_STD",
    "CLASSIFICATION_WORLD",
    "COLORS",
    "COLOR_NAMES",
    "LEVELS",
    "PHOTOS",
    "PRESETS",
    "SHAPES",
    "SHAPES_MEAN",
    "SHAPES_STD",
    "SHAPE_NAMES",
    "SPLITS",
    "WORDS",
    "AugmentPreset",
    "DataUnavailableError",
    "DigitsDataset",
    "FashionMNIST",
    "FoolboxPhotos",
    "Sample",
    "ShapesClassification",
    "ShapesDetection",
    "TextLines",
    "WorldConfig",
    "batch_mix",
    "build_transform",
    "detection_collate",
    "generate",
    "generate_text_line",
    "imagenet_classes",
    "load_cifar10",
    "load_hub_dataset",
    "load_photo",
    "sources",
    "stratified_order",
    "text_collate",
]
