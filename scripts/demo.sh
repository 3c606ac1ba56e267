#!/usr/bin/env bash
# The built-in demo: a "public" loopback registry seeded with a small generated sample platform,
# mirrored the way an operator would. Needs only Debian packages (installed when missing) and the
# .NET SDK; no Docker engine, no internet. Everything lives under .work/demo and is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=${DEMO_WORK:-$ROOT/.work/demo}
source scripts/lib/registry-process.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "installing what is missing (docker-registry, skopeo, ...)"
bash scripts/install-deps.sh

step "building openlm-mirror"
rm -rf "$DEMO"; mkdir -p "$DEMO/airgap"
dotnet build -c Release -v q -nologo src/OpenLm.Mirror.Cli/OpenLm.Mirror.Cli.csproj -o "$DEMO/bin" >/dev/null
dotnet build -c Release -v q -nologo tests/OpenLm.Mirror.TestKit/OpenLm.Mirror.TestKit.csproj -o "$DEMO/testkit" >/dev/null
MIRROR="$DEMO/bin/openlm-mirror"
trap stop_registries EXIT

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
"$MIRROR" copy --plain-http "${IMAGES[0]}" "$PRIVATE/demo/single:1.0"

step "copy the whole platform into an OCI layout in one run (shared layers stored once)"
"$MIRROR" copy --plain-http "${IMAGES[@]}" "oci:$DEMO/layout"
echo "layout: $DEMO/layout ($(du -sh "$DEMO/layout" | cut -f1)), $(ls "$DEMO/layout/blobs/sha256" | wc -l) unique blobs"

step "copy the layout into the private registry under a prefix, keeping every digest"
REFS=()
for image in "${IMAGES[@]}"; do REFS+=("oci:$DEMO/layout:$image"); done
"$MIRROR" copy --plain-http "${REFS[@]}" "$PRIVATE/mirror"

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
"$MIRROR" keygen -o "$DEMO/release/openlm-release"

step "resolve: pin every image (manifest list + chart scan) to its digest"
"$MIRROR" resolve --plain-http --manifest "$DEMO/release/platform.yaml" -o "$DEMO/release/lock.json"

step "export: one signed bundle"
"$MIRROR" export --plain-http --lock "$DEMO/release/lock.json" --key "$DEMO/release/openlm-release.key" -o "$DEMO/release/openlm-platform-1.0.0.tar" --cache "$DEMO/release/cache"

step "verify (offline) and inspect"
"$MIRROR" verify "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub"
"$MIRROR" inspect "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub"

step "air-gapped side: import into the private registry ($PRIVATE/openlm), dry run first"
"$MIRROR" import "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/openlm" --plain-http --dry-run
"$MIRROR" import "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/openlm" --plain-http --receipt "$DEMO/airgap/receipt.json"

step "importing again is a no-op"
"$MIRROR" import "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/openlm" --plain-http

step "check: every image of the bundle is in the private registry"
"$MIRROR" check "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/openlm" --plain-http -o "$DEMO/airgap/check-report.json"

step "values: Helm overrides and node mirror configs for the private registry"
"$MIRROR" values "$DEMO/release/openlm-platform-1.0.0.tar" --key "$DEMO/release/openlm-release.pub" --to "$PRIVATE/openlm" --plain-http \
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
