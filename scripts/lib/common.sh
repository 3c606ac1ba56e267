# shellcheck shell=bash disable=SC2034 # variables here are used by the scripts that source this file
# Shared helpers for the OpenLm.Mirror test/CI scripts. Source it, do not run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Everything here is about the project's *private* Docker engine. It never touches the
# system's default engine (/var/run/docker.sock) and never gives Docker a bridge network:
# containers run with host networking and listen on loopback addresses only.

if [[ -n "${OLM_COMMON_SOURCED:-}" ]]; then
  return 0
fi
OLM_COMMON_SOURCED=1

OLM_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Paths of the private engine (overridable for experiments, defaults are what the tests expect).
OLM_RUN_DIR="${OLM_RUN_DIR:-/run/openlm-mirror}"
OLM_DOCKER_DATA_ROOT="${OLM_DOCKER_DATA_ROOT:-/var/lib/openlm-mirror/docker}"
OLM_DOCKER_EXEC_ROOT="${OLM_DOCKER_EXEC_ROOT:-$OLM_RUN_DIR/exec}"
OLM_DOCKER_PIDFILE="${OLM_DOCKER_PIDFILE:-$OLM_RUN_DIR/dockerd.pid}"
OLM_DOCKER_SOCK="${OLM_DOCKER_SOCK:-$OLM_RUN_DIR/docker.sock}"
OLM_DOCKERD_LOG="${OLM_DOCKERD_LOG:-/var/log/openlm-mirror-dockerd.log}"
OLM_DOCKER_LOCK="${OLM_DOCKER_LOCK:-$OLM_RUN_DIR/start-docker.lock}"
OLM_DOCKER_API_VERSION="${OLM_DOCKER_API_VERSION:-1.41}"
OLM_DOCKER_START_TIMEOUT="${OLM_DOCKER_START_TIMEOUT:-60}"

# The registry image the integration tests run (built by scripts/build-registry-image.sh).
OLM_REGISTRY_IMAGE="${OLM_REGISTRY_IMAGE:-openlm-mirror/registry:2.8}"
OLM_REGISTRY_HASH_LABEL="org.openlm-mirror.inputs-hash"

# Labels that mark containers as ours (for leftover cleanup).
OLM_CONTAINER_LABELS=("org.testcontainers=true" "org.openlm-mirror.test")

olm_log()  { printf '[%s] %s\n' "${OLM_LOG_TAG:-openlm-mirror}" "$*" >&2; }
olm_warn() { printf '[%s] WARNING: %s\n' "${OLM_LOG_TAG:-openlm-mirror}" "$*" >&2; }
olm_die()  { printf '[%s] ERROR: %s\n' "${OLM_LOG_TAG:-openlm-mirror}" "$*" >&2; exit 1; }

olm_require_root() {
  [[ "$(id -u)" == "0" ]] || olm_die "$1 needs root (it manages a private dockerd / apt packages)."
}

# The Docker CLI. /usr/bin/docker is Debian's 20.10 CLI matching the engine; a newer CLI also
# works because DOCKER_API_VERSION pins the API version.
olm_docker_cli() {
  if [[ -x /usr/bin/docker ]]; then
    printf '%s\n' /usr/bin/docker
  elif command -v docker >/dev/null 2>&1; then
    command -v docker
  else
    olm_die "no docker CLI found (run scripts/install-deps.sh)"
  fi
}

# Run the docker CLI against the private engine.
olm_docker() {
  DOCKER_HOST="unix://$OLM_DOCKER_SOCK" DOCKER_API_VERSION="$OLM_DOCKER_API_VERSION" \
    "$(olm_docker_cli)" "$@"
}

# True when the private engine answers within $1 seconds (default 5), so a wedged daemon
# (accepting connections, never replying) cannot hang us.
olm_docker_answers() {
  [[ -S "$OLM_DOCKER_SOCK" ]] || return 1
  DOCKER_HOST="unix://$OLM_DOCKER_SOCK" DOCKER_API_VERSION="$OLM_DOCKER_API_VERSION" \
    timeout -k 1 "${1:-5}" "$(olm_docker_cli)" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# Export the environment the tests (Testcontainers) need to reach the private engine.
olm_export_docker_env() {
  export DOCKER_HOST="unix://$OLM_DOCKER_SOCK"
  export DOCKER_API_VERSION="$OLM_DOCKER_API_VERSION"
  export TESTCONTAINERS_RYUK_DISABLED=true
}

olm_print_docker_env() {
  printf 'export DOCKER_HOST=%s\n' "unix://$OLM_DOCKER_SOCK"
  printf 'export DOCKER_API_VERSION=%s\n' "$OLM_DOCKER_API_VERSION"
  printf 'export TESTCONTAINERS_RYUK_DISABLED=true\n'
}

# True if PID runs and is not a zombie. (A kill -9'd dockerd and its containerd can stay
# zombies for a while when PID 1 reaps lazily; `kill -0` would call them alive.)
olm_pid_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/stat" ]] || return 1
  state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# True if PID is alive and is a dockerd serving our socket/data root (pid reuse safe).
olm_is_our_dockerd() {
  local pid="$1" cmdline
  olm_pid_alive "$pid" || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmdline" == *dockerd* ]] || return 1
  [[ "$cmdline" == *"$OLM_DOCKER_SOCK"* || "$cmdline" == *"$OLM_DOCKER_DATA_ROOT"* ]]
}

# PIDs of dockerd processes that serve our socket or data root (found through /proc, so a
# dockerd whose pid file vanished is still found; other engines are left alone).
olm_our_dockerd_pids() {
  local d pid
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    if olm_is_our_dockerd "$pid"; then
      printf '%s\n' "$pid"
    fi
  done
}

olm_wait_pid_gone() {
  local pid="$1" seconds="$2" i
  for ((i = 0; i < seconds * 10; i++)); do
    olm_pid_alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# Stop one of our dockerd processes by PID: TERM, then KILL after a grace period.
olm_stop_dockerd_pid() {
  local pid="$1"
  olm_is_our_dockerd "$pid" || return 0
  olm_log "stopping dockerd pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  if ! olm_wait_pid_gone "$pid" 20; then
    olm_warn "dockerd pid $pid ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    olm_wait_pid_gone "$pid" 10 || olm_die "could not stop dockerd pid $pid"
  fi
}

# Install apt packages non-interactively (apt-get update first, once per call).
olm_apt_install() {
  (($# > 0)) || return 0
  olm_require_root "installing packages ($*)"
  export DEBIAN_FRONTEND=noninteractive
  olm_log "apt-get install: $*"
  # Keep package scripts from starting services: docker.io's postinst would otherwise start
  # the *system* dockerd, which creates a docker0 bridge and iptables rules. We only ever run
  # our private engine (no bridge). policy-rc.d exit 101 = "action forbidden" (Debian policy).
  local policy=/usr/sbin/policy-rc.d created_policy=0 rc=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
  fi
  apt-get update -qq || rc=$?
  if ((rc == 0)); then
    apt-get install -y -qq --no-install-recommends "$@" || rc=$?
  fi
  if ((created_policy)); then
    rm -f "$policy"
  fi
  ((rc == 0)) || olm_die "apt-get failed (exit $rc) installing: $*"
}
