#!/usr/bin/env bash
# Start (idempotently) the project's private Docker engine for the integration tests.
#
#   bash scripts/start-docker.sh            # start if needed, print the env to use
#   eval "$(bash scripts/start-docker.sh)"  # ... and take it into the current shell
#
# Why a private engine: the tests need a Docker engine on a machine where no image can be
# pulled and no bridge network may exist. This one uses the vfs storage driver, no iptables,
# no bridge (containers use the host network and bind to loopback), and lives in its own
# data/exec roots so it never collides with a system dockerd.
#
# Copes with: an engine that already answers (no-op), stale pid files and sockets, a dockerd
# that was kill -9'd by a dead session, a wedged dockerd, and leftover test containers.
# Status goes to stderr; stdout carries only the `export ...` lines.
set -euo pipefail

OLM_LOG_TAG="start-docker"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

olm_require_root "start-docker.sh"
command -v dockerd >/dev/null 2>&1 || olm_die "dockerd not found (run scripts/install-deps.sh)"

mkdir -p "$OLM_RUN_DIR" "$OLM_DOCKER_DATA_ROOT" "$OLM_DOCKER_EXEC_ROOT" "$(dirname "$OLM_DOCKERD_LOG")"
chmod 0711 "$OLM_RUN_DIR"

# Serialise concurrent starters (two test runs at once must not race two dockerds).
exec 9>"$OLM_DOCKER_LOCK"
if ! flock -w 120 9; then
  olm_die "timed out waiting for the lock $OLM_DOCKER_LOCK held by another start-docker.sh"
fi

# Remove containers that a previous (killed) test run left behind.
#   fresh=1: the engine was just (re)started, so nothing of ours can be in use: remove all.
#   fresh=0: an engine was already up and another test run may be using it: remove only
#            stopped containers older than OLM_STALE_STOPPED (default 30m) and running ones
#            older than OLM_STALE_RUNNING_HOURS (default 4h, beyond any session/CI run).
cleanup_leftover_containers() {
  local fresh="$1" label ids id created age_h now
  now="$(date +%s)"
  for label in "${OLM_CONTAINER_LABELS[@]}"; do
    if [[ "$fresh" == 1 ]]; then
      ids="$(olm_docker ps -aq --filter "label=$label" 2>/dev/null || true)"
      if [[ -n "$ids" ]]; then
        olm_log "removing $(wc -w <<<"$ids") leftover container(s) labelled $label"
        # shellcheck disable=SC2086
        olm_docker rm -f -v $ids >/dev/null 2>&1 || olm_warn "could not remove some leftover containers"
      fi
    else
      olm_docker container prune -f --filter "label=$label" \
        --filter "until=${OLM_STALE_STOPPED:-30m}" >/dev/null 2>&1 || true
      ids="$(olm_docker ps -q --filter "label=$label" 2>/dev/null || true)"
      for id in $ids; do
        created="$(olm_docker inspect -f '{{.Created}}' "$id" 2>/dev/null || true)"
        [[ -n "$created" ]] || continue
        created="$(date -d "$created" +%s 2>/dev/null || echo "$now")"
        age_h=$(((now - created) / 3600))
        if ((age_h >= ${OLM_STALE_RUNNING_HOURS:-4})); then
          olm_log "removing stale running container $id (${age_h}h old, label $label)"
          olm_docker rm -f -v "$id" >/dev/null 2>&1 || true
        fi
      done
    fi
  done
}

finish() {
  cleanup_leftover_containers "$1"
  olm_export_docker_env
  olm_log "engine ready: $(olm_docker version --format 'server {{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo '?')"
  olm_print_docker_env
  exit 0
}

# 1. Already running and answering: nothing to start.
if olm_docker_answers 5; then
  olm_log "private dockerd already answers on $OLM_DOCKER_SOCK"
  finish 0
fi

# 2. A dockerd of ours exists but does not answer: maybe still starting; give it a moment,
#    then stop it (it is wedged, or half-dead after its session was killed).
mapfile -t pids < <(olm_our_dockerd_pids)
if ((${#pids[@]} > 0)); then
  olm_log "dockerd process(es) ${pids[*]} exist but do not answer yet; waiting up to 20s"
  wait_until=$((SECONDS + 20))
  while ((SECONDS < wait_until)); do
    if olm_docker_answers 2; then
      olm_log "private dockerd now answers"
      finish 0
    fi
    sleep 1
  done
  for pid in "${pids[@]}"; do
    olm_stop_dockerd_pid "$pid"
  done
fi

# 3. Clear stale state: a pid file whose process is gone (or is not our dockerd, e.g. a
#    recycled pid) makes dockerd refuse to start; a socket nobody listens on is just noise.
if [[ -e "$OLM_DOCKER_PIDFILE" ]]; then
  pid="$(tr -dc '0-9' <"$OLM_DOCKER_PIDFILE" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && olm_is_our_dockerd "$pid"; then
    olm_stop_dockerd_pid "$pid"
  fi
  olm_log "removing stale pid file $OLM_DOCKER_PIDFILE"
  rm -f "$OLM_DOCKER_PIDFILE"
fi
if [[ -e "$OLM_DOCKER_SOCK" ]]; then
  olm_log "removing stale socket $OLM_DOCKER_SOCK"
  rm -f "$OLM_DOCKER_SOCK"
fi
# dockerd runs its own containerd and, on start, adopts the one named in this pid file if
# that pid "exists". After a kill -9 the old containerd is dead or a zombie (dockerd gives it
# a parent-death signal), and adopting it fails with "timeout waiting for containerd".
# A containerd that really still runs (not a zombie) is left for dockerd to adopt.
containerd_dir="$OLM_DOCKER_EXEC_ROOT/containerd"
if [[ -e "$containerd_dir/containerd.pid" ]]; then
  cpid="$(tr -dc '0-9' <"$containerd_dir/containerd.pid" 2>/dev/null || true)"
  if [[ -z "$cpid" ]] || ! olm_pid_alive "$cpid" ||
    [[ "$(tr '\0' ' ' <"/proc/$cpid/cmdline" 2>/dev/null || true)" != *containerd* ]]; then
    olm_log "removing stale containerd pid file (pid ${cpid:-?} is gone)"
    rm -f "$containerd_dir/containerd.pid" "$containerd_dir/containerd.sock"
  fi
fi

# 4. Start it, detached from this shell (own session, no inherited stdio, not holding the
#    lock fd), so it outlives the script and never holds a caller's pipe or our lock.
olm_log "starting dockerd (log: $OLM_DOCKERD_LOG)"
{
  printf '\n===== %s start-docker.sh: starting dockerd =====\n' "$(date -Is)"
} >>"$OLM_DOCKERD_LOG"
setsid dockerd \
  --data-root "$OLM_DOCKER_DATA_ROOT" \
  --exec-root "$OLM_DOCKER_EXEC_ROOT" \
  --pidfile "$OLM_DOCKER_PIDFILE" \
  -H "unix://$OLM_DOCKER_SOCK" \
  --storage-driver vfs \
  --iptables=false \
  --bridge=none \
  --ip-masq=false \
  --userland-proxy=false \
  </dev/null >>"$OLM_DOCKERD_LOG" 2>&1 9>&- &
dockerd_pid=$!
disown "$dockerd_pid" 2>/dev/null || true

# 5. Wait until it answers.
deadline=$((SECONDS + OLM_DOCKER_START_TIMEOUT))
until olm_docker_answers 2; do
  if ! olm_pid_alive "$dockerd_pid"; then
    olm_warn "dockerd exited during start-up; last lines of $OLM_DOCKERD_LOG:"
    tail -n 30 "$OLM_DOCKERD_LOG" >&2 || true
    olm_die "dockerd failed to start"
  fi
  if ((SECONDS >= deadline)); then
    olm_warn "dockerd (pid $dockerd_pid) did not answer within ${OLM_DOCKER_START_TIMEOUT}s; last lines of $OLM_DOCKERD_LOG:"
    tail -n 30 "$OLM_DOCKERD_LOG" >&2 || true
    olm_die "timed out waiting for dockerd on $OLM_DOCKER_SOCK"
  fi
  sleep 0.5
done
olm_log "dockerd pid $dockerd_pid answers on $OLM_DOCKER_SOCK"
finish 1
