#!/usr/bin/env bash
# Browser end-to-end tests of the viewer (tests/e2e/): builds the `vidlog` binary (with the
# `ffmpeg` feature: server-decoded H.265), installs Debian's chromium, ffmpeg, the FFmpeg
# dev packages and the pinned playwright-core when missing, and runs the tests with node.
# Screenshots go to target/e2e/. Usage: scripts/e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "e2e: installing Debian chromium" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi
if ! command -v ffmpeg >/dev/null; then
  # The B-frame, H.265 and long-table tests make their clips with ffmpeg (libx264, libx265).
  echo "e2e: installing Debian ffmpeg" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q ffmpeg
fi
# The binary is built with the `ffmpeg` decoder feature (the viewer's server-decoded
# fallback for H.265): it links the system's FFmpeg libraries (bindgen needs clang).
need_dev=()
for pkg in libavcodec-dev libavformat-dev libavutil-dev libswscale-dev pkg-config clang libclang-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_dev+=("$pkg")
done
if [ ${#need_dev[@]} -gt 0 ]; then
  echo "e2e: installing Debian packages: ${need_dev[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_dev[@]}"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "e2e: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
if [ ! -f node_modules/playwright-core/package.json ] \
  || ! cmp -s <(node -p "require('./node_modules/playwright-core/package.json').version") \
               <(node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version"); then
  echo "e2e: installing playwright-core from package-lock.json" >&2
  npm ci --no-audit --no-fund --prefer-offline
fi

(unset CARGO_TARGET_DIR; cargo build -p vidlog --features ffmpeg)

mkdir -p target/e2e
VIDLOG_BIN="$PWD/target/debug/vidlog" node --test --test-reporter=spec tests/e2e/*.test.mjs
