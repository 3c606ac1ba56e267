#!/usr/bin/env bash
# Part of scripts/bench.sh (needs its registries and seeded platform): export and import against skopeo.
# Inputs from bench.sh: SRC (seeded registry), WORK, MIRROR, PLATFORM_JSON, T_skopeo_dir (skopeo to dir:, s).
set -euo pipefail
: "${SRC:?}" "${WORK:?}" "${MIRROR:?}" "${PLATFORM_JSON:?}" "${T_skopeo_dir:?}"
source "$(dirname "$0")/lib/registry-process.sh"
trap stop_registries EXIT

py() { python3 -c "$@"; }
secs() { py "print(f'{$2 - $1:.2f}')"; }

# A platform manifest naming every seeded image.
{
  echo "apiVersion: mirror.openlm.io/v1"
  echo "kind: Platform"
  echo "name: bench-platform"
  echo "version: \"1.0.0\""
  echo "source: $SRC/r3q3q2f4"
  echo "images:"
  py 'import json,sys; [print("  - ref: " + sys.argv[2] + "/" + i["reference"]) for i in json.load(open(sys.argv[1]))["images"]]' "$PLATFORM_JSON" "$SRC"
} > "$WORK/platform.yaml"
"$MIRROR" keygen -o "$WORK/bench" >/dev/null
"$MIRROR" resolve --plain-http --manifest "$WORK/platform.yaml" -o "$WORK/lock.json" --no-cache 2>/dev/null
UNIQUE=$(py 'import json,sys; print(sum(b["size"] for b in json.load(open(sys.argv[1]))["blobs"]))' "$WORK/lock.json")

timed() { # timed NAME CMD...: wall seconds in T_NAME, peak RSS KiB in M_NAME
  local name=$1; shift
  local start end
  sync  # earlier steps' dirty pages must not be written back on this step's clock
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$WORK/time.txt" "$@" > "$WORK/last.out" 2> "$WORK/last.err" || { echo "bench: $name failed" >&2; cat "$WORK/last.err" >&2; exit 1; }
  end=$(date +%s.%N)
  printf -v "T_$name" '%s' "$(secs "$start" "$end")"
  printf -v "M_$name" '%s' "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")"
}

echo "== export (fresh cache)"
timed export "$MIRROR" export --plain-http --lock "$WORK/lock.json" --key "$WORK/bench.key" -o "$WORK/bundle.tar" --cache "$WORK/export-cache"
BUNDLE_BYTES=$(stat -c %s "$WORK/bundle.tar")

# --- export floor (export speed work): what the machine can do at best for the same bytes, measured in this run.
# Every blob of the lock GET from the source registry in parallel (4 at a time) to /dev/null; sha256 of the exported
# bundle from the page cache; a write of the same number of bytes to this disk with fsync.
echo "== export floor: parallel GET to /dev/null, sha256, disk write"
sync; start=$(date +%s.%N)
# The blob URLs per repository come from the manifests (Distribution serves a blob only through a repository
# that links it); fetching those small documents is part of this floor, as it is part of an export.
py 'import json,sys,urllib.request
src=sys.argv[2]; seen=set()
def get(repo, ref):
    req=urllib.request.Request(f"http://{src}/v2/{repo}/manifests/{ref}", headers={"Accept": ",".join([
        "application/vnd.oci.image.index.v1+json","application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json","application/vnd.docker.distribution.manifest.v2+json"])})
    return json.load(urllib.request.urlopen(req))
def walk(repo, ref):
    m=get(repo, ref)
    for c in m.get("manifests", []): walk(repo, c["digest"])
    for b in ([m["config"]] if "config" in m else []) + m.get("layers", []):
        d=b["digest"]
        if d not in seen:
            seen.add(d); print(f"http://{src}/v2/{repo}/blobs/{d}")
for i in json.load(open(sys.argv[1]))["images"]:
    ref=i["reference"].split("/",1)[1]
    repo=ref.split("@")[0].rsplit(":",1)[0]
    walk(repo, i["sourceDigest"])' "$WORK/lock.json" "$SRC" > "$WORK/blob-urls.txt"
xargs -P 4 -I{} curl -fsS -o /dev/null {} < "$WORK/blob-urls.txt"
T_floor_get=$(secs "$start" "$(date +%s.%N)")
start=$(date +%s.%N); openssl dgst -sha256 "$WORK/bundle.tar" >/dev/null; T_floor_sha=$(secs "$start" "$(date +%s.%N)")
sync; start=$(date +%s.%N); dd if=/dev/zero of="$WORK/floor-write.bin" bs=1M count=$((BUNDLE_BYTES / 1048576)) conv=fsync status=none
T_floor_write=$(secs "$start" "$(date +%s.%N)"); rm -f "$WORK/floor-write.bin"
# --- end export floor

if [[ -z ${BENCH_ONLY:-} ]]; then
echo "== export killed at ~50% of the blobs, then resumed"
"$MIRROR" export --plain-http --lock "$WORK/lock.json" --key "$WORK/bench.key" -o "$WORK/bundle2.tar" --cache "$WORK/resume-cache" --concurrency 2 >/dev/null 2>&1 &
PID=$!
HALF=$(py 'import json,sys; print(len(json.load(open(sys.argv[1]))["blobs"]) // 2)' "$WORK/lock.json")
while kill -0 $PID 2>/dev/null; do
  n=$( (find "$WORK/resume-cache/blobs/sha256" -type f 2>/dev/null || true) | wc -l)
  (( n >= HALF )) && break
  sleep 0.05
done
kill -9 $PID 2>/dev/null || true; wait $PID 2>/dev/null || true
AT_KILL=$(find "$WORK/resume-cache/blobs/sha256" -type f | wc -l)
timed resume "$MIRROR" export --plain-http --lock "$WORK/lock.json" --key "$WORK/bench.key" -o "$WORK/bundle2.tar" --cache "$WORK/resume-cache" --json
REUSED=$(py 'import json,sys; print(json.load(open(sys.argv[1]))["blobsReused"])' "$WORK/last.out")

echo "== import into an empty registry, then again"
start_registry "$WORK/reg-import" IMPORT
start_registry "$WORK/reg-skopeo-import" SKOPEO_IMPORT
timed import "$MIRROR" import "$WORK/bundle.tar" --key "$WORK/bench.pub" --to "$IMPORT/openlm" --plain-http
timed reimport "$MIRROR" import "$WORK/bundle.tar" --key "$WORK/bench.pub" --to "$IMPORT/openlm" --plain-http

# skopeo: the same images from the per-image dir: copies bench.sh made, one process per image.
sync; start=$(date +%s.%N); peak=0; i=0
mapfile -t REFS < <(py 'import json,sys; [print(i["reference"]) for i in json.load(open(sys.argv[1]))["images"]]' "$PLATFORM_JSON")
for ref in "${REFS[@]}"; do
  /usr/bin/time -v -o "$WORK/time.txt" skopeo copy -q --all --preserve-digests --dest-tls-verify=false "dir:$WORK/skopeo-dir/$i" "docker://$SKOPEO_IMPORT/openlm/${ref#r3q3q2f4/}" 2> "$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt"); (( rss > peak )) && peak=$rss
  i=$((i + 1))
done
T_skopeo_import=$(secs "$start" "$(date +%s.%N)"); M_skopeo_import=$peak
fi

ratio() { py "print(f'{$1 / $2:.2f}')"; }
echo
echo "== bundle results"
printf '%-52s %9s %9s %10s %9s\n' "case" "ours (s)" "skopeo" "ours/sk" "RSS MiB"
printf '%-52s %9s %9s %10s %9s\n' "export (pull + signed bundle) vs skopeo to dir:" "$T_export" "$T_skopeo_dir" "$(ratio "$T_export" "$T_skopeo_dir")" "$((M_export / 1024))"
printf '%-52s %9s %9s %10s %9s\n' "export floor: GET every blob (4 parallel) to /dev/null" "$T_floor_get" "-" "$(ratio "$T_floor_get" "$T_skopeo_dir")" "-"
printf '%-52s %9s %9s %10s %9s\n' "export floor: sha256 of the bundle (openssl, cached)" "$T_floor_sha" "-" "$(ratio "$T_floor_sha" "$T_skopeo_dir")" "-"
printf '%-52s %9s %9s %10s %9s\n' "export floor: write the bundle's bytes + fsync (dd)" "$T_floor_write" "-" "$(ratio "$T_floor_write" "$T_skopeo_dir")" "-"
if [[ -z ${BENCH_ONLY:-} ]]; then
printf '%-52s %9s %9s %10s %9s\n' "import vs skopeo dir: -> registry" "$T_import" "$T_skopeo_import" "$(ratio "$T_import" "$T_skopeo_import")" "$((M_import / 1024))"
printf '%-52s %9s %9s %10s %9s\n' "re-import (nothing to upload)" "$T_reimport" "-" "$(ratio "$T_reimport" "$T_import") of import" "$((M_reimport / 1024))"
printf '%-52s %9s %9s %10s %9s\n' "resumed export ($AT_KILL blobs cached at kill, $REUSED reused)" "$T_resume" "-" "$(ratio "$T_resume" "$T_export") of export" "$((M_resume / 1024))"
fi
echo "bundle: $BUNDLE_BYTES bytes; unique blobs: $UNIQUE bytes; overhead $(py "print(f'{($BUNDLE_BYTES / $UNIQUE - 1) * 100:.3f}')") %${M_skopeo_import:+; skopeo peak RSS import $((M_skopeo_import / 1024)) MiB}"
