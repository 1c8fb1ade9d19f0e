"""LoRaWAN modems on a UART: one AT transport (`modems.at`) and a module per dialect.

    from modems.rak3172 import RAK3172
    modem = RAK3172(machine.UART(1, 115200, timeout=50))
"""
