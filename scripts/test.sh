#!/usr/bin/env bash
# The test command. On a fresh Debian 12 machine it installs what is missing,
# builds, starts the local PostgreSQL and Ceph RADOS Gateway, and runs:
#   unit tests        pure layers and one-layer logic
#   integration tests against the real services
#   end-to-end tests  the assetmv binary against the real services
#   the CPU gate      instructions per object under callgrind (bench/instructions.sh)
#   the demo          scripts/demo.sh, twice in a row (ASSETMV_DEMO=0 skips it)
#   Swift             the mixed-world, kill -9 and verify tests against
#                     OpenStack Swift's s3api (ASSETMV_SWIFT=0 skips them)
#   the package       the .deb built from the plain build, installed with
#                     dpkg -i, and /usr/bin/assetmv smoke-tested end to end
#                     (ASSETMV_PACKAGE_TEST=0 skips it)
#   sanitizers        the unit and integration tests and a few end-to-end
#                     tests (label "sanitized") again under ASan+UBSan and
#                     under TSan (ASSETMV_SANITIZERS=0 skips them when iterating)
#   fuzzers           each parser for ASSETMV_FUZZ_SECONDS (default 30)
# It exits non-zero when anything fails. Services stay up afterwards for
# inspection; stop them with scripts/services.sh stop.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
: "${ASSETMV_FUZZ_SECONDS:=30}"
: "${ASSETMV_SANITIZERS:=1}"
: "${ASSETMV_DEMO:=1}"
: "${ASSETMV_SWIFT:=1}"
: "${ASSETMV_PACKAGE_TEST:=1}"
JOBS=$(nproc)

step() { printf '\n==> %s (%s, %d s in)\n' "$*" "$(date -u +%H:%M:%S)" "$SECONDS" >&2; }

# ctest ARGS...: as ctest, and a failure when any test skipped itself. Every
# test's environment (services, the gateway with STS, the ceiling endpoint,
# Swift in its stage) is provided here, so a skip means a test that could not
# fail: it must not pass as a pass (tests/e2e/run.py, SKIP_RETURN_CODE).
run_ctest() {
  local log rc=0
  log=$(mktemp)
  ctest "$@" 2>&1 | tee "$log" >&2 || rc=$?  # pipefail: ctest's own status
  if grep -q '\*\*\*Skipped' "$log"; then
    echo "test.sh: these tests skipped themselves although their environment is provided:" >&2
    grep '\*\*\*Skipped' "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  return "$rc"
}

step "dependencies"
scripts/setup.sh

step "format and lint (clang-format, clang-tidy)"
mapfile -t sources < <(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find src tests -name '*.[ch]pp')
clang-format --dry-run --Werror "${sources[@]}"

step "build (RelWithDebInfo, warnings as errors)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build

# What needs only CPU runs beside the tests, at the lowest priority, so it
# takes only the CPU the tests leave idle while they wait on the gateway and
# the database: clang-tidy (with the compile database the build just wrote;
# its static analyzer alone is about 8 minutes of both cores), then the
# sanitizer and fuzzer builds. Its result is collected before those builds
# are used, and a clang-tidy finding fails the run there. Measured on CI:
# 47m52s and 44m21s against about 50 minutes in sequence (the tests leave
# less idle CPU than hoped), the rate-checking tests unmoved (the tests' own
# processes keep their priority).
background_log="$ROOT/.local/background.log"
mkdir -p "$ROOT/.local"
set -m  # its own process group, so that an early exit stops all of it (the trap below)
(
  set -euo pipefail
  renice -n 19 -p "$BASHPID" >/dev/null  # and everything it starts
  printf '%s\n' "${sources[@]}" | grep '^src/.*\.cpp$' | xargs -P "$JOBS" -n 4 clang-tidy -p build --quiet 2>/dev/null
  echo "clang-tidy: no finding"
  if ((ASSETMV_SANITIZERS)); then
    for san in address thread; do
      cmake -S . -B "build-$san" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASSETMV_SANITIZE="$san" >/dev/null
      ninja -C "build-$san"
      echo "build-$san: built"
    done
  fi
  if ((ASSETMV_FUZZ_SECONDS > 0)); then
    CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASSETMV_FUZZ=ON \
      -DASSETMV_TESTS=OFF >/dev/null
    ninja -C build-fuzz fuzz_list fuzz_copy fuzz_error fuzz_delete
    echo "build-fuzz: built"
  fi
) >"$background_log" 2>&1 &
background=$!
set +m
# background_done: waits for it; its log, and a failure, when it failed.
background_done() {
  [[ -n $background ]] || return 0
  step "clang-tidy and the sanitizer and fuzzer builds (run beside the tests)"
  local rc=0
  wait "$background" || rc=$?
  background=""
  if ((rc != 0)); then
    tail -80 "$background_log" >&2
    echo "test.sh: clang-tidy or a background build failed (above; all of it in $background_log)" >&2
    return 1
  fi
  grep -E '^(clang-tidy|build-)' "$background_log" >&2
}
trap '[[ -n ${background:-} ]] && kill -- -"$background" 2>/dev/null; true' EXIT

step "local services"
scripts/services.sh start
eval "$(scripts/services.sh env)"
export ASSETMV_REQUIRE_SERVICES=1  # a missing service fails the integration tests, never skips them

step "unit, integration and end-to-end tests"
run_ctest --test-dir build --output-on-failure -j "$JOBS" -LE swift

# The CPU gate, once, on the plain build: instructions per object under
# callgrind on a fixed world, against bench/instructions.baseline (+3% fails).
step "the CPU gate (bench/instructions.sh --check)"
bench/instructions.sh --check

# The README's first command must never regress: run it as a user would,
# twice in a row (the second run starts from the first one's leftovers).
if ((ASSETMV_DEMO)); then
  for run in 1 2; do
    step "the demo (scripts/demo.sh), run $run of 2"
    t0=$SECONDS
    scripts/demo.sh >"$ROOT/.local/demo-run$run.log" 2>&1 || { tail -60 "$ROOT/.local/demo-run$run.log" >&2; exit 1; }
    grep -E '^(migrate|verify) exit code|^demo:' "$ROOT/.local/demo-run$run.log" >&2
    echo "demo run $run: $((SECONDS - t0)) s" >&2
  done
fi

# A second S3 implementation, once, on the plain build: the mixed-world,
# kill -9 and verify tests against OpenStack Swift's s3api.
if ((ASSETMV_SWIFT)); then
  step "end-to-end tests against OpenStack Swift (s3api)"
  scripts/swift.sh start
  (eval "$(scripts/swift.sh env)" && run_ctest --test-dir build --output-on-failure -j "$JOBS" -L swift)
fi

# Once, from the plain build: what a user installs must work where it lands.
if ((ASSETMV_PACKAGE_TEST)); then
  step "the Debian package: build, dpkg -i, smoke test of /usr/bin/assetmv"
  deb=$(scripts/package.sh build)
  SUDO=(); [[ $(id -u) == 0 ]] || SUDO=(sudo)
  "${SUDO[@]}" dpkg -i "$deb" >&2
  dpkg -L assetmv >&2
  /usr/bin/assetmv --version >&2
  # The installed binary, man page and completion, against the real services
  # (the mixed world, its exact end state and counts), under a wall-clock limit.
  ASSETMV_BIN=/usr/bin/assetmv ASSETMV_MAN_PAGE=/usr/share/man/man1/assetmv.1.gz \
    ASSETMV_COMPLETION=/usr/share/bash-completion/completions/assetmv \
    timeout 600 /usr/bin/python3 -W ignore -m unittest -v tests.e2e.test_migrate.MigrateTest.test_mixed_world \
    tests.e2e.test_deploy.ManualTest
fi

background_done

if ((ASSETMV_SANITIZERS)); then
  # Any report fails the run: UBSan aborts, ASan/LSan and TSan exit non-zero,
  # and the end-to-end tests check assetmv's exit codes.
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  for san in address thread; do
    if [[ $san == address ]]; then label="ASan+UBSan"; else label="TSan"; fi
    step "unit, integration and end-to-end tests under $label"
    # The unit and integration tests, and the e2e tests labelled "sanitized"
    # (tests/CMakeLists.txt): every thread and path of the binary, once.
    run_ctest --test-dir "build-$san" --output-on-failure -j "$JOBS" -L 'unit|integration|sanitized'
  done
fi

if ((ASSETMV_FUZZ_SECONDS > 0)); then
  step "fuzzers (${ASSETMV_FUZZ_SECONDS}s each)"
  for t in list copy error delete; do
    corpus="$ROOT/.local/fuzz-corpus/$t"
    mkdir -p "$corpus"
    cp -n tests/data/s3/*.xml "$corpus/"
    build-fuzz/tests/fuzz/fuzz_$t -max_total_time="$ASSETMV_FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 "$corpus" 2>"$ROOT/.local/fuzz-$t.log" ||
      { tail -40 "$ROOT/.local/fuzz-$t.log" >&2; echo "fuzz_$t FAILED" >&2; exit 1; }
    printf 'fuzz_%-6s %s, corpus %s files\n' "$t" "$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$ROOT/.local/fuzz-$t.log")" \
      "$(ls "$corpus" | wc -l)" >&2
  done
fi

step "all tests passed"
