"""`nodectl flash` against the virtual board, and the firmware as MicroPython's own
tools install it (mip's package.json, a freezing manifest.py) (docs/flashing.md)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host_tools import boards, firmware_build, flash, mip_package
from simulators.board.launch import BoardProcess

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FIRMWARE_SOURCES = sorted(p.relative_to(firmware_build.FIRMWARE).as_posix()
                          for p in firmware_build.sources())


def nodectl_flash(*args, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(BIN / "nodectl"), "flash", *args], capture_output=True, text=True,
                       timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"nodectl flash failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


@pytest.fixture(scope="module")
def flashed(tmp_path_factory):
    """A virtual board flashed once, with a key file of its own placed before."""
    workdir = tmp_path_factory.mktemp("flash-board")
    with BoardProcess("climate", workdir) as board:
        keys = workdir / "keys.json"
        keys.write_text('{"app_key": "not a real key"}')
        subprocess.run([str(BIN / "mpremote"), "connect", board.port, "fs", "cp", str(keys),
                        ":keys.json"], check=True, capture_output=True, timeout=30)
        start = len(board.console())
        built = firmware_build.build()      # what the flash below builds (same sources)
        r = nodectl_flash("--port", board.port, "--kind", "climate", "--json")
        yield board, json.loads(r.stdout), start, built


def test_flash_puts_every_file_and_a_manifest_of_their_hashes_on_the_board(flashed):
    board, report, _, built = flashed
    files = board.files()
    manifest = json.loads(files["manifest.json"])
    assert manifest["firmware"] == flash.firmware_version() == report["firmware"]
    assert manifest["kind"] == "climate" and manifest["board"] == "pico-rak3172"
    assert set(manifest["files"]) == set(built) | {"board.json"}
    for path, digest in manifest["files"].items():
        assert hashlib.sha256(files[path]).hexdigest() == digest, path
    assert files["board.json"] == boards.path_of("pico-rak3172").read_bytes()
    assert files["node/wake.mpy"] == built["node/wake.mpy"]
    assert sorted(report["copied"]) == sorted([*manifest["files"], "manifest.json"])
    assert report["verified"] and report["reset"]
    assert not [p for p in files if p.endswith(".new")]


def test_flash_leaves_the_nodes_own_files_alone(flashed):
    board = flashed[0]
    assert board.files()["keys.json"] == b'{"app_key": "not a real key"}'


def test_the_new_firmware_runs_after_the_reset(flashed):
    board, _, start, _ = flashed
    after = board.wait_console(b"wake reset_cause=", start=start)
    assert b"not ready" in board.wait_console(b"not ready", start=start)
    assert b"Traceback" not in after.split(b"wake reset_cause=")[1].split(b"not ready")[0]


def test_a_second_flash_copies_nothing_and_says_so(flashed):
    board = flashed[0]
    t0 = time.monotonic()
    r = nodectl_flash("--port", board.port, "--kind", "climate")
    wall = time.monotonic() - t0
    assert r.stdout.startswith("nothing to copy")
    print(f"second flash, nothing changed: {wall:.2f} s wall")   # stated, not asserted
    r = nodectl_flash("--port", board.port, "--kind", "climate", "--json")
    report = json.loads(r.stdout)
    assert report["copied"] == [] and report["removed"] == [] and report["verified"]


def test_a_changed_file_is_the_only_one_copied(flashed, monkeypatch):
    board = flashed[0]
    built = firmware_build.build()
    changed = dict(built, **{"main.py": built["main.py"] + b"# field fix 1\n"})
    monkeypatch.setattr(firmware_build, "build", lambda: dict(changed))
    report = flash.flash_board(board.port, kind="climate")
    assert report.copied == ["main.py", "manifest.json"]
    assert board.files()["main.py"] == changed["main.py"]
    monkeypatch.setattr(firmware_build, "build", lambda: dict(built))
    report = flash.flash_board(board.port, kind="climate")
    assert report.copied == ["main.py", "manifest.json"]
    assert board.files()["main.py"] == built["main.py"]


def test_a_module_the_new_firmware_drops_is_removed(flashed, monkeypatch):
    board = flashed[0]
    built = firmware_build.build()
    monkeypatch.setattr(firmware_build, "build",
                        lambda: dict(built, **{"node/retired.mpy": built["node/log.mpy"]}))
    flash.flash_board(board.port, kind="climate")
    assert "node/retired.mpy" in board.files()
    monkeypatch.setattr(firmware_build, "build", lambda: dict(built))
    report = flash.flash_board(board.port, kind="climate")
    assert report.removed == ["node/retired.mpy"]
    files = board.files()
    assert "node/retired.mpy" not in files and "keys.json" in files


def test_flash_to_a_missing_port_says_nothing_changed_and_what_to_do():
    r = nodectl_flash("--port", "/dev/no-such-port", "--kind", "climate", check=False)
    assert r.returncode == 2
    assert "no serial port /dev/no-such-port" in r.stderr
    assert "nothing was changed" in r.stderr and "nodectl board" in r.stderr


def test_flash_refuses_a_board_that_cannot_be_that_kind():
    r = nodectl_flash("--port", "/dev/null", "--kind", "glass", "--board", "pico-rak3172",
                      check=False)
    assert r.returncode == 2
    assert "cannot be a glass node" in r.stderr and "nothing was sent" in r.stderr


# --- MicroPython's own ways: mip and freezing -------------------------------------------

def test_package_json_lists_every_firmware_file():
    package = json.loads((REPO / "package.json").read_text())
    urls = {dest: src for dest, src in package["urls"]}
    missing = sorted(set(FIRMWARE_SOURCES) - set(urls))
    extra = sorted(set(urls) - set(FIRMWARE_SOURCES))
    assert not missing and not extra, (f"package.json is behind firmware/ (missing {missing}, "
                                       f"gone {extra}): run python -m host_tools.mip_package")
    assert all(src == f"firmware/{dest}" and (REPO / src).is_file() for dest, src in urls.items())
    assert package == mip_package.package()
    assert package["version"] == flash.firmware_version()


def test_mip_installs_the_firmware_onto_a_board(tmp_path):
    with BoardProcess("climate", tmp_path) as board:
        r = subprocess.run([str(BIN / "mpremote"), "connect", board.port, "mip", "install",
                            "--target=", str(REPO / "package.json")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        files = board.files()
    for rel in FIRMWARE_SOURCES:
        assert files[rel] == (firmware_build.FIRMWARE / rel).read_bytes(), rel


def test_freeze_manifest_is_valid_and_covers_every_firmware_module():
    frozen, calls = set(), []

    def package(name, files=None, base_path=".", opt=None):
        calls.append(("package", name))
        root = REPO / base_path / name
        assert (root / "__init__.py").is_file(), f"package {name} has no __init__.py"
        frozen.update(p.relative_to(REPO / base_path).as_posix() for p in root.rglob("*.py"))

    def module(path, base_path=".", opt=None):
        calls.append(("module", path))
        assert (REPO / base_path / path).is_file(), path
        frozen.add(path)

    def metadata(description=None, version=None, license=None, author=None):
        calls.append(("metadata", version))

    def include(path, **kw):
        calls.append(("include", path))

    def require(name, **kw):
        raise AssertionError("the firmware depends on no micropython-lib package")

    exec(compile((REPO / "manifest.py").read_text(), "manifest.py", "exec"),
         {"package": package, "module": module, "metadata": metadata, "include": include,
          "require": require, "freeze": None})
    assert ("metadata", flash.firmware_version()) in calls
    assert ("include", "$(PORT_DIR)/boards/manifest.py") in calls
    assert sorted(frozen) == FIRMWARE_SOURCES
