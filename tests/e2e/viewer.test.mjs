// End-to-end test of the browser viewer: `vidlog serve`, the synthetic demo camera
// streamed into it, and Debian's headless Chromium (driven by playwright-core) decoding it
// with WebCodecs. Run by scripts/e2e.sh (which builds the binary and installs Chromium and
// playwright-core), or directly: `node tests/e2e/viewer.test.mjs`.
//
// Environment: VIDLOG_BIN (default target/debug/vidlog), CHROMIUM (default /usr/bin/chromium).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.VIDLOG_BIN ?? join(root, 'target', 'debug', 'vidlog');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const shots = join(root, 'target', 'e2e');
const FPS = 30;
/** The demo's pts of frame i: round(i * 1e9 / 30) ns. */
const ptsOf = (i) => Math.round((i * 1e9) / FPS);

/** Starts `vidlog serve --port 0` and resolves with its address once it listens. */
function startServer(dataDir) {
  const child = spawn(bin, ['serve', '--port', '0', '--data-dir', dataDir], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`vidlog serve said nothing useful in 20 s:\n${seen}`)), 20_000);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`vidlog serve exited with ${code}:\n${seen}`)));
    child.stderr.on('data', (data) => {
      process.stderr.write(data);
      seen += data;
      const match = seen.match(/listening on http:\/\/([0-9.]+:[0-9]+)/);
      if (match) {
        clearTimeout(timer);
        resolvePromise({ child, addr: match[1] });
      }
    });
  });
}

function run(args) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise() : reject(new Error(`vidlog ${args.join(' ')} exited with ${code}`))));
  });
}

const state = (page) => page.evaluate(() => window.vidlogViewer.state());

/** Waits until `predicate(state)` holds; the failure message shows the last state. */
async function until(page, what, predicate, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await state(page).catch((e) => ({ unavailable: e.message }));
    if (!last.unavailable && predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; viewer state: ${JSON.stringify(last)}`);
}

/** Mean RGB of a 5x5 patch of the viewer's canvas around (x, y). */
function patch(page, x, y) {
  return page.evaluate(([x, y]) => {
    const canvas = document.getElementById('view');
    const data = canvas.getContext('2d').getImageData(x - 2, y - 2, 5, 5).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += data[i + c];
    return sum.map((s) => Math.round(s / 25));
  }, [x, y]);
}

/** Drags the timeline slider to `t` ns the way a user's input would (an `input` event). */
async function scrub(page, t) {
  await page.evaluate((t) => {
    const slider = document.getElementById('timeline');
    slider.value = String(t);
    slider.dispatchEvent(new Event('input', { bubbles: true }));
  }, t);
}

test('the viewer follows a live stream and scrubs back', { timeout: 120_000 }, async (t) => {
  mkdirSync(shots, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'vidlog-e2e-'));
  const { child: server, addr } = await startServer(join(scratch, 'data'));
  const browser = await chromium.launchPersistentContext(join(scratch, 'chromium-profile'), {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-quic', '--no-first-run', '--disable-sync',
    ],
    viewport: { width: 900, height: 600 },
  });
  t.after(async () => {
    await browser.close().catch(() => {});
    server.removeAllListeners('exit');
    server.kill('SIGINT');
    await new Promise((r) => {
      const timer = setTimeout(() => { server.kill('SIGKILL'); r(); }, 5000);
      server.on('exit', () => { clearTimeout(timer); r(); });
    });
    rmSync(scratch, { recursive: true, force: true });
  });
  const base = `http://${addr}`;
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on('console', (m) => console.log(`[browser ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[browser error] ${e.message}`));

  // The page is open before anything is logged: it waits, then picks the stream itself.
  await page.goto(`${base}/`);
  await until(page, 'the waiting message', (s) => /Waiting for a recording/.test(s.message));
  await run(['demo', '--fast', '--seconds', '3', '--connect', addr]);

  // Live: every sample arrives over /ws/view; the newest (frame 89) ends up shown.
  let s = await until(page, 'frames', (s) => s.frames > 0);
  assert.equal(s.entity, 'camera/front');
  assert.match(s.codec, /^avc1\./);
  s = await until(page, 'the live edge (frame 89)', (s) => s.live && s.shownIndex === 89);
  assert.equal(s.shownPts, ptsOf(89));
  assert.equal(s.error, null);
  await page.screenshot({ path: join(shots, 'live.png') });

  // Scrub to 1.0 s: the frame with pts exactly 1 s (frame 30; the GOP starts at 0).
  await scrub(page, 1e9);
  s = await until(page, 'the frame at 1.0 s', (s) => !s.seeking && s.shownPts === 1e9);
  assert.equal(s.shownIndex, 30);
  assert.equal(s.live, false, 'scrubbing leaves live follow');
  await page.screenshot({ path: join(shots, 'at-1.0s.png') });

  // Arrow keys step one frame.
  await page.keyboard.press('ArrowRight');
  s = await until(page, 'one frame forward', (s) => !s.seeking && s.shownIndex === 31);
  assert.equal(s.shownPts, ptsOf(31));
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  s = await until(page, 'two frames back', (s) => !s.seeking && s.shownIndex === 29);
  assert.equal(s.shownPts, ptsOf(29));

  // The gold ball moves: at 0.25 s (frame 7) it covers (240, 240); at 0.5 s it is 80 px up.
  await scrub(page, 0.25e9);
  s = await until(page, 'the frame at 0.25 s', (s) => !s.seeking && s.shownIndex === 7);
  const at025 = await patch(page, 240, 240);
  await page.screenshot({ path: join(shots, 'at-0.25s.png') });
  await scrub(page, 0.5e9);
  s = await until(page, 'the frame at 0.5 s', (s) => !s.seeking && s.shownIndex === 15);
  const at05 = await patch(page, 240, 240);
  await page.screenshot({ path: join(shots, 'at-0.5s.png') });
  console.log(`pixel (240,240): 0.25 s ${at025}, 0.5 s ${at05}`);
  assert.ok(at025[0] > 180 && at025[2] < 100, `gold ball at 0.25 s, got ${at025}`);
  assert.ok(at05[0] < 80 && at05[2] > 100, `background at 0.5 s, got ${at05}`);
  const canvasSize = await page.evaluate(() => [document.getElementById('view').width, document.getElementById('view').height]);
  assert.deepEqual(canvasSize, [480, 320]);

  // Play back from 0.5 s: frames advance in real time.
  await page.click('#play');
  s = await until(page, 'playback to advance', (s) => s.playing && !s.live && s.shownIndex >= 25);
  await page.click('#play');
  s = await until(page, 'pause', (s) => !s.playing);

  // Back to live follow: the newest frame again.
  await page.check('#live');
  s = await until(page, 'live again', (s) => s.live && s.shownIndex === 89);

  // A viewer joining after the stream: the feed starts at the latest keyframe (60).
  const late = await browser.newPage();
  await late.goto(`${base}/`);
  s = await until(late, 'the late viewer at the last frame', (s) => s.shownIndex === 89);
  assert.ok(s.decoded <= 30, `decoded from the last keyframe only, got ${s.decoded}`);
  await late.close();

  // Bad input is refused with a reason, never a crash.
  const recordings = await (await fetch(`${base}/api/recordings`)).json();
  const id = recordings[0].id;
  const bad = await fetch(`${base}/api/recordings/${id}/video/samples?entity=camera/front&from=x`);
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /not a sample index/);
  const noEntity = await fetch(`${base}/api/recordings/${id}/video/info?entity=nope`);
  assert.equal(noEntity.status, 404);
  const js = await fetch(`${base}/app.js`);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  const info = await (await fetch(`${base}/api/recordings/${id}/video/info?entity=camera/front`)).json();
  assert.equal(info.samples, 90);
  assert.deepEqual(info.keyframes, [0, 60]);
  assert.equal(info.pts[30], 1e9);
  assert.equal(info.timeline, 'time');
});
