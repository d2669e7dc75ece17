#!/bin/bash
# bench/ops.sh - runs `lathe bench ops` on the CPU (and on vulkan:N when given) and prints the
# tables; optionally adds a PyTorch torch.matmul line for the same square shapes as a peer.
# With a Vulkan device it also runs `--op large_matmul` (4096^3 in f32 and with a bf16 B) and,
# when PyTorch sees a CUDA GPU, times torch.matmul at 4096^3 in f32 and bf16 on that GPU in the
# same run and prints lathe's rate as a fraction of torch's (skipped without torch or CUDA).
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
LARGE=""
if [ -n "$VK" ]; then
  echo; "$LATHE" bench ops --device "$VK" "$@" || rc=1
  echo; LARGE=$("$LATHE" bench ops --device "$VK" --op large_matmul) || rc=1
  echo "$LARGE"
fi
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c "import torch" 2>/dev/null; then
  echo
  # lathe's GFLOP/s at 4096^3: f32, then bf16 B (empty without a Vulkan run)
  rate='{for (i = 2; i <= NF; i++) if ($i == "GFLOP/s") {print $(i - 1); exit}}'
  LATHE_F32=$(echo "$LARGE" | awk "/^large_matmul +4096\\^3 +[0-9]/ $rate")
  LATHE_BF16=$(echo "$LARGE" | awk "/^large_matmul +4096\\^3 bf16/ $rate")
  LATHE_F32=$LATHE_F32 LATHE_BF16=$LATHE_BF16 "$PY" - <<'PYEOF'
import os, time, torch
print("torch %s matmul peer (%d threads)" % (torch.__version__, torch.get_num_threads()))
for n in (256, 1024, 2048):
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); torch.matmul(a, b); ts.append(time.perf_counter() - t0)
    t = sorted(ts)[2]
    print("torch.matmul %5d^3  %9.3f ms  %7.1f GFLOP/s" % (n, t * 1e3, 2 * n ** 3 / t / 1e9))
if not torch.cuda.is_available():
    print("torch: no CUDA device: the 4096^3 GPU peer is skipped")
    raise SystemExit(0)
n = 4096
print("torch.matmul on %s" % torch.cuda.get_device_name(0))
for name, dt, env in (("f32", torch.float32, "LATHE_F32"), ("bf16", torch.bfloat16, "LATHE_BF16")):
    torch.backends.cuda.matmul.allow_tf32 = False  # plain fp32, as lathe computes it
    a = torch.randn(n, n, device="cuda", dtype=dt)
    b = torch.randn(n, n, device="cuda", dtype=dt)
    for _ in range(3):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    ts = []
    for _ in range(10):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); torch.matmul(a, b); e1.record(); torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1) * 1e-3)
    t = sorted(ts)[len(ts) // 2]
    gf = 2 * n ** 3 / t / 1e9
    line = "torch.matmul %d^3 %-4s  %9.3f ms  %9.1f GFLOP/s" % (n, name, t * 1e3, gf)
    mine = os.environ.get(env, "")
    try:
        line += "   lathe %s GFLOP/s = %.2f of torch" % (mine, float(mine) / gf)
    except ValueError:
        line += "   (no lathe figure: run with vulkan:N)"
    print(line)
PYEOF
fi
exit $rc
