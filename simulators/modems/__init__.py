"""LoRaWAN modem models: each speaks its vendor's AT dialect on a `UartLink`.

The models share one `simulators.network.Network` and its EU868 radio arithmetic.

    link = UartLink(clock, Rak3172.BAUDRATE)
    link.attach(Rak3172(clock, network, dev_eui))
"""
from simulators.modems.rak3172 import Rak3172

__all__ = ["Rak3172"]
