# MicroPython, inside the simulated node: `machine` backed by the simulator.
#
# MicroPython prefers this file on the path to its built-in `machine`, so the firmware
# drives simulated parts through the same API it uses on a board
# (MicroPython docs/library/machine*.rst). Each bus transaction crosses to the CPython
# simulator, where the part models answer with the protocol their datasheets define.
import _simlink
from _simlink import call
from binascii import hexlify, unhexlify

# reset_cause() values as MicroPython defines them (ESP32 numbering; rp2 uses the
# same names).
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

# Wake reasons (ESP32 numbering) and the sleep levels Pin.irq(wake=...) takes.
PIN_WAKE = 2
TIMER_WAKE = 4
IDLE = 1
SLEEP = 2
DEEPSLEEP = 4

_board = call("board")


def _hex(buf):
    return hexlify(buf).decode()


def unique_id():
    return unhexlify(_board["unique_id"])


def reset_cause():
    return call("reset_cause")


def wake_reason():
    return call("wake_reason")


def freq(hz=None):
    return _board["freq"]


def idle():
    pass


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


def deepsleep(ms=0):
    """The MCU powers down; the next wake is a fresh interpreter (a new process)."""
    _simlink.call_no_reply("deepsleep", int(ms))


def lightsleep(ms=0):
    # Not time.sleep: the watchdog counts through a light sleep on RP2040 but not on
    # ESP32 (docs/watchdog.md), so the simulator must know which one this is.
    call("lightsleep", int(ms) * 1000)


def reset():
    _simlink.call_no_reply("reset")


def soft_reset():
    _simlink.call_no_reply("reset")


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        call("pin_init", self.id, mode, pull, value)

    def value(self, v=None):
        if v is None:
            return call("pin_get", self.id)
        call("pin_set", self.id, 1 if v else 0)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def low(self):
        self.value(0)

    def high(self):
        self.value(1)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, *, priority=1, wake=None,
            hard=False):
        # An edge on a pin armed with wake=DEEPSLEEP wakes the sleeping board (ESP32
        # ext0); a running handler would need preemption the simulator does not do.
        call("pin_irq", self.id, trigger, bool(wake and wake & DEEPSLEEP))


def _pin_id(p):
    return p.id if isinstance(p, Pin) else p


class I2C:
    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self.id = id
        call("i2c_init", id, _pin_id(scl), _pin_id(sda), freq)

    def init(self, *, scl=None, sda=None, freq=400000):
        call("i2c_init", self.id, _pin_id(scl), _pin_id(sda), freq)

    def scan(self):
        return call("i2c_scan", self.id)

    def writeto(self, addr, buf, stop=True):
        return call("i2c_write", self.id, addr, _hex(buf), stop)

    def writevto(self, addr, vector, stop=True):
        return self.writeto(addr, b"".join(bytes(b) for b in vector), stop)

    def readfrom(self, addr, nbytes, stop=True):
        return unhexlify(call("i2c_read", self.id, addr, nbytes, stop))

    def readfrom_into(self, addr, buf, stop=True):
        data = self.readfrom(addr, len(buf), stop)
        buf[:] = data

    def _memaddr(self, memaddr, addrsize):
        return memaddr.to_bytes(addrsize // 8, "big")

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        self.writeto(addr, self._memaddr(memaddr, addrsize), False)
        return self.readfrom(addr, nbytes)

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        self.writeto(addr, self._memaddr(memaddr, addrsize), False)
        self.readfrom_into(addr, buf)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self.writeto(addr, self._memaddr(memaddr, addrsize) + bytes(buf))


SoftI2C = I2C


class UART:
    def __init__(self, id, baudrate=9600, bits=8, parity=None, stop=1, *, tx=None, rx=None,
                 timeout=0, timeout_char=0, **kw):
        self.id = id
        self.init(baudrate, bits, parity, stop, tx=tx, rx=rx, timeout=timeout,
                  timeout_char=timeout_char)

    def init(self, baudrate=9600, bits=8, parity=None, stop=1, *, tx=None, rx=None,
             timeout=0, timeout_char=0, **kw):
        self._timeout = timeout
        self._timeout_char = timeout_char
        call("uart_init", self.id, baudrate, bits, parity, stop, _pin_id(tx), _pin_id(rx))

    def deinit(self):
        pass

    def any(self):
        return call("uart_any", self.id)

    def write(self, buf):
        return call("uart_write", self.id, _hex(buf))

    def read(self, nbytes=-1):
        data = call("uart_read", self.id, nbytes, self._timeout, self._timeout_char, False)
        return None if data is None else unhexlify(data)

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else nbytes
        data = self.read(n)
        if data is None:
            return None
        buf[:len(data)] = data
        return len(data)

    def readline(self):
        data = call("uart_read", self.id, -1, self._timeout, self._timeout_char, True)
        return None if data is None else unhexlify(data)

    def sendbreak(self):
        call("uart_break", self.id)

    def flush(self):
        pass

    def txdone(self):
        return True


class ADC:
    def __init__(self, pin, *, atten=None):
        self.pin = _pin_id(pin)

    def read_u16(self):
        return call("adc", self.pin)

    def read_uv(self):
        return self.read_u16() * 3300000 // 65535


class RTC:
    def __init__(self, id=0):
        if _board.get("rtc_memory"):
            # Only boards whose RTC keeps RAM through deep sleep (ESP32) have memory().
            self.memory = self._memory

    def datetime(self, dt=None):
        import time
        if dt is not None:
            raise OSError(1)
        y, mo, d, h, mi, s, wd, yd = time.gmtime()
        return (y, mo, d, wd, h, mi, s, 0)

    def _memory(self, data=None):
        if data is None:
            return unhexlify(call("rtc_memory_get"))
        call("rtc_memory_set", _hex(data))


class WDT:
    """machine.WDT as the ports have it (docs/library/machine.WDT.rst): started by the
    constructor, fed by feed(), and never stopped (there is no deinit). A second WDT()
    restarts it with its own timeout, as both ports do (rp2: watchdog_enable again;
    esp32: esp_task_wdt_reconfigure)."""

    def __init__(self, id=0, timeout=5000):
        timeout = int(timeout)
        if _board.get("mcu") == "rp2040":
            # ports/rp2/machine_wdt.c: id 0 only; a 24-bit counter at 2 ticks/µs.
            if id != 0:
                raise ValueError("WDT(%d) doesn't exist" % id)
            if not 0 <= timeout <= 8388:
                raise ValueError("timeout exceeds 8388")
        else:
            # ports/esp32/machine_wdt.c: id 0 only, timeout_ms > 0.
            if id != 0:
                raise ValueError()
            if timeout <= 0:
                raise ValueError("WDT timeout too short")
        call("wdt_start", timeout)

    def feed(self):
        call("wdt_feed")


class _Mem32:
    """machine.mem32 for the registers the simulator models: on RP2040 the watchdog's
    CTRL (0x40058000) and SCRATCH0..3 (0x4005800c..0x40058018), which keep their value
    through a watchdog reset and lose it at power-on (RP2040 datasheet, watchdog
    registers). Any other address is an error here."""

    def __getitem__(self, addr):
        return call("mem32_get", int(addr))

    def __setitem__(self, addr, value):
        call("mem32_set", int(addr), int(value) & 0xFFFFFFFF)


mem32 = _Mem32()
