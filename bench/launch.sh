#!/bin/sh
# The command a measured node's interpreter runs under (SimNode.launcher):
#
#     bench/launch.sh MODE OUTDIR micropython -X heapsize=N .../sim_boot.py
#
# Every mode runs sim_boot.py through bench/node_probe.py (tagged light sleeps, a clean
# exit at deep sleep). MODE probe also samples the heap before each request; plain does
# not; callgrind runs under `valgrind --tool=callgrind` counting only MicroPython's own
# main (--toggle-collect=main_), in a session of its own so that the simulator's kill at
# deep sleep does not stop valgrind from writing OUTDIR/callgrind.<pid>; the pid goes to
# OUTDIR/pids. With BENCH_RUNTIME_MPY naming a folder of the simulator's node runtime
# compiled to .mpy (bench/runtime.py), the node imports machine, time and the wire from
# there, as a board has them built in. A shell script: it starts once per wake.
set -e
mode="$1"; out="$2"; shift 2
mp="$1"; xopt="$2"; heap="$3"; boot="$4"
probe="$(dirname "$0")/node_probe.py"
export BENCH_SIM_BOOT="$boot"
if [ -n "$BENCH_RUNTIME_MPY" ]; then
    export MICROPYPATH="$BENCH_RUNTIME_MPY"
fi
case "$mode" in
    probe) export BENCH_HEAP=1; exec "$mp" "$xopt" "$heap" "$probe" ;;
    plain) export BENCH_HEAP=0; exec "$mp" "$xopt" "$heap" "$probe" ;;
    callgrind)
        export BENCH_HEAP=0
        # The venv's micropython is a Python script: valgrind must see its interpreter.
        interp="$(head -n 1 "$mp" | sed -n 's/^#!//p')"
        setsid valgrind --tool=callgrind --toggle-collect=main_ \
            --callgrind-out-file="$out/callgrind.%p" --log-file="$out/valgrind.%p.log" \
            $interp "$mp" "$xopt" "$heap" "$probe" &
        echo $! >> "$out/pids"
        wait $! ;;
    *) echo "launch.sh: unknown mode $mode" >&2; exit 2 ;;
esac
