#!/usr/bin/env bash
# Live latency from the producer's log() to the frame painted in the browser viewer:
# builds the release binary, then runs tests/e2e/bench_latency.mjs (vidlog serve, vidlog demo
# --connect at 1080p30 for 20 s, headless Chromium following live) and prints p50/p99.
# Usage: scripts/bench_latency.sh [--size 1920x1080] [--seconds 20] [--fps 30]
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p vidlog
VIDLOG_BIN="${VIDLOG_BIN:-$(realpath "$target")/release/vidlog}" node tests/e2e/bench_latency.mjs "$@"
