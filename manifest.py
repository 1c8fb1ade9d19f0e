# Freezing the node firmware into a MicroPython build (docs.micropython.org,
# "MicroPython manifest files"): the modules become bytecode in the firmware image, run
# from flash, and leave the board's filesystem for the node's state.
#
#   make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/citynodes/manifest.py
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/citynodes/manifest.py
#
# A frozen main.py runs at boot as one on the filesystem would (pyexec_file_if_exists
# looks for a frozen main.py first). /board.json is not code: copy it to the board
# (mpremote fs cp boards/<board>.json :board.json) or flash with `nodectl flash`.
# Every module under firmware/ is listed here; tests/test_nodectl_flash.py checks it.
#
# Without a custom build, a MicroPython >= 1.25 with a ROMFS partition runs the same
# bytecode in place from a ROMFS image (docs/flashing.md): either way the modules must
# not be imported from the filesystem, which copies them into the heap.

metadata(
    description="LoRaWAN sensor-node firmware for a city's climate, soil, water and glass programmes",
    version="0.1.0",
    license="MIT",
)

# The port's own frozen modules (_boot.py, asyncio, ...), as a board's manifest has them.
include("$(PORT_DIR)/boards/manifest.py")

module("main.py", base_path="firmware")
package("drivers", base_path="firmware")
package("glass", base_path="firmware")
package("kinds", base_path="firmware")
package("modems", base_path="firmware")
package("node", base_path="firmware")
package("payload", base_path="firmware")
