"""The firmware as a board holds it: a ROMFS image whose modules import in place, so a
node runs in a heap the size a board without PSRAM gives MicroPython (docs/flashing.md,
"ROMFS"; simulators/romfs.py)."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from host_tools import firmware_build
from simulators import romfs

# Modules of a climate wake that the test imports (and their imports).
WAKE = ["node.wake", "kinds.climate", "modems.rak3172"]

MOUNT_AND_IMPORT = """
import gc, json, sys, uctypes, vfs, uos
gc.collect()
before = gc.mem_alloc()
if uos.getenv("SIM_ROM_MAP"):
    addr, n = uos.getenv("SIM_ROM_MAP").split(":")
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(addr), int(n))), "/rom")
else:
    vfs.mount(vfs.VfsPosix(uos.getenv("SIM_ROM")), "/rom", readonly=True)
sys.path[:] = ["/rom"]
gc.collect()
mounted = gc.mem_alloc()
files = {}
def walk(d):
    for name, kind, *_ in uos.ilistdir(d):
        p = d + "/" + name
        if kind & 0x4000:
            walk(p)
        else:
            with open(p, "rb") as f:
                files[p[5:]] = len(f.read())
walk("/rom")
gc.collect()
start = gc.mem_alloc()
for m in %r:
    __import__(m)
gc.collect()
print(json.dumps({"mount": mounted - before, "imports": gc.mem_alloc() - start,
                  "files": files, "modules": sorted(k for k in sys.modules if "." in k)}))
"""


def _run(env_rom: str, tmp_path) -> dict:
    script = tmp_path / "probe.py"
    script.write_text(MOUNT_AND_IMPORT % WAKE)
    env = dict(os.environ, SIM_ROM=env_rom)
    env.pop("SIM_ROM_MAP", None)
    r = subprocess.run([romfs.launcher(), "-X", "heapsize=400K", str(script)], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def rom_files():
    return firmware_build.split(firmware_build.build())[0]


def test_romfs_image_holds_every_compiled_module_and_nothing_else(rom_files, tmp_path):
    got = _run(str(firmware_build.romfs_file(rom_files)), tmp_path)
    assert got["files"] == {rel: len(data) for rel, data in rom_files.items()}
    assert all(rel.endswith(".mpy") for rel in got["files"])
    assert "main.py" not in got["files"]       # main.py stays on the filesystem
    _, flash = firmware_build.split(firmware_build.build())
    assert set(flash) == {"main.py"}


def test_modules_imported_from_the_mapped_image_keep_their_code_off_the_heap(rom_files, tmp_path):
    folder = tmp_path / "rom"
    for rel, data in rom_files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    from_image = _run(str(firmware_build.romfs_file(rom_files)), tmp_path)
    from_folder = _run(str(folder), tmp_path)
    assert from_image["modules"] == from_folder["modules"]
    image_bytes = firmware_build.romfs_file(rom_files).stat().st_size
    # The image itself is not on the heap: mounting it costs a few objects.
    assert from_image["mount"] < 1024 < image_bytes
    # Imported in place, the bytecode of the imported modules stays in the image.
    loaded = sum(len(rom_files[m.replace(".", "/") + ".mpy"]) for m in from_image["modules"]
                 if m.replace(".", "/") + ".mpy" in rom_files)
    assert from_folder["imports"] - from_image["imports"] > loaded // 2


def test_the_same_files_make_the_same_image(rom_files):
    assert firmware_build.romfs(rom_files) == firmware_build.romfs(dict(reversed(list(rom_files.items()))))
    assert firmware_build.romfs(rom_files)[:3] == b"\xd2\xcd\x31"      # ROMFS magic (vfs_rom.c)


def test_the_launcher_without_an_image_runs_micropython_as_it_is(tmp_path):
    env = dict(os.environ)
    env.pop("SIM_ROM", None)
    r = subprocess.run([romfs.launcher(), "-c", "import os; print(os.getenv('SIM_ROM_MAP'))"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "None", r.stdout + r.stderr
