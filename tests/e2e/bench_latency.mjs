// Live latency benchmark: `vidlog serve`, a headless Chromium viewer following the stream,
// and `vidlog demo --connect` streaming the synthetic camera in real time. The viewer
// measures, for every frame it paints while following live, paint time minus the sample's
// row id (the producer's wall clock when `log()` was called; same machine, same clock) and
// this script prints p50/p99 after a warm-up. Run by scripts/bench_latency.sh.
//
// Usage: node tests/e2e/bench_latency.mjs [--size 1920x1080] [--seconds 20] [--fps 30]
// Environment: VIDLOG_BIN (default target/release/vidlog), CHROMIUM.

import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { join } from 'node:path';
import { root, setup, until } from './harness.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const size = option('size', '1920x1080');
const seconds = Number(option('seconds', '20'));
const fps = option('fps', '30');
const WARMUP_MS = 3000;
process.env.VIDLOG_BIN ??= join(root, 'target', 'release', 'vidlog');

test(`live latency at ${size}, ${fps} fps, ${seconds} s`, { timeout: (seconds + 60) * 1000 }, async (t) => {
  const { addr, base, newPage } = await setup(t);
  const page = await newPage();
  await page.goto(`${base}/`);
  const demo = spawn(process.env.VIDLOG_BIN, ['demo', '--connect', addr, '--size', size, '--fps', fps, '--seconds', String(seconds)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const done = new Promise((ok) => demo.on('exit', ok));
  await until(page, 'the first frame', (s) => s.frames > 0, 30_000);
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  await page.evaluate(() => window.vidlogViewer.resetLatency());
  const painted0 = (await page.evaluate(() => window.vidlogViewer.state())).frames;
  const code = await done;
  const s = await page.evaluate(() => window.vidlogViewer.state());
  const line = `live latency ${size}@${fps}: p50 ${s.latency.p50?.toFixed(1)} ms, p99 ${s.latency.p99?.toFixed(1)} ms ` +
    `over ${s.latency.count} frames painted live (${s.frames - painted0} paints after a ${WARMUP_MS / 1000} s warm-up; ` +
    `${s.samples} samples streamed; demo exit ${code})`;
  console.log(line);
  process.stdout.write(`RESULT ${line}\n`);
});
