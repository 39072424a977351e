#!/usr/bin/env bash
# The plugin's transfer knob (mapcache_cuda_set_transfer_v1, which gpu-bench
# --transfers sets between rows instead of changing its own environment) on
# the fake driver, which counts (FAKE_CUDA_STATS) the registrations that copies
# went through, by direction, and the copy stream's waits (one per chunk):
# with the knob, its settings and not the environment's are what the rebuilds
# use, each flag for its own direction; without it, the environment's, read
# when the context opened. At 300k entries, whose tables gpu-equivalence
# rebuilds both packed and in place.
#
# Usage: transfer-knob-check.sh GPU_CHECK_DIR FAKE_DRIVER_DIR
set -u -o pipefail
dir=$1 fake=$2

# Prints "IN OUT UNUSED WAITS" of one gpu-equivalence run, which must pass:
# counts [VAR=VALUE...] -- [gpu-equivalence's arguments...]
counts() {
  local vars=() out line
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  if ! out=$(env LD_LIBRARY_PATH="$fake" FAKE_CUDA_STATS=1 ${vars[@]+"${vars[@]}"} \
      "$dir/gpu-equivalence" --sizes 300k "$@" 2>&1); then
    echo "$out" >&2
    echo "transfer-knob-check: FAIL: the run failed: ${vars[*]+${vars[*]}} $*" >&2
    return 1
  fi
  line=$(echo "$out" | sed -n 's/^fake CUDA driver: registered for copy-in \([0-9]*\) for copy-out \([0-9]*\) unused \([0-9]*\); cuStreamWaitEvent \([0-9]*\)$/\1 \2 \3 \4/p')
  if [ -z "$line" ]; then
    echo "$out" >&2
    echo "transfer-knob-check: FAIL: the fake driver printed no counts: ${vars[*]+${vars[*]}} $*" >&2
    return 1
  fi
  echo "$line"
}
fail() { echo "transfer-knob-check: FAIL: $1"; exit 1; }

plain=$(counts --) || exit 1
env_all=$(counts MAPCACHE_CUDA_REGISTER_INPUT=1 MAPCACHE_CUDA_REGISTER_OUTPUT=1 MAPCACHE_CUDA_CHUNKS=8 --) || exit 1
knob_off=$(counts MAPCACHE_CUDA_REGISTER_INPUT=1 MAPCACHE_CUDA_REGISTER_OUTPUT=1 MAPCACHE_CUDA_CHUNKS=8 -- --transfer 0,0,1) || exit 1
knob_in=$(counts -- --transfer 1,0,1) || exit 1
knob_out=$(counts -- --transfer 0,1,1) || exit 1
knob_chunks=$(counts -- --transfer 0,0,8) || exit 1
echo "transfer-knob-check: registered for copy-in, copy-out, unused; waits:" \
  "nothing set: $plain | environment (both, 8 chunks): $env_all |" \
  "that environment with the knob 0,0,1: $knob_off | knob 1,0,1: $knob_in |" \
  "knob 0,1,1: $knob_out | knob 0,0,8: $knob_chunks"
read -r p_in p_out p_unused p_waits <<<"$plain"
read -r e_in e_out e_unused e_waits <<<"$env_all"
read -r o_in o_out o_unused o_waits <<<"$knob_off"
read -r i_in i_out i_unused i_waits <<<"$knob_in"
read -r u_in u_out u_unused u_waits <<<"$knob_out"
read -r c_in c_out c_unused c_waits <<<"$knob_chunks"
[ "$p_in" -eq 0 ] && [ "$p_out" -eq 0 ] || fail "with nothing set, memory was registered"
[ "$e_in" -gt 0 ] && [ "$e_out" -gt 0 ] || fail "MAPCACHE_CUDA_REGISTER_INPUT/OUTPUT=1 did not register both sides"
[ "$e_waits" -gt "$p_waits" ] || fail "MAPCACHE_CUDA_CHUNKS=8 waited no more often than 1 chunk"
[ "$o_in" -eq 0 ] && [ "$o_out" -eq 0 ] || fail "the knob 0,0,1 did not override the environment's registering"
[ "$o_waits" -eq "$p_waits" ] || fail "the knob's 1 chunk did not override the environment's 8"
[ "$i_in" -eq "$e_in" ] && [ "$i_out" -eq 0 ] || fail "the knob 1,0,1 did not register the copy-in's side only"
[ "$u_in" -eq 0 ] && [ "$u_out" -eq "$e_out" ] || fail "the knob 0,1,1 did not register the copy-out's side only"
[ "$c_waits" -eq "$e_waits" ] && [ "$c_in" -eq 0 ] && [ "$c_out" -eq 0 ] \
  || fail "the knob 0,0,8 did not chunk as MAPCACHE_CUDA_CHUNKS=8 does, registering nothing"
for unused in "$p_unused" "$e_unused" "$o_unused" "$i_unused" "$u_unused" "$c_unused"; do
  [ "$unused" -eq 0 ] || fail "a registration no copy went through"
done
echo "transfer-knob-check: PASS"
