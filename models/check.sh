#!/usr/bin/env bash
# Model-check one LogPlayer model with SPIN and print a one-line summary.
#
#   models/check.sh <a|b> [variant] [mode]
#     variant: ok (default) | no-term (a) | no-prev-check (b) | non-atomic (b)
#              | send-time-prev (b)
#              (model a also has -DLATE_DETECTION, a check of one of its
#              reductions, not a mutation: pass it in SPIN_DEFINES with "ok")
#     mode:    safety (default: assertions + invalid end states)
#              liveness (model a: ltl eventuallyDone, acceptance cycles, weak fairness)
#   env:
#     SPIN_DEFINES   extra -D for the model, e.g. "-DFAILS=2" or "-DTARGET_FAILS=2"
#     PAN_CFLAGS     state storage for pan (default "-DCOLLAPSE": exhaustive, compressed);
#                    "-DCOLLAPSE -DMA=..." is exhaustive too; "-DBITSTATE" is a
#                    partial (supertrace) search, not a verification
#     PAN_RUN_FLAGS  extra flags for ./pan (e.g. "-w26": a bigger hash table)
#     PAN_MEMLIM_MB  memory cap for pan (default 4000)
#     KEEP_DIR=1     keep the temp dir (pan, trail) and print its path
#
# The last line of output is the summary:
#   model=a variant=ok mode=safety errors=0 states=... transitions=... depth=... memory=...MB time=...s trail=no
# Before it, for a counterexample, the MSC lines of the shortest-found trail.
set -euo pipefail

model="${1:-}"
variant="${2:-ok}"
mode="${3:-safety}"
here="$(cd "$(dirname "$0")" && pwd)"

case "$model" in
  a) pml="logplayer-a.pml" ;;
  b) pml="logplayer-b.pml" ;;
  *) echo "usage: models/check.sh <a|b> [variant] [safety|liveness]" >&2; exit 2 ;;
esac

case "$model:$variant" in
  *:ok) define="" ;;
  a:no-term) define="-DNO_TERM" ;;
  b:no-prev-check) define="-DNO_PREV_CHECK" ;;
  b:non-atomic) define="-DNON_ATOMIC" ;;
  b:send-time-prev) define="-DSEND_TIME_PREV" ;;
  *) echo "unknown variant '$variant' for model $model" >&2; exit 2 ;;
esac

case "$model:$mode" in
  *:safety) cflags="-DSAFETY -DNOCLAIM"; runflags="" ;;
  a:liveness) cflags="-DNFAIR=3"; runflags="-a -f -N eventuallyDone" ;;
  *) echo "mode '$mode' is not available for model $model" >&2; exit 2 ;;
esac

command -v spin >/dev/null || { echo "spin not found (apt-get install -y spin)" >&2; exit 3; }
command -v gcc >/dev/null || { echo "gcc not found" >&2; exit 3; }

work="$(mktemp -d "${TMPDIR:-/tmp}/lp-spin-XXXXXX")"
cleanup() { if [ "${KEEP_DIR:-0}" = "1" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT

cp "$here/$pml" "$work/"
cd "$work"
# shellcheck disable=SC2086
spin $define ${SPIN_DEFINES:-} -a "$pml" > spin.out 2>&1 || { cat spin.out >&2; exit 3; }
# shellcheck disable=SC2086
gcc -O2 -w ${PAN_CFLAGS:--DCOLLAPSE} $cflags -DMEMLIM="${PAN_MEMLIM_MB:-4000}" -o pan pan.c \
  || { echo "gcc failed" >&2; exit 3; }
# Stop at the first error (-c1); -m: max DFS depth; the models are bounded.
# shellcheck disable=SC2086
./pan -c1 -m2000000 $runflags ${PAN_RUN_FLAGS:-} > pan.out 2>&1 || true

errors="$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out | tail -1)"
states="$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.out | tail -1)"
transitions="$(sed -n 's/^ *\([0-9.e+]*\) transitions.*/\1/p' pan.out | tail -1)"
depth="$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' pan.out | tail -1)"
secs="$(sed -n 's/^pan: elapsed time \([0-9.e+]*\) seconds.*/\1/p' pan.out | tail -1)"
memory="$(sed -n 's/^ *\([0-9.]*\)[[:space:]]*total actual memory usage.*/\1/p' pan.out | tail -1)"
if [ -z "$errors" ] || [ -z "$states" ]; then
  echo "pan did not finish:" >&2
  tail -20 pan.out >&2
  exit 3
fi
if grep -q "max search depth too small" pan.out; then
  echo "warning: max search depth too small, the search was not complete" >&2
fi

if [ "$errors" != "0" ]; then
  grep -E "^pan:[0-9]+:|acceptance cycle" pan.out | head -3 || true
  # shellcheck disable=SC2086
  spin $define ${SPIN_DEFINES:-} -t "$pml" 2>&1 | grep -E "MSC:|assertion|cycle" | sed 's/^ *//' | head -40 || true
fi
trail=no
if [ -f "$pml.trail" ]; then trail=yes; fi
echo "model=$model variant=$variant mode=$mode errors=$errors states=$states transitions=${transitions:-?} depth=${depth:-?} memory=${memory:-?}MB time=${secs:-?}s trail=$trail"
