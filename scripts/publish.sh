#!/usr/bin/env bash
# Builds self-contained single-file openlm-mirror executables into dist/ (no .NET needed where they run):
#
#   dist/openlm-mirror-linux-x64
#   dist/openlm-mirror-linux-arm64
#   dist/openlm-mirror-win-x64.exe
#
#   bash scripts/publish.sh                    # all three
#   bash scripts/publish.sh --rid linux-x64    # one (repeatable: --rid linux-x64 --rid win-x64)
#   bash scripts/publish.sh --no-r2r           # without ReadyToRun (smaller, slower start)
#   bash scripts/publish.sh --no-composite     # ReadyToRun per assembly instead of one composite image (faster build)
#   bash scripts/publish.sh --out DIR          # another output directory (default dist/)
#
# Each is `dotnet publish src/OpenLm.Mirror.Cli -c Release -r RID --self-contained -p:PublishSingleFile=true
# -p:IncludeNativeLibrariesForSelfExtract=true -p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true
# -p:DebugType=none`, published into obj/publish/RID (build outputs under obj/publish-artifacts) and copied to
# DIR/openlm-mirror-RID[.exe]. ReadyToRun compiles ahead of time for the target RID (the crossgen package for the
# build machine is restored like the runtime packs). Composite: the runtime, the libraries and our code are compiled
# as one version bubble, so the generic code of the runtime instantiated over our types (every async method's state
# machine box, collections of our structs) is precompiled too instead of jitted at start-up: a re-import that uploads
# nothing takes ~0.3 s instead of ~0.45 s (measured with scripts/bench.sh), at the price of a larger executable and a
# slower build. If composite fails for a RID the build is retried as per-assembly ReadyToRun, then without
# ReadyToRun, and a warning says so. Sizes are printed at the end.
set -euo pipefail

OLM_LOG_TAG="publish"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

all_rids=(linux-x64 linux-arm64 win-x64)
rids=()
r2r=true
composite=true
out="$OLM_REPO_ROOT/dist"
while (($# > 0)); do
  case "$1" in
    --rid)
      (($# >= 2)) || olm_die "--rid needs a runtime identifier (${all_rids[*]})"
      rids+=("$2")
      shift
      ;;
    --rid=*) rids+=("${1#--rid=}") ;;
    --no-r2r) r2r=false ;;
    --no-composite) composite=false ;;
    --out)
      (($# >= 2)) || olm_die "--out needs a directory"
      out="$2"
      shift
      ;;
    --out=*) out="${1#--out=}" ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) olm_die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
((${#rids[@]} > 0)) || rids=("${all_rids[@]}")
for rid in "${rids[@]}"; do
  case " ${all_rids[*]} " in
    *" $rid "*) ;;
    *) olm_die "unsupported --rid '$rid' (supported: ${all_rids[*]})" ;;
  esac
done

command -v dotnet >/dev/null 2>&1 || olm_die "the .NET SDK (dotnet) is not on PATH"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
cd "$OLM_REPO_ROOT"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Intermediate and bin outputs go to their own tree (--artifacts-path), so a publish never rewrites the
# bin/ and obj/ files a running build or test run uses.
artifacts="$OLM_REPO_ROOT/obj/publish-artifacts"

publish() { # RID R2R(true|false) COMPOSITE(true|false) PUBLISH-DIR
  dotnet publish src/OpenLm.Mirror.Cli/OpenLm.Mirror.Cli.csproj \
    -c Release -r "$1" --self-contained \
    --artifacts-path "$artifacts" \
    -p:PublishSingleFile=true \
    -p:IncludeNativeLibrariesForSelfExtract=true \
    -p:PublishReadyToRun="$2" \
    -p:PublishReadyToRunComposite="$3" \
    -p:DebugType=none \
    -p:DebugSymbols=false \
    -o "$4" \
    -nologo -v:minimal
}

built=()
for rid in "${rids[@]}"; do
  dir="$OLM_REPO_ROOT/obj/publish/$rid"
  rm -rf "$dir"
  olm_log "publishing $rid (ReadyToRun: $r2r, composite: $composite)"
  if ! publish "$rid" "$r2r" "$composite" "$dir"; then
    rm -rf "$dir"
    if [[ "$r2r" == true && "$composite" == true ]] && olm_warn "$rid: publishing as composite ReadyToRun failed; retrying per assembly" \
      && publish "$rid" true false "$dir"; then
      :
    elif [[ "$r2r" == true ]]; then
      olm_warn "$rid: publishing with ReadyToRun failed; retrying without it"
      rm -rf "$dir"
      publish "$rid" false false "$dir" || olm_die "$rid: dotnet publish failed"
    else
      olm_die "$rid: dotnet publish failed"
    fi
  fi

  ext=""
  [[ "$rid" == win-* ]] && ext=".exe"
  src="$dir/openlm-mirror$ext"
  [[ -f "$src" ]] || olm_die "$rid: $src was not produced"
  dest="$out/openlm-mirror-$rid$ext"
  cp -f "$src" "$dest.tmp"
  chmod 0755 "$dest.tmp"
  mv -f "$dest.tmp" "$dest"
  built+=("$dest")
done

olm_log "done:"
for file in "${built[@]}"; do
  size=$(stat -c %s "$file")
  printf '%s\t%s bytes (%s MiB)\n' "$file" "$size" "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')"
done
