# Sourced helpers: run CNCF Distribution registries as plain loopback processes (benchmark and demo;
# the tests use Testcontainers instead). Every registry started here is stopped by stop_registries.
REGISTRY_PIDS=()

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_registry DIR VAR: starts a registry storing under DIR, puts "127.0.0.1:PORT" into VAR.
start_registry() {
  local dir=$1 var=$2 port
  port=$(free_port)
  mkdir -p "$dir/data"
  cat > "$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 &
  REGISTRY_PIDS+=($!)
  echo $! > "$dir/registry.pid"
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then
      printf -v "$var" '%s' "127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "registry in $dir did not start; log:" >&2
  cat "$dir/registry.log" >&2
  return 1
}

stop_registries() {
  local pid
  for pid in "${REGISTRY_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${REGISTRY_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  REGISTRY_PIDS=()
}
