// Shared pieces of the browser end-to-end tests: a `vidlog serve` per test, headless
// Chromium (playwright-core), waiting on the viewer's state, feeding a recording file to
// the server as a producer, and clips made with ffmpeg that show their frame number.
//
// Frame-number pattern: defined once in crates/vidlog/src/synth.rs (module documentation).
// `ffmpegPatternFilter` draws the same pattern with ffmpeg's lavfi `geq` (frame number N),
// so imported clips (B-frames, other codecs) are read the same way as the demo camera.
//
// Environment: VIDLOG_BIN (default target/debug/vidlog), CHROMIUM (default /usr/bin/chromium).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const bin = process.env.VIDLOG_BIN ?? join(root, 'target', 'debug', 'vidlog');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const shots = join(root, 'target', 'e2e');

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

/** A server, a browser and a scratch dir for test `t`, all cleaned up after it. */
export async function setup(t) {
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
    viewport: { width: 1000, height: 700 },
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
  const newPage = async () => {
    const page = await browser.newPage();
    page.on('console', (m) => { if (m.type() !== 'log') console.log(`[browser ${m.type()}] ${m.text()}`); });
    page.on('pageerror', (e) => console.log(`[browser error] ${e.message}`));
    return page;
  };
  return { addr, base: `http://${addr}`, browser, scratch, newPage };
}

/** Opens the viewer of `env`'s empty server; resolves with the page once it waits for a recording. */
export async function waitingViewer(env) {
  const page = await env.newPage();
  await page.goto(`${env.base}/`);
  await until(page, 'the waiting message', (s) => /Waiting for a recording/.test(s.message));
  return page;
}

/** `GET video/info` of `entity` in the server's first recording. */
export async function firstVideoInfo(base, entity) {
  const [{ id }] = await (await fetch(`${base}/api/recordings`)).json();
  return (await fetch(`${base}/api/recordings/${id}/video/info?entity=${entity}`)).json();
}

/** Runs `vidlog ARGS` (with `env` added to the environment); rejects on a non-zero exit. */
export function run(args, env = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise() : reject(new Error(`vidlog ${args.join(' ')} exited with ${code}`))));
  });
}

export const state = (page) => page.evaluate(() => window.vidlogViewer.state());

/** Waits until `predicate(state)` holds; the failure message shows the last state. */
export async function until(page, what, predicate, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await state(page).catch((e) => ({ unavailable: e.message }));
    if (!last.unavailable && predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 40));
  }
  throw new Error(`timed out waiting for ${what}; viewer state: ${JSON.stringify(last)}`);
}

/** The frame number read from the viewer's canvas pixels (the composited picture). */
export const canvasFrameNumber = (page) => page.evaluate(() => window.vidlogViewer.readCanvasFrameNumber());

/** Drags the timeline slider to `t` the way a user's input would (an `input` event). */
export async function scrub(page, t) {
  await page.evaluate((t) => {
    const slider = document.getElementById('timeline');
    slider.value = String(t);
    slider.dispatchEvent(new Event('input', { bubbles: true }));
  }, t);
}

/**
 * Sends a recording file to the server as a producer would (docs/PROTOCOL.md): the hello,
 * then every frame after the 16-byte file header except the footer, one WebSocket message
 * each; resolves once the server acked every chunk. Runs in `page` (Chromium's WebSocket).
 * `paceMs` waits that long before each chunk after the first: a stream arriving live.
 */
export async function feedFile(page, addr, path, { paceMs = 0 } = {}) {
  const file = readFileSync(path).toString('base64');
  return page.evaluate(async ({ addr, file, paceMs }) => {
    const bytes = Uint8Array.from(atob(file), (c) => c.charCodeAt(0));
    const view = new DataView(bytes.buffer);
    const frames = [];
    let chunks = 0;
    for (let at = 16; at + 16 <= bytes.length;) {
      const len = view.getUint32(at + 4, true);
      const kind = bytes[at + 8];
      if (kind === 4) break; // footer: files only
      frames.push(bytes.subarray(at, at + 16 + len));
      if (kind === 3) chunks += 1;
      at += 16 + len;
    }
    const ws = new WebSocket(`ws://${addr}/ws/ingest`);
    ws.binaryType = 'arraybuffer';
    await new Promise((ok, bad) => { ws.onopen = ok; ws.onerror = () => bad(new Error('ingest socket failed')); });
    const acked = new Promise((ok, bad) => {
      ws.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.error) bad(new Error(message.error));
        if (message.stored === chunks) ok();
      };
    });
    ws.send(JSON.stringify({ protocol: 'vidlog', version: 1, role: 'producer' }));
    let sentChunks = 0;
    for (const frame of frames) {
      if (frame[8] === 3 && sentChunks++ > 0 && paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
      ws.send(frame);
    }
    await acked;
    ws.close();
    return { frames: frames.length, chunks };
  }, { addr, file, paceMs });
}

/**
 * Sends several recording files into one recording, over one producer connection: the
 * first file's RecordingInfo, then every file's schemas and chunks (docs/FORMAT.md), the
 * schema ids of file k moved by 1000 * k so they do not collide (each frame's CRC32C is
 * made anew). Resolves once the server acked every chunk.
 */
export async function feedFiles(page, addr, paths) {
  const files = paths.map((path) => readFileSync(path).toString('base64'));
  return page.evaluate(async ({ addr, files }) => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    const crc32c = (bytes) => {
      let c = 0xffffffff;
      for (const b of bytes) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
      return (c ^ 0xffffffff) >>> 0;
    };
    const frames = [];
    let chunks = 0;
    files.forEach((file, k) => {
      const bytes = Uint8Array.from(atob(file), (c) => c.charCodeAt(0));
      const view = new DataView(bytes.buffer);
      for (let at = 16; at + 16 <= bytes.length;) {
        const len = view.getUint32(at + 4, true);
        const kind = bytes[at + 8];
        if (kind === 4) break; // footer: files only
        const frame = bytes.slice(at, at + 16 + len);
        at += 16 + len;
        if (kind === 1 && k > 0) continue; // one RecordingInfo: the first file's
        if ((kind === 2 || kind === 3) && k > 0) {
          const fv = new DataView(frame.buffer);
          const idAt = 16 + (kind === 2 ? 0 : 8);
          fv.setUint32(idAt, fv.getUint32(idAt, true) + 1000 * k, true);
          fv.setUint32(12, crc32c(frame.subarray(16)), true);
        }
        if (kind === 3) chunks += 1;
        frames.push(frame);
      }
    });
    const ws = new WebSocket(`ws://${addr}/ws/ingest`);
    ws.binaryType = 'arraybuffer';
    await new Promise((ok, bad) => { ws.onopen = ok; ws.onerror = () => bad(new Error('ingest socket failed')); });
    const acked = new Promise((ok, bad) => {
      ws.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.error) bad(new Error(message.error));
        if (message.stored === chunks) ok();
      };
    });
    ws.send(JSON.stringify({ protocol: 'vidlog', version: 1, role: 'producer' }));
    for (const frame of frames) ws.send(frame);
    await acked;
    ws.close();
    return { frames: frames.length, chunks };
  }, { addr, files });
}

/**
 * ffmpeg's lavfi filter drawing synth.rs's frame-number pattern over a grey ramp; frame N
 * shows the number `first + N`.
 */
export function ffmpegPatternFilter(width, height, fps, seconds, first = 0) {
  const strip = Math.min(Math.max(Math.floor(height / 10), 16), height);
  const lum = `if(lt(Y,${strip}),255*mod(floor((N+${first})/pow(2,15-floor(X*16/W))),2),60+Y/3)`;
  return `color=c=gray:s=${width}x${height}:r=${fps}:d=${seconds},format=yuv420p,geq=lum='${lum}':cb=128:cr=128`;
}

/** Whether ffmpeg with `encoder` is on this machine. */
export function hasEncoder(encoder) {
  const probe = spawnSync('ffmpeg', ['-hide_banner', '-encoders'], { encoding: 'utf8' });
  return probe.status === 0 && probe.stdout.includes(` ${encoder} `);
}

/** Runs ffmpeg with `args`; throws with its stderr on failure. */
export function ffmpeg(args) {
  const out = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed:\n${out.stderr}`);
}
