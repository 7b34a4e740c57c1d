// VP9 in the viewer: ffmpeg draws the frame-number pattern (harness.mjs), libvpx encodes it
// (a keyframe every 30 frames), `vidlog import` reads the MP4's vp09 track, the test feeds
// the recording to the server, and Chromium decodes it with WebCodecs (the codec string the
// server derives from the keyframe header): right frames when following live and on scrubs
// and steps across the GOP boundary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setup, run, until, scrub, feedFile, canvasFrameNumber, ffmpeg, ffmpegPatternFilter, hasEncoder, shots, waitingViewer, firstVideoInfo } from './harness.mjs';

const FRAMES = 60;

test('a VP9 stream is decoded by the browser: live edge, scrubs and steps show the right frames', { timeout: 120_000, skip: !hasEncoder('libvpx-vp9') && 'ffmpeg with libvpx is not installed' }, async (t) => {
  const env = await setup(t);
  const mp4 = join(env.scratch, 'vp9.mp4');
  ffmpeg(['-f', 'lavfi', '-i', ffmpegPatternFilter(320, 240, 30, FRAMES / 30), '-c:v', 'libvpx-vp9',
    '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-g', '30', '-pix_fmt', 'yuv420p', mp4]);
  const vlog = join(env.scratch, 'vp9.vlog');
  await run(['import', mp4, '--entity', 'camera/vp9', '-o', vlog]);
  const page = await waitingViewer(env);
  const feeder = await env.newPage();
  await feedFile(feeder, env.addr, vlog);
  await feeder.close();
  const info = await firstVideoInfo(env.base, 'camera/vp9');
  assert.equal(info.codec, 'VP9');
  assert.equal(info.codec_string, 'vp09.00.20.08');
  assert.equal(info.samples, FRAMES);
  const byRank = [...info.pts].sort((a, b) => a - b);

  let s = await until(page, 'the last frame, following live', (s) => s.live && s.shownPts === byRank[FRAMES - 1] && s.settled);
  assert.equal(s.serverDecoded, false, 'WebCodecs decodes VP9 here');
  assert.equal(await canvasFrameNumber(page), FRAMES - 1);
  await until(page, 'the overlay', (s) => /camera\/vp9  320×240  VP9 /.test(s.overlay));
  for (const r of [0, 29, 30, 31, 12, 45, 1]) {
    await scrub(page, byRank[r]);
    await until(page, `frame ${r}`, (s) => s.settled && s.shownPts === byRank[r]);
    assert.equal(await canvasFrameNumber(page), r, `scrub to frame ${r}`);
  }
  await scrub(page, byRank[27]);
  await until(page, 'frame 27', (s) => s.settled && s.shownPts === byRank[27]);
  for (let r = 28; r <= 32; r++) {
    await page.keyboard.press('ArrowRight');
    await until(page, `step to frame ${r}`, (s) => s.settled && s.shownPts === byRank[r]);
    assert.equal(await canvasFrameNumber(page), r, `step to frame ${r}`);
  }
  s = await until(page, 'no error', (s) => s.error === null);
  await page.screenshot({ path: join(shots, 'vp9.png') });
});
