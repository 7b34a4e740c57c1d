// B-frame streams in the viewer: ffmpeg draws the frame-number pattern (harness.mjs), x264
// encodes it with B-frames (`-bf 2`, and `-bf 3` with a B-pyramid), `vidlog import` makes a
// recording of the raw stream (presentation times from the picture order), the test feeds
// the file to the server as a producer, and Chromium must paint frames in presentation
// order: the frame number on the canvas is the rank of the pts the viewer says it shows.
// Also a codec Chromium cannot decode (H.265): the server decodes it (the `ffmpeg` feature)
// and the viewer shows its frames, marked server-decoded; without the feature, the server's
// reason naming the feature is on screen. The server-decoded stream also arrives in pieces
// while the viewer follows its live edge.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { bin, setup, run, until, state, scrub, feedFile, canvasFrameNumber, ffmpeg, ffmpegPatternFilter, hasEncoder, shots, waitingViewer, firstVideoInfo } from './harness.mjs';

const FRAMES = 90;

async function recordingIds(base) {
  return (await (await fetch(`${base}/api/recordings`)).json()).map((r) => r.id);
}

/** Imports `h264` as entity `camera/b`, feeds it, returns the new recording's id. */
async function importAndFeed({ base, addr, scratch, newPage }, h264, name) {
  const vlog = join(scratch, `${name}.vlog`);
  await run(['import', h264, '--entity', 'camera/b', '--fps', '30', '-o', vlog]);
  const before = await recordingIds(base);
  const feeder = await newPage();
  const fed = await feedFile(feeder, addr, vlog);
  await feeder.close();
  const id = (await recordingIds(base)).find((r) => !before.includes(r));
  assert.ok(id, `a new recording after feeding ${fed.chunks} chunks`);
  return id;
}

for (const [name, x264] of [
  ['bf2', ['-bf', '2']],
  ['bf3-pyramid', ['-bf', '3', '-b-pyramid', 'normal']],
]) {
  test(`a B-frame stream (x264 ${x264.join(' ')}) is shown in presentation order`, { timeout: 90_000, skip: !hasEncoder('libx264') && 'ffmpeg with libx264 is not installed' }, async (t) => {
    const env = await setup(t);
    const h264 = join(env.scratch, `${name}.h264`);
    ffmpeg(['-f', 'lavfi', '-i', ffmpegPatternFilter(320, 240, 30, FRAMES / 30), '-c:v', 'libx264', ...x264, '-g', '30',
      '-pix_fmt', 'yuv420p', '-f', 'h264', h264]);
    const id = await importAndFeed(env, h264, name);
    const info = await (await fetch(`${env.base}/api/recordings/${id}/video/info?entity=camera/b`)).json();
    assert.equal(info.samples, FRAMES);
    const decodeOrderPts = info.pts;
    assert.ok(decodeOrderPts.some((p, i) => i > 0 && p < decodeOrderPts[i - 1]), 'the stream reorders (B-frames)');
    const byRank = [...decodeOrderPts].sort((a, b) => a - b); // frame number r has pts byRank[r]

    const page = await env.newPage();
    await page.goto(`${env.base}/?recording=${id}`);
    let s = await until(page, 'the last frame', (s) => s.shownPts === byRank[FRAMES - 1] && s.settled);
    assert.equal(await canvasFrameNumber(page), FRAMES - 1);

    // Scrubs forward and backward, across GOP boundaries (every 30 frames).
    for (const r of [1, 2, 3, 45, 29, 30, 31, 88, 10, 59, 60, 0]) {
      await scrub(page, byRank[r]);
      s = await until(page, `frame ${r}`, (s) => s.settled && s.shownPts === byRank[r]);
      assert.equal(await canvasFrameNumber(page), r, `scrub to frame ${r}: the canvas shows it`);
    }
    // Steps forward through B-frames and a GOP boundary: consecutive numbers.
    await scrub(page, byRank[26]);
    await until(page, 'frame 26', (s) => s.settled && s.shownPts === byRank[26]);
    for (let r = 27; r <= 33; r++) {
      await page.keyboard.press('ArrowRight');
      await until(page, `step to frame ${r}`, (s) => s.settled && s.shownPts === byRank[r]);
      assert.equal(await canvasFrameNumber(page), r, `step to frame ${r}`);
    }
    // Play: what is painted only moves forward and matches what the viewer says.
    await scrub(page, byRank[40]);
    await until(page, 'frame 40', (s) => s.settled && s.shownPts === byRank[40]);
    await page.evaluate(() => window.vidlogViewer.play());
    const seen = [];
    for (let k = 0; k < 300 && (seen.at(-1) ?? 0) < 70; k++) {
      const now = await page.evaluate(() => ({ s: window.vidlogViewer.state(), n: window.vidlogViewer.readCanvasFrameNumber() }));
      assert.equal(byRank.indexOf(now.s.shownPts), now.n, 'the painted frame is the one the viewer says');
      if (seen.at(-1) !== now.n) seen.push(now.n);
      await new Promise((r) => setTimeout(r, 15));
    }
    await page.evaluate(() => window.vidlogViewer.pause());
    console.log(`${name} playback painted: ${seen.join(' ')}`);
    assert.deepEqual([...seen].sort((a, b) => a - b), seen, 'playback moves forward in presentation order');
    assert.ok(seen.length >= 5, `playback advanced: ${seen}`);
    assert.equal((await state(page)).error, null);
    await page.screenshot({ path: join(shots, `bframes-${name}.png`) });
  });
}

/**
 * The frame-number clip (FRAMES frames) in H.265 by x265 (its defaults reorder: B-frames; a
 * keyframe every 30 frames), imported as entity `camera/b`; `importEnv` goes to the import.
 */
async function hevcRecording(env, name, importEnv = {}) {
  const mp4 = join(env.scratch, `${name}.mp4`);
  ffmpeg(['-f', 'lavfi', '-i', ffmpegPatternFilter(320, 240, 30, FRAMES / 30), '-c:v', 'libx265',
    '-x265-params', 'log-level=error:keyint=30:min-keyint=30', '-pix_fmt', 'yuv420p', '-tag:v', 'hvc1', mp4]);
  const vlog = join(env.scratch, `${name}.vlog`);
  await run(['import', mp4, '--entity', 'camera/b', '-o', vlog], importEnv);
  return vlog;
}

/** Whether the binary under test decodes H.265 itself (built with the `ffmpeg` feature). */
function serverDecodesH265() {
  const out = spawnSync(bin, ['info', '--decoders'], { encoding: 'utf8' });
  return out.status === 0 && !/H\.265: none/.test(out.stdout);
}

test('an H.265 stream the browser cannot decode is decoded by the server: right frames on scrub, step and play', { timeout: 120_000, skip: !hasEncoder('libx265') && 'ffmpeg with libx265 is not installed' }, async (t) => {
  const env = await setup(t);
  const vlog = await hevcRecording(env, 'hevc');
  // The viewer is open before the producer starts and picks the stream up when it comes,
  // following it live. (The import holds the clip in one chunk: it arrives at once.)
  const page = await waitingViewer(env);
  const feeder = await env.newPage();
  await feedFile(feeder, env.addr, vlog);
  await feeder.close();
  const info = await firstVideoInfo(env.base, 'camera/b');
  assert.equal(info.codec, 'H.265');
  assert.equal(info.samples, FRAMES);
  const byRank = [...info.pts].sort((a, b) => a - b);

  if (!serverDecodesH265()) {
    // Built without the feature: the server's reason, naming the feature, is on screen.
    const s = await until(page, 'the server\'s message', (s) => s.error !== null);
    assert.match(s.message, /H\.265 decoding needs the `ffmpeg` feature/);
    await page.screenshot({ path: join(shots, 'h265-no-server-decoder.png') });
    return;
  }
  let s = await until(page, 'the last frame, following live', (s) => s.live && s.shownPts === byRank[FRAMES - 1] && s.settled);
  assert.equal(s.serverDecoded, true);
  assert.equal(await canvasFrameNumber(page), FRAMES - 1);
  s = await until(page, 'the overlay', (s) => /camera\/b  320×240  H\.265 server-decoded \(ffmpeg\)/.test(s.overlay));

  for (const r of [0, 1, 2, 45, 29, 30, 31, 88, 10, 59, 60, 3]) {
    await scrub(page, byRank[r]);
    await until(page, `frame ${r}`, (s) => s.settled && s.shownPts === byRank[r]);
    assert.equal(await canvasFrameNumber(page), r, `scrub to frame ${r}: the canvas shows it`);
  }
  await scrub(page, byRank[26]);
  await until(page, 'frame 26', (s) => s.settled && s.shownPts === byRank[26]);
  for (let r = 27; r <= 33; r++) {
    await page.keyboard.press('ArrowRight');
    await until(page, `step to frame ${r}`, (s) => s.settled && s.shownPts === byRank[r]);
    assert.equal(await canvasFrameNumber(page), r, `step to frame ${r}`);
  }
  for (let r = 32; r >= 28; r--) {
    await page.keyboard.press('ArrowLeft');
    await until(page, `step back to frame ${r}`, (s) => s.settled && s.shownPts === byRank[r]);
    assert.equal(await canvasFrameNumber(page), r, `step back to frame ${r}`);
  }
  await scrub(page, byRank[40]);
  await until(page, 'frame 40', (s) => s.settled && s.shownPts === byRank[40]);
  await page.evaluate(() => window.vidlogViewer.play());
  const seen = [];
  for (let k = 0; k < 400 && (seen.at(-1) ?? 0) < 70; k++) {
    const now = await page.evaluate(() => ({ s: window.vidlogViewer.state(), n: window.vidlogViewer.readCanvasFrameNumber() }));
    if (now.s.shownPts != null) {
      assert.equal(byRank.indexOf(now.s.shownPts), now.n, 'the painted frame is the one the viewer says');
      if (seen.at(-1) !== now.n) seen.push(now.n);
    }
    await new Promise((r) => setTimeout(r, 15));
  }
  await page.evaluate(() => window.vidlogViewer.pause());
  console.log(`server-decoded H.265 playback painted: ${seen.join(' ')}`);
  assert.deepEqual([...seen].sort((a, b) => a - b), seen, 'playback moves forward');
  assert.ok(seen.length >= 5, `playback advanced: ${seen}`);
  assert.equal((await state(page)).error, null);
  await page.screenshot({ path: join(shots, 'h265-server-decoded.png') });
});

test('server-decoded H.265 arriving while the viewer follows it: each new frame is shown as it comes', { timeout: 120_000, skip: (!hasEncoder('libx265') && 'ffmpeg with libx265 is not installed') || (!serverDecodesH265() && 'built without the ffmpeg feature') }, async (t) => {
  const env = await setup(t);
  // Small batches: the import writes many chunks, which the feeder sends 250 ms apart.
  const vlog = await hevcRecording(env, 'hevc-live', { VIDLOG_FLUSH_BYTES: '500' });
  const page = await waitingViewer(env);
  const feeder = await env.newPage();
  const feeding = feedFile(feeder, env.addr, vlog, { paceMs: 250 });
  const painted = [];
  const shown = []; // [pts, frame number on the canvas], checked once the index is complete
  let fed = null;
  feeding.then((r) => { fed = r; });
  for (let k = 0; k < 3000 && fed === null; k++) {
    const now = await page.evaluate(() => ({ s: window.vidlogViewer.state(), n: window.vidlogViewer.readCanvasFrameNumber() }));
    if (now.s.shownPts != null && now.s.settled && now.s.live) {
      assert.equal(now.s.serverDecoded, true);
      if (painted.at(-1) !== now.n) painted.push(now.n);
      shown.push([now.s.shownPts, now.n]);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await feeding;
  await feeder.close();
  console.log(`H.265 live edge painted while arriving (${fed.chunks} chunks): ${painted.join(' ')}`);
  assert.ok(fed.chunks >= 6, `the clip arrived in pieces: ${fed.chunks} chunks`);
  const info = await firstVideoInfo(env.base, 'camera/b');
  const byRank = [...info.pts].sort((a, b) => a - b);
  assert.equal(info.samples, FRAMES);
  for (const [pts, n] of shown) assert.equal(byRank.indexOf(pts), n, 'the painted frame is the one the viewer says');
  const s = await until(page, 'the last frame, following live', (s) => s.live && s.shownPts === byRank[FRAMES - 1] && s.settled);
  assert.equal(s.serverDecoded, true);
  assert.equal(await canvasFrameNumber(page), FRAMES - 1);
  assert.deepEqual([...painted].sort((a, b) => a - b), painted, 'the live edge only moves forward');
  assert.ok(painted.length >= 4 && painted.some((n) => n < FRAMES - 20), `frames were shown while the stream arrived: ${painted}`);
  assert.equal((await state(page)).error, null);
});
