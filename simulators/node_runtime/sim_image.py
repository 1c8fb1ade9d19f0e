# MicroPython, run by the simulator on the host: build a flash image.
#
# Formats the image with littlefs exactly as the board mounts it and copies a staging
# folder into it, the way `mpremote fs cp` would fill a board.
#   micropython sim_image.py IMAGE STAGING_DIR
import os
import sys
import vfs

from _simflash import FlashBlockDevice, PROG_SIZE


def _copy(src, dst):
    for name in os.listdir(src):
        s = src + "/" + name
        d = dst + "/" + name
        if os.stat(s)[0] & 0x4000:
            try:
                os.mkdir(d)
            except OSError:
                pass
            _copy(s, d)
        else:
            with open(s, "rb") as fi, open(d, "wb") as fo:
                while True:
                    chunk = fi.read(1024)
                    if not chunk:
                        break
                    fo.write(chunk)


image, staging = sys.argv[1], sys.argv[2]
bdev = FlashBlockDevice(image)
if "--keep" not in sys.argv:
    vfs.VfsLfs2.mkfs(bdev, progsize=PROG_SIZE)
vfs.mount(vfs.VfsLfs2(bdev, progsize=PROG_SIZE), "/flash")
_copy(staging, "/flash")
vfs.umount("/flash")
