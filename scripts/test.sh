#!/usr/bin/env bash
# The project's test command (README, .ci/run).
#
#   bash scripts/test.sh                       # everything: unit + integration
#   bash scripts/test.sh --unit                # unit tests only (no Docker, no root needed)
#   bash scripts/test.sh --integration         # integration tests only
#   bash scripts/test.sh --filter 'FullyQualifiedName~Registry'   # passed to dotnet test
#
# Steps: install missing apt packages, start the private Docker engine, build the registry
# image, build the solution in Release (warnings are errors), then run every test project
# under tests/ (a tests/*/*.csproj with <IsTestProject>true</IsTestProject>), each to its own
# TRX file. A failing project does not stop the others. The TRX counters of all projects are
# summed and printed as the last line:
#
#   N passed, N failed, N skipped
#
# Exit status is non-zero when any test failed, any project failed to run (no TRX, crash,
# non-zero exit) or no test ran at all.
set -euo pipefail

OLM_LOG_TAG="test"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

mode=all
filter=""
while (($# > 0)); do
  case "$1" in
    --unit) mode=unit ;;
    --integration) mode=integration ;;
    --all) mode=all ;;
    --filter)
      (($# >= 2)) || olm_die "--filter needs an expression"
      filter="$2"
      shift
      ;;
    --filter=*) filter="${1#--filter=}" ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) olm_die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

cd "$OLM_REPO_ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Discover test projects. An integration project is one whose name ends in IntegrationTests;
# every other test project is a unit project.
projects=()
for csproj in tests/*/*.csproj; do
  [[ -f "$csproj" ]] || continue
  grep -Eiq '<IsTestProject>[[:space:]]*true[[:space:]]*</IsTestProject>' "$csproj" || continue
  name="$(basename "$csproj" .csproj)"
  case "$mode:$name" in
    unit:*IntegrationTests) continue ;;
    integration:*IntegrationTests) ;;
    integration:*) continue ;;
  esac
  projects+=("$csproj")
done
# Unit projects first (fast feedback), integration projects last.
ordered=()
for csproj in "${projects[@]}"; do
  [[ "$(basename "$csproj" .csproj)" == *IntegrationTests ]] || ordered+=("$csproj")
done
for csproj in "${projects[@]}"; do
  [[ "$(basename "$csproj" .csproj)" == *IntegrationTests ]] && ordered+=("$csproj")
done
projects=("${ordered[@]+"${ordered[@]}"}")
((${#projects[@]} > 0)) || olm_die "no test projects found under tests/ for mode '$mode'"

needs_docker=0
for csproj in "${projects[@]}"; do
  [[ "$(basename "$csproj" .csproj)" == *IntegrationTests ]] && needs_docker=1
done

olm_log "test projects: ${projects[*]}"

# 1-3. Dependencies, engine, registry image (only when integration tests run).
if ((needs_docker)); then
  bash "$OLM_REPO_ROOT/scripts/install-deps.sh"
  bash "$OLM_REPO_ROOT/scripts/start-docker.sh" >/dev/null
  olm_export_docker_env
  bash "$OLM_REPO_ROOT/scripts/build-registry-image.sh"
fi

# 4. Build once; the test runs below use --no-build.
build_args=(build OpenLm.Mirror.sln -c Release -nologo -p:TreatWarningsAsErrors=true)
if [[ -n "${CI:-}" ]]; then
  # Leave no compiler/MSBuild server processes behind on CI.
  build_args+=(--disable-build-servers)
fi
olm_log "dotnet ${build_args[*]}"
dotnet "${build_args[@]}" || olm_die "build failed"

# 5. Run each project to its own TRX file.
results_dir="${OLM_TEST_RESULTS:-$OLM_REPO_ROOT/TestResults}"
rm -rf "$results_dir"
mkdir -p "$results_dir"

failed_projects=()
for csproj in "${projects[@]}"; do
  name="$(basename "$csproj" .csproj)"
  args=(test "$csproj" --no-build -c Release -nologo
    --logger "trx;LogFileName=$name.trx"
    --logger "console;verbosity=normal"
    --results-directory "$results_dir"
    --blame-hang-timeout "${OLM_TEST_HANG_TIMEOUT:-20m}" --blame-hang-dump-type none)
  if [[ -n "$filter" ]]; then
    args+=(--filter "$filter")
  fi
  olm_log "running $name"
  rc=0
  dotnet "${args[@]}" || rc=$?
  if ((rc != 0)); then
    olm_warn "$name: dotnet test exited with $rc"
    failed_projects+=("$name")
  elif [[ ! -f "$results_dir/$name.trx" ]]; then
    olm_warn "$name: no TRX file was written"
    failed_projects+=("$name")
  fi
done

# 6. Sum the counters of every TRX file.
counter() { # counter NAME FILE -> value of NAME="..." in the first <Counters .../> element
  local v
  v="$(grep -o '<Counters [^>]*>' "$2" | sed -n "1{s/.* $1=\"\([0-9][0-9]*\)\".*/\1/p;}" || true)"
  echo "${v:-0}"
}
total=0 executed=0 passed=0 failed=0 skipped=0 errors=0
shopt -s nullglob
trx_files=("$results_dir"/*.trx)
shopt -u nullglob
for trx in "${trx_files[@]}"; do
  t="$(counter total "$trx")"
  e="$(counter executed "$trx")"
  p="$(counter passed "$trx")"
  f="$(counter failed "$trx")"
  s="$(counter notExecuted "$trx")"
  # The VSTest TRX logger leaves notExecuted at 0 for skipped tests ([Fact(Skip=...)]) and
  # only marks their results outcome="NotExecuted": count those when that is more.
  s2="$(grep '<UnitTestResult ' "$trx" | grep -c 'outcome="NotExecuted"' || true)"
  ((${s2:-0} > s)) && s="$s2"
  x=$(($(counter error "$trx") + $(counter timeout "$trx") + $(counter aborted "$trx")))
  olm_log "$(basename "$trx"): total=$t executed=$e passed=$p failed=$f skipped=$s error/timeout/aborted=$x"
  total=$((total + t))
  executed=$((executed + e))
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
  errors=$((errors + x))
done

status=0
if ((${#failed_projects[@]} > 0)); then
  olm_warn "project(s) that failed to run cleanly: ${failed_projects[*]}"
  status=1
fi
if ((failed > 0 || errors > 0)); then
  status=1
fi
if ((executed == 0)); then
  olm_warn "no test was executed"
  status=1
fi
if ((status == 0)); then
  olm_log "all tests passed (TRX files in $results_dir)"
else
  olm_warn "TEST RUN FAILED (TRX files in $results_dir)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
