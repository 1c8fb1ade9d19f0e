"""The files in a board's flash image, read from the host.

    files = read_files(Path("board-out/flash.img"))     # {"main.py": b"...", ...}

The image is mounted by the real MicroPython interpreter with the littlefs settings the
board uses (simulators/node_runtime/image_files.py), so this sees exactly what the
firmware sees. Read while the board is at rest (its REPL waiting, or asleep): littlefs
commits a file when it is closed.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from simulators.interpreter import micropython_binary

RUNTIME = Path(__file__).resolve().parent.parent / "node_runtime"


def read_files(image: Path) -> dict[str, bytes]:
    env = dict(os.environ, MICROPYPATH=str(RUNTIME))
    r = subprocess.run([micropython_binary(), str(RUNTIME / "image_files.py"), str(image)],
                       capture_output=True, text=True, env=env, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"cannot read the flash image {image}: {(r.stdout + r.stderr).strip()[-500:]}")
    return {path: bytes.fromhex(data) for path, data in json.loads(r.stdout).items()}
