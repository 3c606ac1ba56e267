#!/usr/bin/env bash
# Part of scripts/bench.sh (after bench-bundle.sh: needs its lock.json, platform.yaml and export cache): an upgrade where
# 4 of the 16 images change. Measures the delta bundle against the changed images' new bytes, delta vs full export and
# import, and what --split-size adds to an export.
# Inputs from bench.sh: SRC, WORK, MIRROR, MB.
set -euo pipefail
: "${SRC:?}" "${WORK:?}" "${MIRROR:?}" "${MB:?}"
source "$(dirname "$0")/lib/registry-process.sh"
trap stop_registries EXIT
py() { python3 -c "$@"; }
secs() { py "print(f'{$2 - $1:.2f}')"; }
timed() { # timed NAME CMD...: wall seconds in T_NAME, peak RSS KiB in M_NAME
  local name=$1; shift
  local start end
  sync
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$WORK/time.txt" "$@" > "$WORK/last.out" 2> "$WORK/last.err" || { echo "bench: $name failed" >&2; cat "$WORK/last.err" >&2; exit 1; }
  end=$(date +%s.%N)
  printf -v "T_$name" '%s' "$(secs "$start" "$end")"
  printf -v "M_$name" '%s' "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")"
}

echo "== upgrade: 4 of 16 images replaced by new content"
"$WORK/testkit/OpenLm.Mirror.TestKit" seed --registry "$SRC" --total-mb $(( MB / 4 )) --images 4 --seed 77 --namespace next --work "$WORK/gen-next" --json > "$WORK/next.json"
NEW_BYTES=$(py 'import json,sys; print(json.load(open(sys.argv[1]))["uniqueBytes"])' "$WORK/next.json")
# N+1: the first 4 images of N replaced by the 4 new ones, the other 12 unchanged.
{
  sed -n '1,/^images:/p' "$WORK/platform.yaml" | sed 's/^version: .*/version: "1.1.0"/'
  grep '^  - ref: ' "$WORK/platform.yaml" | tail -n +5
  py 'import json,sys; [print("  - ref: " + sys.argv[2] + "/" + i["reference"]) for i in json.load(open(sys.argv[1]))["images"]]' "$WORK/next.json" "$SRC"
} > "$WORK/platform-next.yaml"
"$MIRROR" resolve --plain-http --manifest "$WORK/platform-next.yaml" -o "$WORK/lock-next.json" --no-cache 2>/dev/null

# Every export starts from a copy of release N's cache (what release engineering has), so each pulls the same 4 images.
fresh_cache() { rm -rf "$WORK/up-cache"; cp -r "$WORK/export-cache" "$WORK/up-cache"; }
fresh_cache; timed full "$MIRROR" export --plain-http --lock "$WORK/lock-next.json" --key "$WORK/bench.key" -o "$WORK/next-full.tar" --cache "$WORK/up-cache" --force
fresh_cache; timed delta "$MIRROR" export --plain-http --lock "$WORK/lock-next.json" --key "$WORK/bench.key" -o "$WORK/next-delta.tar" --cache "$WORK/up-cache" --base "$WORK/lock.json" --force
fresh_cache; timed split "$MIRROR" export --plain-http --lock "$WORK/lock-next.json" --key "$WORK/bench.key" -o "$WORK/next-split.tar" --cache "$WORK/up-cache" --split-size 64M --force
DELTA_BYTES=$(stat -c %s "$WORK/next-delta.tar")
FULL_BYTES=$(stat -c %s "$WORK/next-full.tar")

if [[ -z ${BENCH_ONLY:-} ]]; then
start_registry "$WORK/reg-up-full" UP_FULL
start_registry "$WORK/reg-up-delta" UP_DELTA
"$MIRROR" import "$WORK/bundle.tar" --key "$WORK/bench.pub" --to "$UP_DELTA/openlm" --plain-http >/dev/null 2>"$WORK/last.err" || { echo "bench: import of N failed" >&2; cat "$WORK/last.err" >&2; exit 1; }
"$MIRROR" import "$WORK/bundle.tar" --key "$WORK/bench.pub" --to "$UP_FULL/openlm" --plain-http >/dev/null 2>"$WORK/last.err" || { echo "bench: import of N failed" >&2; cat "$WORK/last.err" >&2; exit 1; }
timed import_full "$MIRROR" import "$WORK/next-full.tar" --key "$WORK/bench.pub" --to "$UP_FULL/openlm" --plain-http
timed import_delta "$MIRROR" import "$WORK/next-delta.tar" --key "$WORK/bench.pub" --to "$UP_DELTA/openlm" --plain-http
start_registry "$WORK/reg-up-empty" UP_EMPTY
timed import_fresh "$MIRROR" import "$WORK/next-full.tar" --key "$WORK/bench.pub" --to "$UP_EMPTY/openlm" --plain-http
fi

echo
echo "== upgrade results (${MB} MiB platform, 4 of 16 images new: $((NEW_BYTES / 1048576)) MiB of new unique bytes)"
printf '%-52s %12s %10s\n' "case" "value" "RSS MiB"
printf '%-52s %12s %10s\n' "delta bundle / new unique bytes" "$(py "print(f'{$DELTA_BYTES / $NEW_BYTES:.4f}')")" "-"
printf '%-52s %12s %10s\n' "delta bundle / full bundle" "$(py "print(f'{$DELTA_BYTES / $FULL_BYTES:.3f}')")" "-"
printf '%-52s %12s %10s\n' "full export of N+1, warm cache (s)" "$T_full" "$((M_full / 1024))"
printf '%-52s %12s %10s\n' "delta export of N+1 over N's lock (s)" "$T_delta" "$((M_delta / 1024))"
printf '%-52s %12s %10s\n' "full export in 64 MiB parts (s), overhead" "$T_split $(py "print(f'{($T_split / $T_full - 1) * 100:+.1f}%')")" "$((M_split / 1024))"
printf '%-52s %12s %10s\n' "delta export / full export" "$(py "print(f'{$T_delta / $T_full:.2f}')")" "-"
if [[ -z ${BENCH_ONLY:-} ]]; then
printf '%-52s %12s %10s\n' "import of the full N+1 into an empty registry (s)" "$T_import_fresh" "$((M_import_fresh / 1024))"
printf '%-52s %12s %10s\n' "import of the full N+1 over N (s)" "$T_import_full" "$((M_import_full / 1024))"
printf '%-52s %12s %10s\n' "base check + import of the delta over N (s)" "$T_import_delta" "$((M_import_delta / 1024))"
fi
