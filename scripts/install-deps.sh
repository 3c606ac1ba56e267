#!/usr/bin/env bash
# Install the Debian packages the tests need, and only those that are missing.
#
# Why: a fresh machine (or CI on a new machine) has nothing installed by hand; the project
# must bring its own dependencies. On a machine that has them already this is a quick no-op
# (no apt-get update, no root needed).
#
#   docker.io        dockerd + CLI for the private test engine (scripts/start-docker.sh)
#   docker-registry  CNCF Distribution 2.8: the registry the integration tests run
#   skopeo, umoci    reference OCI tools the tests compare against / build fixtures with
#   openssl          certificate checks; apache2-utils: htpasswd (bcrypt) for registry auth
#   time, zstd       /usr/bin/time for resource checks; zstd for compressed-layer fixtures
#   containerd       a private containerd (own socket and root) pulls from `serve` in the serve tests (ctr)
#   podman           `podman pull` from `serve` in the serve tests (vfs storage, own root)
#   tinyproxy        a real HTTP proxy (CONNECT, BasicAuth) in front of TLS registries in the proxy tests
set -euo pipefail

OLM_LOG_TAG="install-deps"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# package:command-or-path-that-proves-it-is-there
REQUIRED=(
  "docker.io:dockerd"
  "docker-registry:/usr/bin/docker-registry"
  "skopeo:skopeo"
  "umoci:umoci"
  "openssl:openssl"
  "apache2-utils:htpasswd"
  "time:/usr/bin/time"
  "zstd:zstd"
  "containerd:/usr/bin/containerd"
  "podman:podman"
  "tinyproxy:/usr/bin/tinyproxy"
)

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

provided() {
  local probe="$1"
  if [[ "$probe" == /* ]]; then
    [[ -x "$probe" ]]
  else
    command -v "$probe" >/dev/null 2>&1
  fi
}

missing=()
for entry in "${REQUIRED[@]}"; do
  pkg="${entry%%:*}"
  probe="${entry#*:}"
  # A package counts as present when dpkg has it, or when what we use from it is already on
  # the machine by other means (e.g. dockerd from docker-ce: installing docker.io would
  # conflict with it).
  if pkg_installed "$pkg" || provided "$probe"; then
    continue
  fi
  missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  olm_log "all required packages are present"
  exit 0
fi

olm_apt_install "${missing[@]}"

for entry in "${REQUIRED[@]}"; do
  probe="${entry#*:}"
  provided "$probe" || olm_die "${entry%%:*} installed but $probe is still missing"
done
olm_log "installed: ${missing[*]}"
