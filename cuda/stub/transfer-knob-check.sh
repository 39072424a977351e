#!/usr/bin/env bash
# The plugin's transfer knob (mapcache_cuda_set_transfer_v1, which gpu-bench
# --transfers sets between rows instead of changing its own environment) on
# the fake driver, counted by it (FAKE_CUDA_STATS): the knob's settings, not
# the environment's, are what the rebuilds use; without the knob, the
# environment's, read when the context opened.
#
# Usage: transfer-knob-check.sh GPU_CHECK_DIR FAKE_DRIVER_DIR
set -u -o pipefail
dir=$1 fake=$2

# "REGISTERS WAITS" of one gpu-equivalence run at 1000 entries, which must
# pass: counts [VAR=VALUE...] -- [gpu-equivalence's arguments...]
counts() {
  local vars=() out
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  out=$(env LD_LIBRARY_PATH="$fake" FAKE_CUDA_STATS=1 "${vars[@]}" "$dir/gpu-equivalence" --sizes 1000 "$@" 2>&1) || {
    echo "$out"; echo "transfer-knob-check: the run failed: ${vars[*]} $*"; exit 1; }
  echo "$out" | sed -n 's/^fake CUDA driver: cuMemHostRegister \([0-9]*\) cuStreamWaitEvent \([0-9]*\)$/\1 \2/p'
}
env_only=$(counts MAPCACHE_CUDA_REGISTER_OUTPUT=1 MAPCACHE_CUDA_CHUNKS=8 --)
knob_off=$(counts MAPCACHE_CUDA_REGISTER_OUTPUT=1 MAPCACHE_CUDA_CHUNKS=8 -- --transfer 0,0,1)
plain=$(counts --)
knob_on=$(counts -- --transfer 1,1,8)
echo "transfer-knob-check: registers/waits: environment (register, 8 chunks) $env_only;" \
  "the same environment, knob 0,0,1: $knob_off; nothing set: $plain; knob 1,1,8: $knob_on"
read -r env_regs env_waits <<<"$env_only"
read -r off_regs off_waits <<<"$knob_off"
read -r plain_regs plain_waits <<<"$plain"
read -r on_regs on_waits <<<"$knob_on"
fail() { echo "transfer-knob-check: FAIL: $1"; exit 1; }
[ -n "${env_regs:-}" ] && [ -n "${off_regs:-}" ] && [ -n "${plain_regs:-}" ] && [ -n "${on_regs:-}" ] \
  || fail "the fake driver printed no counts"
[ "$env_regs" -gt 0 ] || fail "MAPCACHE_CUDA_REGISTER_OUTPUT=1 registered nothing"
[ "$env_waits" -gt "$plain_waits" ] || fail "MAPCACHE_CUDA_CHUNKS=8 waited no more than 1 chunk"
[ "$off_regs" -eq 0 ] || fail "the knob 0,0,1 did not override the environment's registering"
[ "$off_waits" -eq "$plain_waits" ] || fail "the knob's 1 chunk did not override the environment's 8"
[ "$on_regs" -gt 0 ] || fail "the knob 1,1,8 registered nothing"
[ "$on_waits" -gt "$plain_waits" ] || fail "the knob's 8 chunks waited no more than 1 chunk"
echo "transfer-knob-check: PASS"
