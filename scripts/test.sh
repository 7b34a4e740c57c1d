#!/usr/bin/env bash
# Runs every vidlog test on a fresh Debian machine: installs what the tests need
# (Debian ffmpeg for reference streams and ffprobe checks, Debian chromium and the pinned
# playwright-core for the viewer's browser tests), then lint, Rust tests, browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
mkdir -p target
set +e
cargo test --workspace 2>&1 | tee target/test.log | grep -E "^test result|FAILED|panicked|^error"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "== tests FAILED (full log: target/test.log)"
  exit "$status"
fi
echo "== browser tests (scripts/e2e.sh)"
bash scripts/e2e.sh
echo "== all tests passed"
