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
# The `ffmpeg` decoder feature builds against the system's FFmpeg libraries (bindgen needs clang).
# nasm assembles OpenH264's SIMD code when the default decoder is built (without it OpenH264
# builds in plain C, about 20% slower).
for pkg in libavcodec-dev libavformat-dev libavutil-dev libswscale-dev pkg-config clang libclang-dev nasm; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Tests run with the optional FFmpeg decoder backend on (H.265/AV1 decoding, bit-exact B-frames);
# the default build stays without it and is checked by the lean test below.
FEATURES="vidlog/ffmpeg,vidlog-video/ffmpeg,vidlog-server/ffmpeg"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet --features "$FEATURES" -- -D warnings

echo "== cargo clippy -p vidlog-video (default features: no FFmpeg backend)"
cargo clippy -p vidlog-video --all-targets --quiet -- -D warnings

echo "== cargo test"
mkdir -p target
set +e
cargo test --workspace --features "$FEATURES" 2>&1 | tee target/test.log | grep -E "^test result|FAILED|panicked|^error"
status=${PIPESTATUS[0]}
if [ "$status" -eq 0 ]; then
  echo "== cargo test -p vidlog-video --lib (default features: no FFmpeg backend)"
  cargo test -p vidlog-video --lib 2>&1 | tee -a target/test.log | grep -E "^test result|FAILED|panicked|^error"
  status=${PIPESTATUS[0]}
fi
set -e
if [ "$status" -ne 0 ]; then
  echo "== tests FAILED (full log: target/test.log)"
  exit "$status"
fi
echo "== browser tests (scripts/e2e.sh)"
bash scripts/e2e.sh
echo "== all tests passed"
