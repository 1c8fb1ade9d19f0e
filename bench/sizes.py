"""Firmware `.mpy` size per kind: what a board of that kind needs on its flash.

host_tools/firmware_build.py compiles every module with mpy-cross; a kind needs main.py,
what it imports, `kinds/<kind>`, its board's modem driver and what they import, found by reading the import
statements of the firmware's source (also those inside functions, so a soil node counts
both its SDI-12 and its Modbus driver).
"""
from __future__ import annotations

import ast
from pathlib import Path

from host_tools import firmware_build

FIRMWARE = firmware_build.FIRMWARE


def _module_file(name: str) -> Path | None:
    base = FIRMWARE.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.exists():
            return p
    return None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    pkg = path.relative_to(FIRMWARE).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(list(pkg[:len(pkg) - node.level + 1]) + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            parts = n.split(".")
            for i in range(1, len(parts) + 1):       # a package's __init__ runs too
                found.add(".".join(parts[:i]))
    return found


def closure(roots: list[str]) -> list[Path]:
    """Firmware files reached from the modules `roots` (names like 'kinds.climate')."""
    seen: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue              # a MicroPython built-in (machine, time, struct, ...)
        seen[name] = path
        todo.extend(_imports(path))
    return sorted(set(seen.values()))


def kind_size(kind: str, modem: str, built: dict[str, bytes] | None = None) -> dict:
    """`modem`: the board's modem dialect (modems/__init__.py imports its driver by name,
    as kinds/__init__.py imports the kind)."""
    built = built if built is not None else firmware_build.build()
    files = [FIRMWARE / "main.py"] + closure(["main", "node.wake", f"kinds.{kind}", f"modems.{modem}"])
    total, modules = 0, {}
    for f in sorted(set(files)):
        rel = f.relative_to(FIRMWARE).as_posix()
        key = rel if rel in firmware_build.SOURCE_ONLY else rel[:-3] + ".mpy"
        size = len(built[key])
        modules[key] = size
        total += size
    return {"bytes": total, "modules": len(modules), "files": modules,
            "all_firmware_bytes": sum(len(v) for v in built.values())}
