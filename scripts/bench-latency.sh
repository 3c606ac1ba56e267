#!/usr/bin/env bash
# Import over latency: the signed bundle into an empty registry behind a delaying proxy (TestKit delay-proxy:
# RTT/2 each way, one RTT per new connection), then re-imported; skopeo pushes the same images through the same
# proxy, in the same run. A customer's registry is rarely on loopback.
#
# From scripts/bench.sh: WORK, MIRROR, PLATFORM_JSON, TESTKIT set; WORK holds bundle.tar, bench.pub, skopeo-dir/N.
# Standalone: `bash scripts/bench-latency.sh` seeds, exports and copies a BENCH_MB (default 1024) platform first.
# BENCH_RTTS lists the round trips in ms (default "0 20 50"; 0 = straight to the registry, no proxy).
# Targets (issue 9): import at 20 ms <= 1.5x its loopback time and <= 0.2x skopeo's; re-import <= 5 % of import.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib/registry-process.sh

RTTS=${BENCH_RTTS:-0 20 50}
PROXY_PIDS=()
cleanup() {
  local pid
  for pid in "${PROXY_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  stop_registries
}
trap cleanup EXIT
py() { python3 -c "$@"; }
secs() { py "print(f'{$2 - $1:.2f}')"; }

if [[ -z "${WORK:-}" || ! -f "${WORK}/bundle.tar" ]]; then
  MB=${BENCH_MB:-1024}; IMAGES=${BENCH_IMAGES:-16}
  WORK=${BENCH_WORK:-$ROOT/.work/bench-latency}
  rm -rf "$WORK"; mkdir -p "$WORK/skopeo-dir"
  echo "== building (Release)"
  dotnet publish -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -v q -nologo \
    src/OpenLm.Mirror.Cli/OpenLm.Mirror.Cli.csproj -o "$WORK/cli" >/dev/null
  dotnet build -c Release -v q -nologo tests/OpenLm.Mirror.TestKit/OpenLm.Mirror.TestKit.csproj -o "$WORK/testkit" >/dev/null
  MIRROR="$WORK/cli/openlm-mirror"; TESTKIT="$WORK/testkit/OpenLm.Mirror.TestKit"; PLATFORM_JSON="$WORK/platform.json"
  start_registry "$WORK/reg-src" SRC
  echo "== seeding a ${MB} MiB platform of $IMAGES images, exporting it, copying it to dir: for skopeo"
  "$TESTKIT" seed --registry "$SRC" --total-mb "$MB" --images "$IMAGES" --work "$WORK/gen" --json > "$PLATFORM_JSON"
  {
    echo "apiVersion: mirror.openlm.io/v1"; echo "kind: Platform"; echo "name: bench-platform"; echo "version: \"1.0.0\""
    echo "source: $SRC/r3q3q2f4"; echo "images:"
    py 'import json,sys; [print("  - ref: " + sys.argv[2] + "/" + i["reference"]) for i in json.load(open(sys.argv[1]))["images"]]' "$PLATFORM_JSON" "$SRC"
  } > "$WORK/platform.yaml"
  "$MIRROR" keygen -o "$WORK/bench" >/dev/null
  "$MIRROR" resolve --plain-http --manifest "$WORK/platform.yaml" -o "$WORK/lock.json" --no-cache 2>/dev/null
  "$MIRROR" export --plain-http --lock "$WORK/lock.json" --key "$WORK/bench.key" -o "$WORK/bundle.tar" --cache "$WORK/export-cache" >/dev/null 2>&1
  i=0
  while read -r ref; do
    skopeo copy -q --all --preserve-digests --src-tls-verify=false "docker://$SRC/$ref" "dir:$WORK/skopeo-dir/$i"; i=$((i + 1))
  done < <(py 'import json,sys; [print(i["reference"]) for i in json.load(open(sys.argv[1]))["images"]]' "$PLATFORM_JSON")
  stop_registries
  rm -rf "$WORK/reg-src" "$WORK/gen" "$WORK/export-cache"
fi
: "${MIRROR:?}" "${PLATFORM_JSON:?}"
TESTKIT=${TESTKIT:-$WORK/testkit/OpenLm.Mirror.TestKit}
[[ -x "$TESTKIT" ]] || { echo "bench-latency: $TESTKIT missing (bench.sh builds it)" >&2; exit 1; }
mapfile -t REFS < <(py 'import json,sys; [print(i["reference"]) for i in json.load(open(sys.argv[1]))["images"]]' "$PLATFORM_JSON")

# through RTT_MS REGISTRY VAR: VAR = an address reaching REGISTRY RTT_MS away (the registry itself for 0).
through() {
  local rtt=$1 registry=$2 var=$3 out line
  if [[ $rtt == 0 ]]; then printf -v "$var" '%s' "$registry"; return; fi
  out="$WORK/proxy-$RANDOM.out"
  "$TESTKIT" delay-proxy --listen 127.0.0.1:0 --to "$registry" --rtt "${rtt}ms" > "$out" 2>&1 &
  PROXY_PIDS+=($!)
  for _ in $(seq 1 100); do
    line=$(head -n1 "$out" 2>/dev/null || true)
    if [[ $line == listening* ]]; then read -r _ addr _ <<< "$line"; printf -v "$var" '%s' "$addr"; return; fi
    sleep 0.1
  done
  echo "bench-latency: delay proxy did not start:" >&2; cat "$out" >&2; return 1
}

timed() { # timed NAME CMD...: wall seconds in T_NAME, peak RSS KiB in M_NAME
  local name=$1; shift
  local start
  sync
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$WORK/time.txt" "$@" > "$WORK/last.out" 2> "$WORK/last.err" || { echo "bench-latency: $name failed" >&2; cat "$WORK/last.err" >&2; exit 1; }
  printf -v "T_$name" '%s' "$(secs "$start" "$(date +%s.%N)")"
  printf -v "M_$name" '%s' "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")"
}

skopeo_push() { # skopeo_push REGISTRY: every image from its dir: copy, one process per image (as bench-bundle.sh)
  local i=0 ref
  for ref in "${REFS[@]}"; do
    skopeo copy -q --all --preserve-digests --dest-tls-verify=false "dir:$WORK/skopeo-dir/$i" "docker://$1/openlm/${ref#*/}"
    i=$((i + 1))
  done
}

for rtt in $RTTS; do
  echo "== import at ${rtt} ms round trip"
  start_registry "$WORK/lat-ours-$rtt" REG_OURS
  start_registry "$WORK/lat-skopeo-$rtt" REG_SKOPEO
  through "$rtt" "$REG_OURS" TO_OURS
  through "$rtt" "$REG_SKOPEO" TO_SKOPEO
  timed "import_$rtt" "$MIRROR" import "$WORK/bundle.tar" --key "$WORK/bench.pub" --to "$TO_OURS/openlm" --plain-http ${BENCH_IMPORT_ARGS:-}
  timed "reimport_$rtt" "$MIRROR" import "$WORK/bundle.tar" --key "$WORK/bench.pub" --to "$TO_OURS/openlm" --plain-http ${BENCH_IMPORT_ARGS:-}
  if [[ ${BENCH_SKIP_SKOPEO:-0} == 1 ]]; then printf -v "T_skopeo_$rtt" '%s' "-"; else
    sync; start=$(date +%s.%N); skopeo_push "$TO_SKOPEO"; printf -v "T_skopeo_$rtt" '%s' "$(secs "$start" "$(date +%s.%N)")"
  fi
  for pid in "${PROXY_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  PROXY_PIDS=()
  stop_registries
  rm -rf "$WORK/lat-ours-$rtt" "$WORK/lat-skopeo-$rtt"
done

ratio() { [[ $1 == - || $2 == - ]] && { echo "-"; return; }; py "print(f'{$1 / $2:.2f}')"; }
first=${RTTS%% *}
echo
echo "== import over latency (${#REFS[@]} images, $(( $(stat -c %s "$WORK/bundle.tar") / 1048576 )) MiB bundle; skopeo: dir: -> registry, one process per image)"
printf '%-8s %10s %10s %10s %14s %12s %12s %8s\n' "rtt" "import(s)" "skopeo(s)" "ours/sk" "vs ${first}ms" "re-import(s)" "re/import" "RSS MiB"
for rtt in $RTTS; do
  t=T_import_$rtt; s=T_skopeo_$rtt; r=T_reimport_$rtt; l=T_import_$first; m=M_import_$rtt; mr=M_reimport_$rtt
  printf '%-8s %10s %10s %10s %14s %12s %11s%% %8s\n' "${rtt}ms" "${!t}" "${!s}" "$(ratio "${!t}" "${!s}")" "$(ratio "${!t}" "${!l}")x" "${!r}" \
    "$(py "print(f'{${!r} / ${!t} * 100:.1f}')")" "$(( (${!m} > ${!mr} ? ${!m} : ${!mr}) / 1024 ))"
done
echo "targets: at 20 ms import <= 1.5x loopback and <= 0.2x skopeo; re-import <= 5 % of import at every latency"
