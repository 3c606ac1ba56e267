#!/usr/bin/env bash
# Part of scripts/bench.sh: resolve + export of a smaller platform (FAULT_MB, default 256 MiB, 16 images) fault-free and
# under each fault of the integration tests' fault matrix, injected by the TestKit's fault-proxy (the same FaultPlan as
# tests/OpenLm.Mirror.IntegrationTests/Release/FaultMatrixTests.cs). Prints each time, its ratio to fault-free (target
# <= 3x) and peak RSS. The proxy also serves bearer tokens (--tokens), so every row exchanges tokens as against ECR.
# The fault-free time is the median of 3 fault-free runs (the first also warms the page cache, the registry and the
# proxy), so the ratios are not flattered by a slow first run nor spoiled by one noisy one.
# Inputs: WORK, MIRROR (the CLI), TESTKIT (the TestKit executable). Standalone:
#   WORK=.work/bench-faults MIRROR=... TESTKIT=... bash scripts/bench-faults.sh
set -euo pipefail
: "${WORK:?}" "${MIRROR:?}" "${TESTKIT:?}"
cd "$(dirname "$0")/.."
source scripts/lib/registry-process.sh
MB=${FAULT_MB:-256}
IMAGES=${FAULT_IMAGES:-16}
DIR="$WORK/faults"
rm -rf "$DIR"; mkdir -p "$DIR"
PROXY_PID=""
stop_proxy() {
  if [[ -n "$PROXY_PID" ]]; then
    kill "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=""
  fi
}
trap 'stop_proxy; stop_registries' EXIT

py() { python3 -c "$@"; }

start_registry "$DIR/registry" FAULT_SRC
"$TESTKIT" seed --registry "$FAULT_SRC" --total-mb "$MB" --images "$IMAGES" --namespace faults --seed 7 --work "$DIR/gen" --json > "$DIR/platform.json"
"$MIRROR" keygen -o "$DIR/bench" >/dev/null

# start_proxy FAULT-FLAGS...: a fault-proxy in front of the registry; its host:port in PROXY. Every row's proxy listens
# on the same port, so every lock names the same references.
PROXY_PORT=$(free_port)
start_proxy() {
  : > "$DIR/proxy.out"
  "$TESTKIT" fault-proxy --upstream "http://$FAULT_SRC" --port "$PROXY_PORT" --tokens "$@" > "$DIR/proxy.out" 2> "$DIR/proxy.err" &
  PROXY_PID=$!
  for _ in $(seq 1 100); do
    PROXY=$(sed -n 's|^listening http://||p' "$DIR/proxy.out")
    [[ -n "$PROXY" ]] && return 0
    sleep 0.1
  done
  echo "bench-faults: fault-proxy did not start:" >&2; cat "$DIR/proxy.err" >&2; exit 1
}

# run_row NAME FAULT-FLAGS...: resolve + export through a fresh proxy with a fresh cache; T_NAME seconds, M_NAME KiB.
run_row() {
  local name=$1; shift
  start_proxy "$@"
  {
    echo "apiVersion: mirror.openlm.io/v1"
    echo "kind: Platform"
    echo "name: fault-bench"
    echo "version: \"1.0.0\""
    echo "source: $PROXY/faults"
    echo "images:"
    py 'import json,sys; [print("  - ref: " + sys.argv[2] + "/" + i["reference"]) for i in json.load(open(sys.argv[1]))["images"]]' "$DIR/platform.json" "$PROXY"
  } > "$DIR/platform.yaml"
  rm -rf "$DIR/cache" "$DIR/bundle.tar" "$DIR/lock.json"
  sync
  local start end rss peak=0
  start=$(date +%s.%N)
  for step in resolve export; do
    local cmd=("$MIRROR" resolve --plain-http --manifest "$DIR/platform.yaml" -o "$DIR/lock.json" --cache "$DIR/cache")
    [[ $step == export ]] && cmd=("$MIRROR" export --plain-http --lock "$DIR/lock.json" --key "$DIR/bench.key" -o "$DIR/bundle.tar" --cache "$DIR/cache")
    /usr/bin/time -v -o "$DIR/time.txt" "${cmd[@]}" > "$DIR/last.out" 2> "$DIR/last.err" || {
      echo "bench-faults: $step failed in row '$name':" >&2; cat "$DIR/last.err" >&2; exit 1; }
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/time.txt")
    (( rss > peak )) && peak=$rss
  done
  end=$(date +%s.%N)
  stop_proxy
  printf -v "T_$name" '%s' "$(py "print(f'{$end - $start:.2f}')")"
  printf -v "M_$name" '%s' "$peak"
  printf -v "F_$name" '%s' "$(sed -n 's/^fault-proxy: //p' "$DIR/proxy.err")"
  # Every row must give the fault-free bundle's head (same digests, same images).
  "$MIRROR" verify "$DIR/bundle.tar" --key "$DIR/bench.pub" >/dev/null 2>&1 || { echo "bench-faults: bundle of row '$name' does not verify" >&2; exit 1; }
  py 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["images"], sort_keys=True))' "$DIR/lock.json" > "$DIR/images-$name.json"
  if [[ $name != clean* ]] && ! cmp -s "$DIR/images-clean.json" "$DIR/images-$name.json"; then
    echo "bench-faults: row '$name' locked other images than the fault-free run" >&2; exit 1
  fi
}

echo
echo "== faults: resolve + export of $MB MiB ($IMAGES images) through the fault proxy"
for n in 1 2 3; do run_row "clean_$n"; done
cp "$DIR/images-clean_1.json" "$DIR/images-clean.json"
for n in 2 3; do
  cmp -s "$DIR/images-clean.json" "$DIR/images-clean_$n.json" || { echo "bench-faults: fault-free run $n locked other images than run 1" >&2; exit 1; }
done
T_clean=$(py 'import statistics,sys; print(f"{statistics.median(map(float, sys.argv[1:])):.2f}")' "$T_clean_1" "$T_clean_2" "$T_clean_3")
M_clean=$(( M_clean_1 > M_clean_2 ? (M_clean_1 > M_clean_3 ? M_clean_1 : M_clean_3) : (M_clean_2 > M_clean_3 ? M_clean_2 : M_clean_3) ))
F_clean=$F_clean_1
run_row retry_after --fail-status 429 --fail-probability 0.5 --retry-after 1
run_row throttled --fail-status 429 --fail-probability 0.5
run_row unavailable --fail-status 503 --fail-probability 0.5
run_row token_expiry --expire-token-every 7
run_row resets --reset-probability 0.5
run_row latency --latency-ms 50

printf '%-40s %9s %10s %9s  %s\n' "fault row (resolve + export)" "time (s)" "vs clean" "RSS MiB" "injected"
frow() {
  local t="T_$2" m="M_$2" f="F_$2"
  printf '%-40s %9s %9sx %9s  %s\n' "$1" "${!t}" "$(py "print(f'{${!t} / $T_clean:.2f}')")" "$(( ${!m} / 1024 ))" "${!f}"
}
frow "fault-free (median of $T_clean_1, $T_clean_2, $T_clean_3)" clean
frow "429 p=0.5, Retry-After: 1" retry_after
frow "429 p=0.5, no Retry-After (AIMD)" throttled
frow "503 p=0.5" unavailable
frow "token expiry every 7th request" token_expiry
frow "body resets p=0.5" resets
frow "50 ms latency per request" latency
# Retry-After: 1 is honoured, so one request refused N times in a row waits N s: no client that honours it finishes the
# row sooner (the TestKit counts the longest such streak; requests that depend on each other add theirs up).
RA_STREAK=$(sed -n 's/.*longest refusal streak \([0-9]*\).*/\1/p' <<< "$F_retry_after")
if [[ -n $RA_STREAK ]]; then
  printf '%-40s %9s %9sx\n' "  floor of the Retry-After row" "$RA_STREAK.00" "$(py "print(f'{$RA_STREAK / $T_clean:.2f}')")"
fi
