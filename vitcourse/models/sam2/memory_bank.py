"""SAM 2's memory bank: which frames the tracker remembers.

Two kinds of entries, kept apart:

* **prompted frames**, where the user clicked or drew a box: their masks are the most
  trustworthy, so they stay (up to ``max_prompted`` of them, the most recent);
* **the N latest frames** the tracker segmented on its own: a FIFO queue, the
  oldest leaves when a new one comes.

Each entry holds the frame's memory (``g²`` tokens from the memory encoder) and its
**object pointer**, one vector summarising the object (the mask decoder's output
token). The memory is the bank's concatenation, in order: prompted frames, then the
recent ones, each with its distance in time from the current frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch

__all__ = ["MemoryBank", "MemoryEntry"]


@dataclass
class MemoryEntry:
    """One remembered frame.

    Attributes:
        frame: index of the frame in the video.
        memory: ``(B, C_mem, g, g)`` from the memory encoder.
        pointer: ``(B, C)`` object pointer.
        prompted: whether the user prompted this frame.
    """

    frame: int
    memory: torch.Tensor
    pointer: torch.Tensor
    prompted: bool


class MemoryBank:
    """A FIFO of the ``num_recent`` latest frames plus the prompted frames.

    Args:
        num_recent: ``N``, unprompted frames kept (6 in SAM 2).
        max_prompted: prompted frames kept (the most recent ones).

    Example::

        bank = MemoryBank(num_recent=2)
        bank.add(MemoryEntry(0, m0, p0, prompted=True))
        for t in range(1, 5):
            bank.add(MemoryEntry(t, m, p, prompted=False))
        [e.frame for e in bank.entries()]   # [0, 3, 4]
    """

    def __init__(self, num_recent: int = 6, max_prompted: int = 4) -> None:
        if num_recent < 0 or max_prompted < 1:
            raise ValueError(
                f"need num_recent >= 0 and max_prompted >= 1, got {num_recent} and {max_prompted}"
            )
        self.num_recent = num_recent
        self.max_prompted = max_prompted
        self.prompted: deque[MemoryEntry] = deque(maxlen=max_prompted)
        self.recent: deque[MemoryEntry] = deque(maxlen=num_recent)

    def __len__(self) -> int:
        return len(self.prompted) + len(self.recent)

    def __repr__(self) -> str:
        return (f"MemoryBank(prompted={[e.frame for e in self.prompted]}, "
                f"recent={[e.frame for e in self.recent]})")

    def add(self, entry: MemoryEntry) -> None:
        """Remember a frame; a frame already in the bank is replaced (a corrective
        click).
        """
        self.remove(entry.frame)
        (self.prompted if entry.prompted else self.recent).append(entry)

    def remove(self, frame: int) -> None:
        """Forget a frame, if the bank holds it."""
        for queue in (self.prompted, self.recent):
            for e in [e for e in queue if e.frame == frame]:
                queue.remove(e)

    def entries(self) -> list[MemoryEntry]:
        """Prompted frames, then the recent ones, each oldest first."""
        return list(self.prompted) + list(self.recent)

    def frames(self) -> list[int]:
        """The frame indices remembered, in the order of :meth:`entries`."""
        return [e.frame for e in self.entries()]

    def clear(self) -> None:
        """Forget everything (a new video)."""
        self.prompted.clear()
        self.recent.clear()
