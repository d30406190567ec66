"""Checkpoints this project trains itself and ships inside the package (see :mod:`.registry`).

>>> from vitcourse import checkpoints
>>> checkpoints.available()            # names
>>> checkpoints.info("vit_shapes")  # how it was made and what it reached
>>> model = checkpoints.load("vit_shapes")  # verified, in eval mode

Rebuild them with ``python -m vitcourse.checkpoints.build`` (minutes on a CPU).
"""

from .registry import (
    ChecksumError,
    UnknownCheckpointError,
    available,
    info,
    load,
    register,
    registry_dir,
    verify,
    weights_path,
)

__all__ = [
    "ChecksumError",
    "UnknownCheckpointError",
    "available",
    "info",
    "load",
    "register",
    "registry_dir",
    "verify",
    "weights_path",
]
