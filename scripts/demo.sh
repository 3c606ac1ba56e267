#!/usr/bin/env bash
# The built-in demo: a "public" loopback registry seeded with a small generated sample platform,
# mirrored the way an operator would. Needs only Debian packages (installed when missing) and the
# .NET SDK; no Docker engine, no internet. Everything lives under .work/demo and is stopped at exit,
# unless --keep is given: then the two registries keep running so the commands can be tried by hand.
# Every openlm-mirror command is echoed before it runs, so the demo doubles as a tour of the flags.
set -euo pipefail
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    -h|--help) echo "usage: bash scripts/demo.sh [--keep]   (--keep: leave the loopback registries running at the end)"; exit 0 ;;
    *) echo "demo.sh: unknown argument '$arg' (did you mean --keep?)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=${DEMO_WORK:-$ROOT/.work/demo}
source scripts/lib/registry-process.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Echo an openlm-mirror command (paths shortened to $DEMO) before running it.
run() {
  local shown=("openlm-mirror")
  local arg
  for arg in "$@"; do shown+=("${arg//$DEMO/\$DEMO}"); done
  printf '\033[2m$ %s\033[0m\n' "${shown[*]}"
  "$MIRROR" "$@"
}

step "installing what is missing (docker-registry, skopeo, ...)"
bash scripts/install-deps.sh

step "building openlm-mirror"
rm -rf "$DEMO"; mkdir -p "$DEMO/airgap"
dotnet build -c Release -v q -nologo src/OpenLm.Mirror.Cli/OpenLm.Mirror.Cli.csproj -o "$DEMO/bin" >/dev/null
dotnet build -c Release -v q -nologo tests/OpenLm.Mirror.TestKit/OpenLm.Mirror.TestKit.csproj -o "$DEMO/testkit" >/dev/null
MIRROR="$DEMO/bin/openlm-mirror"
echo "DEMO=$DEMO"
if [[ $KEEP == 1 ]]; then trap 'echo "registries kept running (pids ${REGISTRY_PIDS[*]}); stop them with: kill ${REGISTRY_PIDS[*]}"' EXIT; else trap stop_registries EXIT; fi

step "starting two loopback registries: 'public' (the source) and 'private' (the air-gapped target)"
start_registry "$DEMO/public" PUBLIC
start_registry "$DEMO/private" PRIVATE
echo "public:  $PUBLIC"
echo "private: $PRIVATE"

step "seeding $PUBLIC with a small sample platform (Docker and OCI images, multi-arch, an artifact, a Helm chart)"
"$DEMO/testkit/OpenLm.Mirror.TestKit" seed --registry "$PUBLIC" --profile small --work "$DEMO/gen" --json > "$DEMO/platform.json" 2> "$DEMO/seed.log"
mapfile -t IMAGES < <(python3 -c 'import json,sys; [print(i["pullReference"]) for i in json.load(open(sys.argv[1]))["images"]]' "$DEMO/platform.json")
printf '  %s\n' "${IMAGES[@]}"

step "copy one image registry -> registry (digest preserved)"
run copy --plain-http "${IMAGES[0]}" "$PRIVATE/demo/single:1.0"

step "copy the whole platform into an OCI layout in one run (shared layers stored once)"
run copy --plain-http "${IMAGES[@]}" "oci:$DEMO/layout"
echo "layout: $DEMO/layout ($(du -sh "$DEMO/layout" | cut -f1)), $(ls "$DEMO/layout/blobs/sha256" | wc -l) unique blobs"

step "copy the layout into the private registry under a prefix, keeping every digest"
REFS=()
for image in "${IMAGES[@]}"; do REFS+=("oci:$DEMO/layout:$image"); done
run copy --plain-http "${REFS[@]}" "$PRIVATE/mirror"

step "checking with skopeo that the private registry serves the same digests"
for image in "${IMAGES[@]}"; do
  repo=${image#"$PUBLIC"/}
  want=$(skopeo inspect --raw --tls-verify=false "docker://$image" | sha256sum | cut -d' ' -f1)
  got=$(skopeo inspect --raw --tls-verify=false "docker://$PRIVATE/mirror/$repo" | sha256sum | cut -d' ' -f1)
  [[ "$want" == "$got" ]] && echo "  ok  $PRIVATE/mirror/$repo sha256:$got" || { echo "  MISMATCH $repo"; exit 1; }
done

step "release engineering: a platform manifest and an umbrella Helm chart that reference the public images"
mkdir -p "$DEMO/release/chart/charts/server" "$DEMO/release/chart/charts/kafka"
cat > "$DEMO/release/chart/Chart.yaml" <<YAML
apiVersion: v2
name: openlm
version: 1.0.0
dependencies:
  - name: server
    version: 1.0.0
  - name: kafka
    version: 31.5.0
    condition: kafka.enabled
YAML
cat > "$DEMO/release/chart/values.yaml" <<YAML
kafka:
  enabled: false
YAML
cat > "$DEMO/release/chart/charts/server/Chart.yaml" <<YAML
apiVersion: v2
name: server
version: 1.0.0
YAML
cat > "$DEMO/release/chart/charts/server/values.yaml" <<YAML
deployment:
  image: $PUBLIC/r3q3q2f4/olm-server:1.0.0
job:
  image: $PUBLIC/r3q3q2f4/olm-migrate:1.0.0
YAML
cat > "$DEMO/release/chart/charts/kafka/Chart.yaml" <<YAML
apiVersion: v2
name: kafka
version: 31.5.0
YAML
cat > "$DEMO/release/chart/charts/kafka/values.yaml" <<YAML
global:
  imageRegistry: ""
image:
  registry: $PUBLIC
  repository: r3q3q2f4/olm-worker
  tag: "1.0.0"
YAML
cat > "$DEMO/release/platform.yaml" <<YAML
apiVersion: mirror.openlm.io/v1
kind: Platform
name: openlm-platform
version: "1.0.0"
source: $PUBLIC/r3q3q2f4
images:
  - name: olm-gateway
    tag: "1.0.0"
    values: [gateway.deployment.image]
  - name: olm-agent
    tag: "1.0.0"
    values: [agent.deployment.image]
charts:
  - path: chart
YAML
echo "manifest: $DEMO/release/platform.yaml (chart: $DEMO/release/chart)"

step "keygen: a release signing key"
run keygen -o "$DEMO/release/openlm-release"

step "resolve: pin every image (manifest list + chart scan) to its digest"
run resolve --plain-http --manifest "$DEMO/release/platform.yaml" -o "$DEMO/release/lock.json" --cache "$DEMO/release/cache"

step "export: one signed bundle"
run export --plain-http --lock "$DEMO/release/lock.json" --key "$DEMO/release/openlm-release.key" -o "$DEMO/release/openlm-platform-1.0.0.tar" --cache "$DEMO/release/cache"

step "verify (offline) and inspect"
run verify "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub"
run inspect "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub"

step "a tampered bundle is refused: one byte of a layer changed, verify and import exit 3, nothing is tagged"
python3 - "$DEMO/release/openlm-platform-1.0.0.tar" "$DEMO/release/tampered.tar" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
at = data.find(b"blobs/sha256/")        # the first blob's tar header; its content starts 512 bytes later
data[at + 512 + 64] ^= 0xFF
open(sys.argv[2], "wb").write(data)
PY
set +e
run verify "$DEMO/release/tampered.tar" --key "$DEMO/release/openlm-release.pub"
rc=$?
set -e
[[ $rc == 3 ]] && echo "  refused with exit 3 (integrity), as it must be" || { echo "  expected exit 3, got $rc"; exit 1; }
set +e
run import "$DEMO/release/tampered.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/tampered" --plain-http
rc=$?
set -e
[[ $rc == 3 ]] && echo "  import refused it with exit 3 too; no tag was set in $PRIVATE/tampered" || { echo "  expected exit 3, got $rc"; exit 1; }

step "air-gapped side: import into the private registry ($PRIVATE/openlm), dry run first"
run import "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/openlm" --plain-http --dry-run
run import "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/openlm" --plain-http --receipt "$DEMO/airgap/receipt.json"

step "importing again is a no-op"
run import "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/openlm" --plain-http

step "check: every image of the bundle is in the private registry"
run check "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/openlm" --plain-http -o "$DEMO/airgap/check-report.json"

step "values: Helm overrides and node mirror configs for the private registry"
run values "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/openlm" --plain-http \
  -o "$DEMO/airgap/values-airgap.yaml" --k3s-registries-out "$DEMO/airgap/registries.yaml" --containerd-hosts-dir "$DEMO/airgap/certs.d"
echo "--- $DEMO/airgap/values-airgap.yaml"; cat "$DEMO/airgap/values-airgap.yaml"
echo "--- $DEMO/airgap/registries.yaml"; cat "$DEMO/airgap/registries.yaml"
echo "--- $DEMO/airgap/certs.d"; find "$DEMO/airgap/certs.d" -name hosts.toml

step "done: everything is under $DEMO"
echo "  bundle:   $DEMO/release/openlm-platform-1.0.0.tar (+ lock.json, openlm-release.pub)"
echo "  receipt:  $DEMO/airgap/receipt.json"
echo "  check:    $DEMO/airgap/check-report.json"
echo "  values:   $DEMO/airgap/values-airgap.yaml, node mirrors: $DEMO/airgap/registries.yaml, $DEMO/airgap/certs.d/"
ls "$DEMO/airgap"
if [[ $KEEP == 1 ]]; then
  echo
  echo "The registries keep running. Try, for example:"
  echo "  MIRROR=$MIRROR"
  echo "  \$MIRROR check $DEMO/release/openlm-platform-1.0.0.tar --key $DEMO/release/openlm-release.pub --to $PRIVATE/openlm --plain-http --json"
  echo "  \$MIRROR copy --plain-http ${IMAGES[0]} oci:/tmp/try-layout"
else
  echo "(run with --keep to leave the registries running and try the commands by hand)"
fi
