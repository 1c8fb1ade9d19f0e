"""The firmware as a mip package: package.json at the repository root.

    python -m host_tools.mip_package        # rewrite package.json from firmware/

mip (docs.micropython.org, "Package management") installs the files `urls` lists, each
`[destination on the board, source relative to package.json]`; `mip install
github:ORG/REPO` fetches the root's package.json. The file is generated from firmware/
so that it lists every module; tests/test_nodectl_flash.py checks it is up to date.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from host_tools import firmware_build
from host_tools.flash import firmware_version

PACKAGE_JSON = firmware_build.REPO / "package.json"


def package() -> dict:
    files = [p.relative_to(firmware_build.FIRMWARE).as_posix() for p in firmware_build.sources()]
    return {"urls": [[f, f"firmware/{f}"] for f in sorted(files)], "version": firmware_version()}


def render(pkg: dict) -> str:
    urls = ",\n".join("    " + json.dumps(u) for u in pkg["urls"])
    return f'{{\n  "urls": [\n{urls}\n  ],\n  "version": {json.dumps(pkg["version"])}\n}}\n'


def main() -> int:
    PACKAGE_JSON.write_text(render(package()))
    print(f"{PACKAGE_JSON}: {len(package()['urls'])} files, version {firmware_version()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
