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
rm -rf "$DEMO"; mkdir -p "$DEMO"
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

step "done: everything is under $DEMO"
