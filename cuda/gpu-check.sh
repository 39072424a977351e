#!/usr/bin/env bash
# The GPU engine's whole check, in one run on a machine with an NVIDIA GPU and
# no Rust toolchain, from the artifacts `make cuda` put in target/cuda/gpu-check/
# (this script is copied there too):
#
#   1. equivalence   gpu-equivalence: tables of 1000 to 64M entries (chains,
#                    deleted slots) grown, rebuilt at the same size and shrunk
#                    by the GPU and by the CPU reference, images compared
#                    byte for byte; last, a sparse table grown from 2^25 to
#                    2^26 buckets (7.5 GB), whose byte offsets pass 2^32;
#   2. faults        gpu-faults, once per MAPCACHE_CUDA_FAULT (none, open,
#                    alloc, copy, kernel, wrong), and those but open again with
#                    the tables read in place: every map ends correct, auto
#                    falls back and says why, force returns the error;
#   3. benchmark     gpu-bench: rebuilds of 1M, 4M, 16M and 64M entries by the
#                    CPU reference, the parallel CPU engine on every core and
#                    the GPU end to end; wall and host CPU time; the crossover;
#                    and, on the same tables, the GPU with each transfer choice
#                    (the old table packed or in place, pageable or
#                    registered; the new one into pageable or registered
#                    arrays, one copy or 8 chunks overlapping the fill).
#
# Then one summary (the bench's tables, its crossover and the issue's goals at
# 16M entries and above: 8x the reference's wall time, no slower than the
# parallel engine, at most 10% of the reference's host CPU time). Exit status
# 0 only if the equivalence and every fault check passed.
#
# Time: the whole script keeps within GPU_CHECK_BUDGET seconds (default 480),
# so that one device call (at most 600 s, of a session's 15 minutes) holds it
# with the summary at the end: each step's time limit is cut to what is left,
# less what the steps after it are promised (RESERVE below); a step with too
# little left is skipped and says so. Every step's log is also written to
# $OUT/gpu-check/ when $OUT is set (the device tool brings that folder back).
#
# Usage: gpu-check.sh [ARTIFACT_DIR]   (default: this script's directory if it
# holds the programs, else target/cuda/gpu-check beside it). From a session
# with the device tool: `make cuda` here first, then run
# `target/cuda/gpu-check/gpu-check.sh` with carry ["target/cuda/gpu-check"]
# (about 25 MB) and a timeout_s of about GPU_CHECK_BUDGET + 30.
# EQUIVALENCE_SIZES and BENCH_SIZES (comma lists, k and M suffixes) override
# the sizes, e.g. for a quick first run. GPU_CHECK_PLUGIN and GPU_CHECK_ARGS
# are for a dry run of this script without a GPU: the plugin built without CUDA,
# `--no-driver`, and MAPCACHE_CUDA_EMULATE=1 (see mk/cuda.mk, gpu-check-dry).
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-}
if [ -z "$dir" ]; then
  if [ -x "$here/gpu-bench" ]; then dir=$here; else dir=$here/../target/cuda/gpu-check; fi
fi
dir=$(cd "$dir" && pwd) || { echo "gpu-check: no artifact directory $dir (run make cuda)"; exit 2; }
plugin=${GPU_CHECK_PLUGIN:-$dir/libmapcache_cuda.so}
args=(--plugin "$plugin" ${GPU_CHECK_ARGS:-})
for f in gpu-equivalence gpu-faults gpu-bench libmapcache_cuda.so; do
  [ -e "$dir/$f" ] || { echo "gpu-check: $dir/$f is missing (run make cuda)"; exit 2; }
done
logs=$(mktemp -d)
if [ -n "${OUT:-}" ] && mkdir -p "$OUT/gpu-check" 2>/dev/null; then keep=$OUT/gpu-check; else keep=; fi
summary=()
failed=0
budget=${GPU_CHECK_BUDGET:-480}
deadline=$((SECONDS + budget))

echo "== machine"
timeout -k 2 20 nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.max,pcie.link.width.max --format=csv,noheader 2>&1 || echo "nvidia-smi: not available"
echo "cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "budget: ${budget} s"
# The driver as the core opens it (dlopen "libcuda.so.1"): from the loader's
# cache, else from a driver directory a container mounts without registering it
# (an LD_LIBRARY_PATH already set, e.g. the fake driver's, is searched first).
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/cuda/compat; do
    if [ -e "$d/libcuda.so.1" ]; then
      export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d
      echo "libcuda.so.1: not in the loader's cache; using $d"
      break
    fi
  done
fi
echo "libcuda.so.1: $(ldconfig -p 2>/dev/null | grep -m1 'libcuda\.so\.1 ' | sed 's/.*=> //')${LD_LIBRARY_PATH:+ (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)}"

# step NAME LIMIT RESERVE COMMAND...: runs COMMAND with a time limit of LIMIT
# seconds, or less: what is left of the budget after RESERVE seconds kept for
# the steps after it and KILL_GRACE for a command that ignores the timeout's
# SIGTERM (then killed). Skipped (rc 125) when under 10 s would be left.
KILL_GRACE=5
step() {
  local name=$1 limit=$2 reserve=$3; shift 3
  local left=$((deadline - SECONDS - reserve - KILL_GRACE))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 10 ]; then
    echo "$name: SKIPPED (the budget of ${budget} s is spent)" | tee "$logs/$name.log"
    [ -n "$keep" ] && cp "$logs/$name.log" "$keep/"
    return 125
  fi
  local start=$SECONDS
  timeout -k "$KILL_GRACE" "$limit" "$@" > "$logs/$name.log" 2>&1
  local rc=$?
  cat "$logs/$name.log"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && echo "$name: TIMEOUT after ${limit}s" | tee -a "$logs/$name.log"
  echo "   ($name: rc $rc, $((SECONDS - start)) s)"
  [ -n "$keep" ] && cp "$logs/$name.log" "$keep/"
  return $rc
}

# What each part is promised of the budget while the earlier ones run: the
# faults about 60 s in all, the benchmark about 150 s, the summary 5 s.
echo "== 1. equivalence"
step equivalence 300 215 "$dir/gpu-equivalence" "${args[@]}" ${EQUIVALENCE_SIZES:+--sizes "$EQUIVALENCE_SIZES"}
rc=$?
line=$(grep -E '^equivalence: ' "$logs/equivalence.log" | tail -1)
# Cut short (a timeout at the largest sizes): what it checked until then.
ok=$(grep -c '^ok ' "$logs/equivalence.log")
bad=$(grep -c '^FAIL ' "$logs/equivalence.log")
summary+=("${line:-equivalence: FAIL (rc $rc, no verdict; $ok ok and $bad FAIL before it stopped)}")
[ $rc -eq 0 ] || failed=1

echo "== 2. fault injection"
# Each fault with the old tables packed, then those that concern the copy-in
# with them read in place (MAPCACHE_GPU_SOURCE=in-place).
for run in none open alloc copy kernel wrong in-place:none in-place:alloc in-place:copy \
    in-place:kernel in-place:wrong; do
  fault=${run#in-place:}
  source=packed; [ "$run" = "$fault" ] || source=in-place
  MAPCACHE_GPU_SOURCE=$source MAPCACHE_CUDA_FAULT=$fault \
    step "faults-${run/:/-}" 40 155 "$dir/gpu-faults" "${args[@]}"
  rc=$?
  line=$(grep -E '^faults\[' "$logs/faults-${run/:/-}.log" | tail -1 | cut -c1-160)
  [ $rc -eq 125 ] && line="faults[$fault]: SKIPPED (the budget is spent)"
  line=${line:-faults[$fault]: FAIL (rc $rc, no verdict)}
  [ "$source" = packed ] || line="in-place ${line}"
  summary+=("$line")
  [ $rc -eq 0 ] || failed=1
done

echo "== 3. benchmark"
step bench 400 5 "$dir/gpu-bench" "${args[@]}" --transfers ${BENCH_SIZES:+--sizes "$BENCH_SIZES"}
summary+=("$(grep -E '^crossover: ' "$logs/bench.log" | tail -1)")
while IFS= read -r goal; do summary+=("$goal"); done < <(grep -E '^goal ' "$logs/bench.log")

echo "== summary"
printf '%s\n' "${summary[@]}"
grep -E '^( +[0-9]+|transfer|pack|host) ' "$logs/bench.log" | sed 's/^/bench: /' || true
echo "gpu-check: $((SECONDS)) s of the budget's ${budget} s"
if [ $failed -eq 0 ]; then verdict="gpu-check: PASS"; else verdict="gpu-check: FAIL"; fi
echo "$verdict"
if [ -n "$keep" ]; then
  { printf '%s\n' "${summary[@]}"; echo "$verdict"; } > "$keep/summary.txt"
fi
rm -rf "$logs"
exit $failed
