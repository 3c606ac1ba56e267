#!/usr/bin/env bash
# Benchmark of `serve`: a ~1 GiB synthetic bundle served to N parallel clients (default 8), each copying every image
# into its own OCI layout. Prints wall time, throughput (bytes served / wall time) and serve's peak RSS (VmHWM).
#
#   bash scripts/bench-serve.sh                      # standalone: builds, seeds a registry, exports the bundle
#   BUNDLE=b.tar BUNDLE_KEY=b.pub MIRROR=cli bash scripts/bench-serve.sh   # serve an existing bundle (bench.sh)
#
# Knobs: BENCH_MB (1024), BENCH_IMAGES (16), BENCH_CLIENTS (8), BENCH_CLIENT=ours|skopeo (ours: `openlm-mirror copy
# --images-from` into oci:DIR; skopeo: `skopeo copy --all` per image into dir:), BENCH_WORK (.work/bench-serve).
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib/registry-process.sh

MB=${BENCH_MB:-1024}
IMAGES=${BENCH_IMAGES:-16}
CLIENTS=${BENCH_CLIENTS:-8}
CLIENT=${BENCH_CLIENT:-ours}
WORK=${BENCH_WORK:-$ROOT/.work/bench-serve}
case "$CLIENT" in ours | skopeo) ;; *) echo "bench-serve: BENCH_CLIENT must be ours or skopeo" >&2; exit 2 ;; esac

for tool in docker-registry skopeo curl python3; do
  command -v "$tool" >/dev/null || { echo "bench-serve: missing $tool (run scripts/install-deps.sh)" >&2; exit 1; }
done

py() { python3 -c "$@"; }
secs() { py "print(f'{$2 - $1:.2f}')"; }

rm -rf "$WORK"; mkdir -p "$WORK"
SERVE_PID=""
cleanup() {
  if [[ -n "$SERVE_PID" ]] && kill -0 "$SERVE_PID" 2>/dev/null; then kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
  stop_registries
}
trap cleanup EXIT

if [[ -z "${MIRROR:-}" ]]; then
  echo "== building (Release)"
  dotnet publish -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -v q -nologo \
    src/OpenLm.Mirror.Cli/OpenLm.Mirror.Cli.csproj -o "$WORK/cli" >/dev/null
  MIRROR="$WORK/cli/openlm-mirror"
fi

if [[ -z "${BUNDLE:-}" ]]; then
  dotnet build -c Release -v q -nologo tests/OpenLm.Mirror.TestKit/OpenLm.Mirror.TestKit.csproj -o "$WORK/testkit" >/dev/null
  start_registry "$WORK/reg-src" SRC
  echo "== seeding $SRC with a ${MB} MiB synthetic platform of $IMAGES images, exporting it to a bundle"
  "$WORK/testkit/OpenLm.Mirror.TestKit" seed --registry "$SRC" --total-mb "$MB" --images "$IMAGES" --work "$WORK/gen" --json > "$WORK/platform.json"
  {
    echo "apiVersion: mirror.openlm.io/v1"
    echo "kind: Platform"
    echo "name: bench-platform"
    echo "version: \"1.0.0\""
    echo "source: $SRC/r3q3q2f4"
    echo "images:"
    py 'import json,sys; [print("  - ref: " + sys.argv[2] + "/" + i["reference"]) for i in json.load(open(sys.argv[1]))["images"]]' "$WORK/platform.json" "$SRC"
  } > "$WORK/platform.yaml"
  "$MIRROR" keygen -o "$WORK/bench" >/dev/null
  "$MIRROR" resolve --plain-http --manifest "$WORK/platform.yaml" -o "$WORK/lock.json" --no-cache 2>/dev/null
  "$MIRROR" export --plain-http --lock "$WORK/lock.json" --key "$WORK/bench.key" -o "$WORK/bundle.tar" --cache "$WORK/export-cache" >/dev/null 2>&1
  rm -rf "$WORK/export-cache" "$WORK/gen" "$WORK/reg-src/data"
  stop_registries
  BUNDLE="$WORK/bundle.tar"
  BUNDLE_KEY="$WORK/bench.pub"
fi
: "${BUNDLE_KEY:?BUNDLE needs BUNDLE_KEY (the release public key)}"
BUNDLE_BYTES=$(stat -c %s "$BUNDLE")

echo "== serve $(basename "$BUNDLE") ($((BUNDLE_BYTES / 1048576)) MiB): verify, then listen"
sync
start=$(date +%s.%N)
"$MIRROR" serve "$BUNDLE" --key "$BUNDLE_KEY" --addr 127.0.0.1:0 --json > "$WORK/serve.json" 2> "$WORK/serve.log" &
SERVE_PID=$!
until [[ -s "$WORK/serve.json" ]]; do
  kill -0 "$SERVE_PID" 2>/dev/null || { echo "bench-serve: serve exited:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.05
done
ready=$(date +%s.%N)
T_ready=$(secs "$start" "$ready")
HOST=$(py 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["host"])' "$WORK/serve.json")
py 'import json,sys; [print(sys.argv[2] + "/" + i["names"][0]) for i in json.loads(open(sys.argv[1]).readline())["images"]]' "$WORK/serve.json" "$HOST" > "$WORK/images.txt"
COUNT=$(wc -l < "$WORK/images.txt")

echo "== $CLIENTS parallel $CLIENT clients, each copying all $COUNT images from $HOST into its own layout"
client() { # client N: one client's copy of every image
  local n=$1
  if [[ "$CLIENT" == ours ]]; then
    "$MIRROR" copy --plain-http --images-from "$WORK/images.txt" "oci:$WORK/client-$n" > "$WORK/client-$n.log" 2>&1
  else
    local i=0 ref
    while read -r ref; do
      skopeo copy -q --all --preserve-digests --src-tls-verify=false "docker://$ref" "dir:$WORK/client-$n/$i" > "$WORK/client-$n.log" 2>&1 || return 1
      i=$((i + 1))
    done < "$WORK/images.txt"
  fi
}
sync
start=$(date +%s.%N)
pids=()
for n in $(seq 1 "$CLIENTS"); do client "$n" & pids+=($!); done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
end=$(date +%s.%N)
((failed == 0)) || { echo "bench-serve: $failed client(s) failed:" >&2; tail -n 5 "$WORK"/client-*.log >&2; exit 1; }
T_clients=$(secs "$start" "$end")

PEAK_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVE_PID/status")
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || { echo "bench-serve: serve did not exit 0 on SIGTERM" >&2; exit 1; }
SERVE_PID=""
SERVED=$(awk '$1 ~ /^[0-9.:]+$/ && $2 == "GET" && ($4 == 200 || $4 == 206) {s += $5} END {printf "%.0f\n", s}' "$WORK/serve.log")
REQUESTS=$(awk '$1 ~ /^[0-9.:]+$/ && NF == 6 {n++} END {print n + 0}' "$WORK/serve.log")

echo "== serve results"
printf '%-44s %s s\n' "verify + listen (one pass over the bundle)" "$T_ready"
printf '%-44s %s s\n' "$CLIENTS x $CLIENT copy of $COUNT images" "$T_clients"
printf '%-44s %s MiB in %s requests\n' "served" "$((SERVED / 1048576))" "$REQUESTS"
printf '%-44s %s MiB/s\n' "throughput" "$(py "print(f'{$SERVED / 1048576 / $T_clients:.1f}')")"
printf '%-44s %s MiB\n' "serve peak RSS (VmHWM)" "$((PEAK_KB / 1024))"
