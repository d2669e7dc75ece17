#!/bin/bash
# bench/ops.sh - runs `lathe bench ops` on the CPU (and on vulkan:N when given) and prints the
# tables; optionally adds a PyTorch torch.matmul line for the same square shapes as a peer.
# Builds nothing: pass the path of a built lathe binary (default ./build/lathe).
#   usage: bench/ops.sh [path/to/lathe] [vulkan:N] [extra lathe bench options, e.g. --quick]
# OMP_WAIT_POLICY defaults to passive here: on small shared machines busy-waiting OpenMP
# threads can steal the cores the next op needs.
set -u
LATHE=${1:-./build/lathe}
shift || true
VK=""
if [ $# -gt 0 ] && [[ "$1" == vulkan:* ]]; then VK=$1; shift; fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
if [ ! -x "$LATHE" ]; then echo "bench/ops.sh: no lathe binary at $LATHE" >&2; exit 2; fi
rc=0
"$LATHE" bench ops --device cpu "$@" || rc=1
if [ -n "$VK" ]; then echo; "$LATHE" bench ops --device "$VK" "$@" || rc=1; fi
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c "import torch" 2>/dev/null; then
  echo
  "$PY" - <<'PYEOF'
import time, torch
print("torch %s matmul peer (%d threads)" % (torch.__version__, torch.get_num_threads()))
for n in (256, 1024, 2048):
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); torch.matmul(a, b); ts.append(time.perf_counter() - t0)
    t = sorted(ts)[2]
    print("torch.matmul %5d^3  %9.3f ms  %7.1f GFLOP/s" % (n, t * 1e3, 2 * n ** 3 / t / 1e9))
PYEOF
fi
exit $rc
