# MicroPython, run by the simulator on the host: list the files in a flash image.
#
# Mounts the image's littlefs as the board does and prints one JSON object,
# {path: hex of the contents}, so host-side tools and tests can see exactly what the
# board's firmware sees. It only reads.
#   micropython image_files.py IMAGE
import json
import os
import sys
import vfs
from binascii import hexlify

from _simflash import FlashBlockDevice, PROG_SIZE


def _walk(top, rel, out):
    for name, kind, *_ in os.ilistdir(top):
        path = top + "/" + name
        key = rel + name
        if kind & 0x4000:
            _walk(path, key + "/", out)
        else:
            with open(path, "rb") as f:
                out[key] = hexlify(f.read()).decode()


vfs.mount(vfs.VfsLfs2(FlashBlockDevice(sys.argv[1]), progsize=PROG_SIZE), "/flash")
files = {}
_walk("/flash", "", files)
vfs.umount("/flash")
print(json.dumps(files))
