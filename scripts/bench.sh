#!/usr/bin/env bash
# Benchmark: openlm-mirror against skopeo on the same synthetic platform, same run.
# Prints wall times, the ratio and peak RSS. Size with BENCH_MB (default 1024) and BENCH_IMAGES (16).
# BENCH_ONLY=export keeps only the export-side rows (skopeo to dir: as the reference, export, split, delta) while
# iterating on the export path; the default runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib/registry-process.sh

MB=${BENCH_MB:-1024}
IMAGES=${BENCH_IMAGES:-16}
WORK=${BENCH_WORK:-$ROOT/.work/bench}
ONLY=${BENCH_ONLY:-}
[[ -z $ONLY || $ONLY == export ]] || { echo "bench: BENCH_ONLY must be empty or 'export', not '$ONLY'" >&2; exit 2; }

for tool in docker-registry skopeo curl python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: missing $tool (run scripts/install-deps.sh)" >&2; exit 1; }
done

rm -rf "$WORK"; mkdir -p "$WORK/skopeo-dir"
trap 'stop_registries' EXIT

echo "== building (Release)"
# The executable users get (scripts/publish.sh: self-contained, single file, composite ReadyToRun), so start-up is not JIT-bound.
bash scripts/publish.sh --rid linux-x64 --out "$WORK/dist" >/dev/null
dotnet build -c Release -v q -nologo tests/OpenLm.Mirror.TestKit/OpenLm.Mirror.TestKit.csproj -o "$WORK/testkit" >/dev/null
MIRROR="$WORK/dist/openlm-mirror-linux-x64"

start_registry "$WORK/reg-src" SRC
start_registry "$WORK/reg-ours" OURS
start_registry "$WORK/reg-skopeo" THEIRS

echo "== seeding $SRC with a ${MB} MiB synthetic platform of $IMAGES images"
"$WORK/testkit/OpenLm.Mirror.TestKit" seed --registry "$SRC" --total-mb "$MB" --images "$IMAGES" --work "$WORK/gen" --json > "$WORK/platform.json"
mapfile -t REFS < <(python3 -c 'import json,sys; [print(i["reference"]) for i in json.load(open(sys.argv[1]))["images"]]' "$WORK/platform.json")
UNIQUE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uniqueBytes"])' "$WORK/platform.json")
echo "   ${#REFS[@]} images, $((UNIQUE / 1048576)) MiB of unique blobs"

# run_all NAME CMD...: runs CMD once per image ({} is replaced by the reference, {n} by its index),
# records wall seconds in T_NAME and the peak RSS (KiB) over all runs in M_NAME.
run_all() {
  local name=$1; shift
  local start end peak=0 i=0 ref rss
  sync  # earlier steps' dirty pages must not be written back on this step's clock
  start=$(date +%s.%N)
  for ref in "${REFS[@]}"; do
    local args=()
    for a in "$@"; do a=${a//\{\}/$ref}; args+=("${a//\{n\}/$i}"); done
    /usr/bin/time -v -o "$WORK/time.txt" "${args[@]}" > "$WORK/last.out" 2> "$WORK/last.err" || {
      echo "bench: $name failed on $ref:" >&2; cat "$WORK/last.err" >&2; exit 1; }
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
    (( rss > peak )) && peak=$rss
    i=$((i + 1))
  done
  end=$(date +%s.%N)
  printf -v "T_$name" '%s' "$(python3 -c "print(f'{$end - $start:.2f}')")"
  printf -v "M_$name" '%s' "$peak"
}

# run_once NAME CMD...: one process for all images.
run_once() {
  local name=$1; shift
  local start end
  sync  # earlier steps' dirty pages must not be written back on this step's clock
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$WORK/time.txt" "$@" > "$WORK/last.out" 2> "$WORK/last.err" || {
    echo "bench: $name failed:" >&2; cat "$WORK/last.err" >&2; exit 1; }
  end=$(date +%s.%N)
  printf -v "T_$name" '%s' "$(python3 -c "print(f'{$end - $start:.2f}')")"
  printf -v "M_$name" '%s' "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")"
}

printf '%s\n' "${REFS[@]/#/$SRC/}" > "$WORK/images.txt"
echo "== registry -> layout"
run_all skopeo_dir skopeo copy -q --all --preserve-digests --src-tls-verify=false "docker://$SRC/{}" "dir:$WORK/skopeo-dir/{n}"
if [[ -z $ONLY ]]; then
run_all ours_layout_each "$MIRROR" copy --plain-http "$SRC/{}" "oci:$WORK/ours-layout-each"
run_once ours_layout "$MIRROR" copy --plain-http --images-from "$WORK/images.txt" "oci:$WORK/ours-layout"
echo "== registry -> registry"
run_all skopeo_registry skopeo copy -q --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false "docker://$SRC/{}" "docker://$THEIRS/{}"
run_all ours_registry_each "$MIRROR" copy --plain-http "$SRC/{}" "$OURS/each/{}"
run_once ours_registry "$MIRROR" copy --plain-http --images-from "$WORK/images.txt" "$OURS/all"

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo
echo "== results (${MB} MiB, ${#REFS[@]} images; skopeo: one process per image, --all --preserve-digests)"
printf '%-44s %9s %9s %12s %9s\n' "case" "time (s)" "skopeo" "speed-up" "RSS MiB"
row() { printf '%-44s %9s %9s %12s %9s\n' "$1" "$2" "$3" "$(ratio "$3" "$2")x" "$(( $4 / 1024 ))"; }
row "registry->layout, one run (copy --images-from)" "$T_ours_layout" "$T_skopeo_dir" "$M_ours_layout"
row "registry->layout, one process per image" "$T_ours_layout_each" "$T_skopeo_dir" "$M_ours_layout_each"
row "registry->registry, one run" "$T_ours_registry" "$T_skopeo_registry" "$M_ours_registry"
row "registry->registry, one process per image" "$T_ours_registry_each" "$T_skopeo_registry" "$M_ours_registry_each"
echo "skopeo peak RSS (MiB): dir $((M_skopeo_dir / 1024)), registry $((M_skopeo_registry / 1024))"
echo "on disk: ours layout $(du -sm "$WORK/ours-layout" | cut -f1) MiB (every blob once), skopeo dir: $(du -sm "$WORK/skopeo-dir" | cut -f1) MiB"
fi
if [[ -x scripts/bench-bundle.sh ]]; then
  BENCH_ONLY="$ONLY" SRC="$SRC" WORK="$WORK" MIRROR="$MIRROR" PLATFORM_JSON="$WORK/platform.json" T_skopeo_dir="$T_skopeo_dir" bash scripts/bench-bundle.sh
fi
if [[ -x scripts/bench-upgrade.sh && -f "$WORK/lock.json" && -d "$WORK/export-cache" ]]; then
  BENCH_ONLY="$ONLY" SRC="$SRC" WORK="$WORK" MIRROR="$MIRROR" MB="$MB" bash scripts/bench-upgrade.sh
fi
if [[ -z $ONLY && -x scripts/bench-serve.sh && -f "$WORK/bundle.tar" ]]; then
  echo
  echo "== serve: the export's bundle to ${BENCH_CLIENTS:-8} parallel clients"
  BENCH_WORK="$WORK/serve" BUNDLE="$WORK/bundle.tar" BUNDLE_KEY="$WORK/bench.pub" MIRROR="$MIRROR" bash scripts/bench-serve.sh
fi
if [[ -z $ONLY && -x scripts/bench-latency.sh && -f "$WORK/bundle.tar" ]]; then WORK="$WORK" MIRROR="$MIRROR" PLATFORM_JSON="$WORK/platform.json" TESTKIT="$WORK/testkit/OpenLm.Mirror.TestKit" bash scripts/bench-latency.sh; fi
if [[ -z $ONLY && -x scripts/bench-faults.sh ]]; then WORK="$WORK" MIRROR="$MIRROR" TESTKIT="$WORK/testkit/OpenLm.Mirror.TestKit" bash scripts/bench-faults.sh; fi
