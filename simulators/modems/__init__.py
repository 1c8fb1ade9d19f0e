"""LoRaWAN modem models: each speaks its vendor's dialect on a `UartLink`.

The models share one `simulators.network.Network` and its EU868 radio arithmetic.

    modem = simulators.modems.build("rak3172", clock, network, dev_eui)
    link = UartLink(clock, baudrate); link.attach(modem)
"""
from importlib import import_module

# Board-file modem type -> "module:class" of its model (imported on first use).
MODELS = {
    "rak3172": "simulators.modems.rak3172:Rak3172",
    "wioe5": "simulators.modems.wioe5:WioE5",
    "rn2483": "simulators.modems.rn2483:Rn2483",
}


def model_class(modem_type: str):
    try:
        module, cls = MODELS[modem_type].split(":")
    except KeyError:
        raise ValueError(f"no model for modem {modem_type!r}; known: {', '.join(MODELS)}") from None
    return getattr(import_module(module), cls)


def build(modem_type: str, clock, network, dev_eui: bytes, **kw):
    """A powered, booted model of the modem a board file names."""
    return model_class(modem_type)(clock, network, dev_eui, **kw)
