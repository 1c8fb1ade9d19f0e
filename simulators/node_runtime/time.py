# MicroPython, inside the simulated node: `time` on the simulator's virtual clock.
#
# MicroPython prefers this file on the path to its built-in `time`, so the firmware's
# `import time` reads and waits on the one virtual clock. The API follows
# MicroPython's `time` module (docs/library/time.rst).
import _simlink

_PERIOD = 1 << 30  # MicroPython's ticks wrap at a power of two (TICKS_PERIOD)
_EPOCH_OFFSET = 946684800  # the board's epoch is 2000-01-01 (MicroPython's default)


def ticks_us():
    return _simlink.call("now") % _PERIOD


def ticks_ms():
    return (_simlink.call("now") // 1000) % _PERIOD


def ticks_cpu():
    return ticks_us()


def ticks_add(ticks, delta):
    return (ticks + delta) % _PERIOD


def ticks_diff(a, b):
    d = (a - b) % _PERIOD
    if d >= _PERIOD // 2:
        d -= _PERIOD
    return d


def sleep_us(us):
    if us > 0:
        _simlink.call("sleep", int(us))


def sleep_ms(ms):
    sleep_us(int(ms) * 1000)


def sleep(s):
    sleep_us(int(s * 1000000))


def time_ns():
    return _simlink.call("rtc") * 1000


def time():
    return _simlink.call("rtc") // 1000000


def gmtime(secs=None):
    # Seconds since 2000-01-01 to (year, month, mday, hour, minute, second, weekday, yearday).
    if secs is None:
        secs = time()
    days, rem = divmod(int(secs), 86400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    weekday = (days + 5) % 7  # 2000-01-01 was a Saturday; Monday is 0
    z = days + 730425  # civil-from-days (H. Hinnant), shifted to the 2000 epoch
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    mday = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    jan1 = (year - 2000) * 365 + (year - 1997) // 4 - (year - 1901) // 100 + (year - 1601) // 400
    return (year, month, mday, hour, minute, second, weekday, days - jan1 + 1)


localtime = gmtime
