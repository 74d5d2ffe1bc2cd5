#!/usr/bin/env bash
# scripts/test.sh -- the project's one test command.
#
#   1. swift build                  (debug; the binary the interop suite drives)
#   2. swift test                   (unit tests: Swift Testing / XCTest)
#   3. pytest tests/interop         (real peer tools: openssl, Python cryptography, dilithium-py)
#
# The interop suite runs from a virtualenv (default: <repo>/.venv, gitignored), created here when
# missing and (re)filled from tests/interop/requirements.txt when that file changes.
# Extra arguments go to pytest:   scripts/test.sh -k csr -x
#
# Environment:
#   SIGIL_VENV         virtualenv path (default <repo>/.venv)
#   PYTHON             interpreter used to create the venv (default python3)
#   SIGIL_SKIP_BUILD=1 skip steps 1 and 2 (interop only, against the existing debug binary)
#   SIGIL_TEST_POSTGRES_URL  a PostgreSQL the role of which may CREATE DATABASE; when unset, a
#                      throwaway PostgreSQL is started on a free loopback port (scripts/postgres.sh,
#                      needs root) for steps 2 and 3 and stopped at the end. Without one, the
#                      PostgreSQL tests are reported as skipped (in CI, CI=true, that is an error).
#
# Exits non-zero if any step fails. The last line printed is pytest's summary.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${SIGIL_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
REQ="$ROOT/tests/interop/requirements.txt"

step() { printf '\n==> %s\n' "$*" >&2; }

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    step "creating virtualenv $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  fi
  local stamp="$VENV/.sigil-requirements.sha256" want
  want="$(sha256sum "$REQ" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    step "installing $(realpath --relative-to="$ROOT" "$REQ") into the virtualenv"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
    echo "$want" >"$stamp"
  fi
}

if [ -z "${SIGIL_TEST_POSTGRES_URL:-}" ]; then
  . "$ROOT/scripts/postgres.sh"
  step "starting a throwaway PostgreSQL"
  if start_postgres; then
    trap stop_postgres EXIT
    echo "PostgreSQL for the tests: $(echo "$SIGIL_TEST_POSTGRES_URL" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#')" >&2
  elif [ "${CI:-}" = true ]; then
    echo "error: CI needs PostgreSQL for the store contract and multi-node tests" >&2
    exit 1
  else
    echo "warning: no PostgreSQL; the PostgreSQL tests will be reported as skipped" >&2
  fi
fi

unit_status=0
if [ "${SIGIL_SKIP_BUILD:-0}" != 1 ]; then
  step "swift build"
  swift build

  step "swift test"
  swift test || unit_status=$?
  if [ "$unit_status" -ne 0 ]; then
    echo "swift test FAILED (exit $unit_status); running the interop suite anyway" >&2
  fi
fi

SIGIL_BIN="$ROOT/.build/debug/sigil"
if [ ! -x "$SIGIL_BIN" ]; then
  echo "error: $SIGIL_BIN not found (did swift build run?)" >&2
  exit 1
fi
export SIGIL_BIN

ensure_venv

step "interop tests (pytest tests/interop, SIGIL_BIN=$SIGIL_BIN)"
interop_status=0
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest -p no:cacheprovider -ra \
  "$ROOT/tests/interop" "$@" || interop_status=$?

# pytest's own summary line stays the last line printed: report through the exit status only.
if [ "$unit_status" -ne 0 ]; then exit "$unit_status"; fi
exit "$interop_status"
