#!/usr/bin/env bash
# Unattended upgrade of an air-gapped site from release N to N+1 (docs/upgrade-runbook.md).
#
#   scripts/upgrade-runbook.sh BUNDLE KEY TARGET [OUT_DIR]
#
#   BUNDLE   the new release: a bundle file, a delta, or the first part (NAME.001) / base name of a split set
#   KEY      the release public key (release.pub)
#   TARGET   the air-gapped registry and prefix, e.g. registry.local:5000/openlm
#   OUT_DIR  where the receipt, check report and Helm values go (default: ./upgrade-<version of the bundle file name>)
#
# Environment: OPENLM_MIRROR (the command, default openlm-mirror), MIRROR_FLAGS (extra registry flags, e.g.
# "--plain-http" or "--ca-file ca.pem"), HELM_RELEASE / HELM_CHART / HELM_NAMESPACE (when set, the final step runs
# helm upgrade with the generated values).
#
# Exit codes (each step's own, passed through; the runbook says what to do for each):
#   0 upgraded   1 runtime/registry failure: retry   2 bad input   3 integrity: re-copy the named part or file
#   4 the target lacks the base of this delta: import the base release first (or a full bundle)
set -uo pipefail

if [[ $# -lt 3 ]]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi

BUNDLE=$1 KEY=$2 TARGET=$3
OUT=${4:-./upgrade-$(basename "${BUNDLE%.001}")}
read -r -a MIRROR <<<"${OPENLM_MIRROR:-openlm-mirror}"
read -r -a FLAGS <<<"${MIRROR_FLAGS:-}"
mkdir -p "$OUT"

step() {
  local name=$1; shift
  echo "== $name: ${MIRROR[*]} $*" >&2
  "${MIRROR[@]}" "$@"
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    case $rc in
      1) hint="runtime or registry failure; nothing half-committed, run the runbook again" ;;
      2) hint="bad input; fix the named file or setting" ;;
      3) hint="integrity failure; re-copy the part or file named above and run again" ;;
      4) hint="the target is incomplete: import the base release named above first, or import a full bundle" ;;
      *) hint="unexpected exit code" ;;
    esac
    echo "== $name failed (exit $rc): $hint" >&2
    exit "$rc"
  fi
}

# 1. Every part (or the one file) against the signed head: signature, part hashes, every digest.
step verify verify "$BUNDLE" --key "$KEY"
# 2. Import: a delta runs its base check first (exit 4, nothing pushed, when the base is missing).
step import import "$BUNDLE" --key "$KEY" --to "$TARGET" --receipt "$OUT/receipt.json" "${FLAGS[@]}"
# 3. Check: every image of the release, pulled back by digest from the target.
step check check "$BUNDLE" --key "$KEY" --to "$TARGET" -o "$OUT/check.json" "${FLAGS[@]}"
# 4. Values: Helm overrides pinning every image to its digest in the target.
step values values "$BUNDLE" --key "$KEY" --to "$TARGET" -o "$OUT/values-airgap.yaml" --force
# 5. helm upgrade with the pushed chart, when asked for.
if [[ -n "${HELM_RELEASE:-}" && -n "${HELM_CHART:-}" ]]; then
  echo "== helm upgrade $HELM_RELEASE $HELM_CHART" >&2
  helm upgrade --install "$HELM_RELEASE" "$HELM_CHART" ${HELM_NAMESPACE:+--namespace "$HELM_NAMESPACE"} -f "$OUT/values-airgap.yaml" || exit 1
fi

echo "== upgraded: receipt $OUT/receipt.json (keep it: it is the --base of the next delta), report $OUT/check.json, values $OUT/values-airgap.yaml" >&2
