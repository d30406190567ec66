"""Training and evaluation: the loop, its schedule, metrics, checkpoints, logging and tracking.

* :func:`fit` (:mod:`.loop`): AdamW, warm-up + cosine, label smoothing, clipping, AMP on
  GPU, early stopping, best-epoch restore, a :class:`History`, a log file, MLflow;
* :mod:`.metrics`: accuracy, macro precision/recall/F1, confusion matrix, :func:`evaluate`, :func:`predict`;
* :mod:`.distill`: a teacher's help (DeiT): :class:`DistillationWrapper`, :class:`DistillationLoss`, :class:`CachedTeacher`;
* :mod:`.checkpoint`: safetensors weights + JSON sidecar;
* :mod:`.schedule`, :mod:`.logs`, :mod:`.tracking`.
"""

from .checkpoint import file_sha256, load_checkpoint, read_sidecar, save_checkpoint
from .distill import CachedTeacher, DistillationLoss, DistillationWrapper
from .logs import log_to_file
from .loop import History, fit, param_groups, resolve_device
from .metrics import (
    Predictions,
    accuracy,
    classification_metrics,
    confusion_matrix,
    evaluate,
    logits_of,
    precision_recall_f1,
    predict,
)
from .schedule import TimeBudget, warmup_cosine, warmup_cosine_scheduler

__all__ = [
    "CachedTeacher",
    "DistillationLoss",
    "DistillationWrapper",
    "History",
    "Predictions",
    "TimeBudget",
    "accuracy",
    "classification_metrics",
    "confusion_matrix",
    "evaluate",
    "file_sha256",
    "fit",
    "load_checkpoint",
    "log_to_file",
    "logits_of",
    "param_groups",
    "precision_recall_f1",
    "predict",
    "read_sidecar",
    "resolve_device",
    "save_checkpoint",
    "warmup_cosine",
    "warmup_cosine_scheduler",
]
