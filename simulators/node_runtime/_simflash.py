# MicroPython, inside the simulated node: the board's flash as a block device.
#
# Reads come straight from the image file; program and erase go through the simulator,
# which applies them as NOR flash does (erase to 0xFF, program clears bits) and can cut
# the power in the middle of one. The block protocol is MicroPython's extended block
# device interface (docs/library/vfs.rst, "Block devices").
from binascii import hexlify

BLOCK_SIZE = 4096  # RP2040 and ESP32 flash erase sector
PROG_SIZE = 256    # the rp2 port mounts littlefs with progsize=256


class FlashBlockDevice:
    def __init__(self, path, link=None):
        self._f = open(path, "r+b")
        self._f.seek(0, 2)
        self._count = self._f.tell() // BLOCK_SIZE
        self._link = link  # None: write the image directly (used when building an image)

    def readblocks(self, block, buf, offset=0):
        self._f.seek(block * BLOCK_SIZE + offset)
        self._f.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            # Basic interface: whole blocks, erased first.
            for i in range(len(buf) // BLOCK_SIZE):
                self.ioctl(6, block + i)
            offset = 0
        if self._link is not None:
            # Page by page, as a NOR flash programs (a page is at most 256 bytes; the
            # rp2 port's flash_range_program goes 256 bytes at a time): a power cut may
            # fall between two pages. A page also keeps the request's hex small, so the
            # wire, which a board does not have, needs no large block of its heap.
            mv = memoryview(buf)
            for at in range(0, len(buf), PROG_SIZE):
                self._link.call("flash_prog", block, offset + at, hexlify(mv[at:at + PROG_SIZE]).decode())
        else:
            pos = block * BLOCK_SIZE + offset
            self._f.seek(pos)
            old = self._f.read(len(buf))
            self._f.seek(pos)
            self._f.write(bytes(a & b for a, b in zip(old, buf)))

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self._count
        if op == 5:  # block size
            return BLOCK_SIZE
        if op == 6:  # erase
            if self._link is not None:
                self._link.call("flash_erase", arg)
            else:
                self._f.seek(arg * BLOCK_SIZE)
                self._f.write(b"\xff" * BLOCK_SIZE)
            return 0
        return 0  # init, deinit, sync
