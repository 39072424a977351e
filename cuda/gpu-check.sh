#!/usr/bin/env bash
# The GPU engine's whole check, in one run on a machine with an NVIDIA GPU and
# no Rust toolchain, from the artifacts `make cuda` put in target/cuda/gpu-check/
# (this script is copied there too):
#
#   1. equivalence   gpu-equivalence: tables of 1000 to 64M entries (chains,
#                    deleted slots) grown, rebuilt at the same size and shrunk
#                    by the GPU and by the CPU reference, images compared
#                    byte for byte;
#   2. faults        gpu-faults, once per MAPCACHE_CUDA_FAULT (none, open,
#                    alloc, copy, kernel, wrong): every map ends correct, auto
#                    falls back and says why, force returns the error;
#   3. benchmark     gpu-bench: rebuilds of 1M, 4M, 16M and 64M entries by the
#                    CPU reference, the parallel CPU engine on every core and
#                    the GPU end to end; wall and host CPU time; the crossover;
#                    then the GPU again at 16M and 64M with the copy-out into
#                    registered arrays (MAPCACHE_CUDA_REGISTER_OUTPUT=1), the
#                    transfer choice to measure.
#
# Then one summary (the bench's table, its crossover and the issue's goals at
# 16M entries and above: 8x the reference's wall time, no slower than the
# parallel engine, at most 10% of the reference's host CPU time). Exit status 0 only if the equivalence and every fault check
# passed. Usage: gpu-check.sh [ARTIFACT_DIR]   (default: this script's
# directory if it holds the programs, else target/cuda/gpu-check beside it).
# From a session with the device tool: `make cuda` here first, then run
# `target/cuda/gpu-check/gpu-check.sh` with carry ["target/cuda/gpu-check"]
# (about 25 MB) and a timeout that leaves room for one rerun.
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
summary=()
failed=0

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.max,pcie.link.width.max --format=csv,noheader 2>&1 || echo "nvidia-smi: not available"
echo "cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

step() { # name timeout command...
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$logs/$name.log" 2>&1
  local rc=$?
  cat "$logs/$name.log"
  [ $rc -eq 124 ] && echo "$name: TIMEOUT after ${limit}s"
  echo "   ($name: rc $rc, $((SECONDS - start)) s)"
  return $rc
}

echo "== 1. equivalence"
step equivalence 330 "$dir/gpu-equivalence" "${args[@]}" ${EQUIVALENCE_SIZES:+--sizes "$EQUIVALENCE_SIZES"}
rc=$?
line=$(grep -E '^equivalence: ' "$logs/equivalence.log" | tail -1)
summary+=("${line:-equivalence: FAIL (rc $rc, no verdict)}")
[ $rc -eq 0 ] || failed=1

echo "== 2. fault injection"
for fault in none open alloc copy kernel wrong; do
  MAPCACHE_CUDA_FAULT=$fault step "faults-$fault" 120 "$dir/gpu-faults" "${args[@]}"
  rc=$?
  line=$(grep -E '^faults\[' "$logs/faults-$fault.log" | tail -1 | cut -c1-160)
  summary+=("${line:-faults[$fault]: FAIL (rc $rc, no verdict)}")
  [ $rc -eq 0 ] || failed=1
done

echo "== 3. benchmark"
step bench 330 "$dir/gpu-bench" "${args[@]}" ${BENCH_SIZES:+--sizes "$BENCH_SIZES"}
echo "== 3b. benchmark, the copy-out into registered (page-locked) arrays"
MAPCACHE_CUDA_REGISTER_OUTPUT=1 step bench-registered 200 "$dir/gpu-bench" "${args[@]}" --gpu-only \
  --sizes "${BENCH_REGISTERED_SIZES:-16M,64M}"
summary+=("$(grep -E '^crossover: ' "$logs/bench.log" | tail -1)")
while IFS= read -r goal; do summary+=("$goal"); done < <(grep -E '^goal ' "$logs/bench.log")

echo "== summary"
printf '%s\n' "${summary[@]}"
grep -E '^ +[0-9]+ \|' "$logs/bench.log" | sed 's/^/bench: /' || true
grep -E '^ +[0-9]+ \|' "$logs/bench-registered.log" | sed 's/^/bench (registered output): /' || true
if [ $failed -eq 0 ]; then echo "gpu-check: PASS"; else echo "gpu-check: FAIL"; fi
rm -rf "$logs"
exit $failed
