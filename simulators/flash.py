"""The board's NOR flash, as an image file that persists across wakes.

NOR flash erases a 4 KiB sector to 0xFF and programming can only clear bits. A power
cut can land inside an erase or a program: then only a prefix of the bytes changed,
as when the supply collapses halfway through the operation.
"""
from __future__ import annotations

import os
from pathlib import Path

BLOCK_SIZE = 4096


class PowerCut(Exception):
    """The node's supply failed at this instant; RAM, RTC memory and modem session go."""


class Flash:
    def __init__(self, path: Path, blocks: int = 256, block_size: int = BLOCK_SIZE):
        self.path = Path(path)
        self.block_size = block_size
        self.blocks = blocks
        self.ops = 0                 # program/erase operations so far (for cut injection)
        self.cut_at_op: int | None = None
        self.cut_fraction = 0.5      # how much of the interrupted operation landed
        # Erases per block since this model was made (a cut erase counts: it wore the
        # sector too). NOR sectors last about 100,000 erase cycles, so the spread
        # across blocks (wear()) is what a store's layout on the flash must keep low.
        self.erases = [0] * blocks
        if not self.path.exists():
            self.erase_all()

    def erase_all(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb") as f:
            f.write(b"\xff" * self.block_size * self.blocks)

    def _check(self, block: int, offset: int, length: int) -> None:
        if not 0 <= block < self.blocks or offset < 0 or offset + length > self.block_size:
            raise ValueError(f"flash access out of range: block {block} offset {offset} len {length}")

    def _land(self, pos: int, new: bytes, fd: int) -> None:
        """Write `new` at `pos` through the open image `fd`, or only its first part when
        a power cut is planned inside this operation."""
        op = self.ops
        self.ops += 1
        torn = self.cut_at_op is not None and op >= self.cut_at_op
        if torn:
            new = new[: int(len(new) * self.cut_fraction)]
        os.pwrite(fd, new, pos)
        if torn:
            self.cut_at_op = None
            raise PowerCut(f"power cut during flash operation {op}")

    def program(self, block: int, offset: int, data: bytes) -> None:
        self._check(block, offset, len(data))
        pos = block * self.block_size + offset
        n = len(data)
        fd = os.open(self.path, os.O_RDWR)
        try:
            old = os.pread(fd, n, pos)
            if len(old) != n:
                raise ValueError(f"{self.path}: the image ends inside block {block}")
            # Programming only clears bits: the new bytes are old AND data (as one
            # integer, which is the same and much faster than byte by byte).
            landed = (int.from_bytes(old, "big") & int.from_bytes(data, "big")).to_bytes(n, "big")
            self._land(pos, landed, fd)
        finally:
            os.close(fd)

    def erase(self, block: int) -> None:
        self._check(block, 0, self.block_size)
        self.erases[block] += 1
        fd = os.open(self.path, os.O_RDWR)
        try:
            self._land(block * self.block_size, b"\xff" * self.block_size, fd)
        finally:
            os.close(fd)

    def wear(self, blocks=None) -> tuple[int, float]:
        """(most erases of one block, mean erases per block) over `blocks` (default all)."""
        counts = self.erases if blocks is None else [self.erases[b] for b in blocks]
        return max(counts), sum(counts) / len(counts)

    def read(self, block: int, offset: int = 0, length: int | None = None) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(block * self.block_size + offset)
            return f.read(self.block_size if length is None else length)
