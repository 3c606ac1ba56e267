#!/usr/bin/env bash
# Build the registry image the integration tests run: openlm-mirror/registry:2.8.
#
# Why `docker import`: no image can be pulled here, so the image is assembled from Debian's
# docker-registry package (CNCF Distribution 2.8.x): the binary, the shared libraries ldd
# says it needs, and a config.yml. The build is skipped when the image already carries a
# label with the hash of exactly these inputs, and redone when any of them changes (e.g. an
# apt upgrade of docker-registry or libc).
#
# The engine is the private one from scripts/start-docker.sh (must already be running).
set -euo pipefail

OLM_LOG_TAG="build-registry-image"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

REGISTRY_BIN="${OLM_REGISTRY_BIN:-/usr/bin/docker-registry}"
[[ -x "$REGISTRY_BIN" ]] || REGISTRY_BIN="$(command -v docker-registry || true)"
[[ -n "$REGISTRY_BIN" && -x "$REGISTRY_BIN" ]] || olm_die "docker-registry not found (run scripts/install-deps.sh)"
olm_docker_answers 5 || olm_die "the private dockerd does not answer on $OLM_DOCKER_SOCK (run scripts/start-docker.sh)"

# Two test runs at once must not import (and prune) over each other.
mkdir -p "$OLM_RUN_DIR"
exec 9>"$OLM_RUN_DIR/build-registry-image.lock"
flock -w 120 9 || olm_die "timed out waiting for another build-registry-image.sh"

# Bump when the image layout below changes in a way the input files do not show.
IMAGE_LAYOUT_VERSION=1
ENTRYPOINT='["/bin/registry","serve","/etc/docker/registry/config.yml"]'

# Defaults only: every key can be overridden with REGISTRY_<SECTION>_<KEY> env vars, which
# is how the tests pick the listen address, htpasswd auth and TLS per container.
read -r -d '' CONFIG_YML <<'YAML' || true
version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
  redirect:
    disable: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
YAML

# Shared libraries the binary needs, as absolute paths (e.g. libc.so.6 and the loader).
mapfile -t LIBS < <(ldd "$REGISTRY_BIN" 2>/dev/null | awk '
  $2 == "=>" && $3 ~ /^\// { print $3; next }
  $1 ~ /^\// { print $1 }' | sort -u)
((${#LIBS[@]} > 0)) || olm_die "ldd found no libraries for $REGISTRY_BIN (static binary? adjust this script)"

# Content hash of every input that ends up in the image.
inputs_hash="$(
  {
    printf 'layout=%s\nentrypoint=%s\n' "$IMAGE_LAYOUT_VERSION" "$ENTRYPOINT"
    printf '%s\n' "$CONFIG_YML" | sha256sum
    sha256sum "$REGISTRY_BIN" | awk '{print $1 "  registry"}'
    for lib in "${LIBS[@]}"; do
      printf '%s  %s\n' "$(sha256sum "$(readlink -f "$lib")" | awk '{print $1}')" "$lib"
    done
  } | sha256sum | awk '{print $1}'
)"

current="$(olm_docker image inspect -f "{{ index .Config.Labels \"$OLM_REGISTRY_HASH_LABEL\" }}" "$OLM_REGISTRY_IMAGE" 2>/dev/null || true)"
if [[ "$current" == "$inputs_hash" ]]; then
  olm_log "$OLM_REGISTRY_IMAGE is up to date (inputs ${inputs_hash:0:12})"
  exit 0
fi
if [[ -n "$current" ]]; then
  olm_log "$OLM_REGISTRY_IMAGE is stale (inputs ${current:0:12} -> ${inputs_hash:0:12}); rebuilding"
else
  olm_log "building $OLM_REGISTRY_IMAGE (inputs ${inputs_hash:0:12})"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/bin" "$root/etc/docker/registry" "$root/var/lib/registry" "$root/tmp"
chmod 1777 "$root/tmp"
install -m 0755 "$REGISTRY_BIN" "$root/bin/registry"
for lib in "${LIBS[@]}"; do
  # Keep the path the binary asks for (e.g. /lib64/ld-linux-x86-64.so.2), copy the target.
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
printf '%s\n' "$CONFIG_YML" >"$root/etc/docker/registry/config.yml"

tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$work/rootfs.tar" .
olm_docker import \
  -c "ENTRYPOINT $ENTRYPOINT" \
  -c 'EXPOSE 5000' \
  -c "LABEL $OLM_REGISTRY_HASH_LABEL=$inputs_hash" \
  -c "LABEL org.openlm-mirror.registry-version=$("$REGISTRY_BIN" --version 2>/dev/null | awk '{print $NF}' || echo unknown)" \
  -m "openlm-mirror test registry from $REGISTRY_BIN" \
  "$work/rootfs.tar" "$OLM_REGISTRY_IMAGE" >/dev/null

got="$(olm_docker image inspect -f "{{ index .Config.Labels \"$OLM_REGISTRY_HASH_LABEL\" }}" "$OLM_REGISTRY_IMAGE")"
[[ "$got" == "$inputs_hash" ]] || olm_die "imported image lacks the inputs-hash label (docker import ignored LABEL?)"
# Drop the untagged predecessors this rebuild left behind.
olm_docker image prune -f --filter "label=$OLM_REGISTRY_HASH_LABEL" >/dev/null 2>&1 || true
olm_log "built $OLM_REGISTRY_IMAGE"
