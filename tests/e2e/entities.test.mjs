// Several video entities in one recording, the timeline picker and the download range:
// two clips that draw different frame numbers (camera/a shows N, camera/b shows 1000 + N)
// are imported as two entities and fed into one recording; the canvas shows the one drawn
// on top (entity order when no draw order is logged), unticking it shows the other, the
// `frame` (sequence) timeline plays the same frames, and the Download MP4 link covers the
// range marked with [ and ] (ffprobe counts the frames of what it serves; a sequence
// timeline has no link: an MP4 needs times).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { setup, run, until, state, scrub, feedFiles, canvasFrameNumber, ffmpeg, ffmpegPatternFilter, hasEncoder, shots } from './harness.mjs';

const FRAMES = 60;
/** Import's pts of frame i on the `time` timeline at 30 fps: round(i * 1e9 / 30) ns. */
const ptsOf = (i) => Math.round((i * 1e9) / 30);

const frameNumbers = (page) => page.evaluate(() => ({
  canvas: window.vidlogViewer.readCanvasFrameNumber(),
  a: window.vidlogViewer.readFrameNumber(0),
  s: window.vidlogViewer.state(),
}));

function ffprobePackets(path) {
  const out = spawnSync('ffprobe', ['-v', 'error', '-count_packets', '-select_streams', 'v:0',
    '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', path], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return Number(out.stdout.trim());
}

test('two entities composite by order, toggle, switch timeline and download the marked range', { timeout: 120_000, skip: !hasEncoder('libx264') && 'ffmpeg with libx264 is not installed' }, async (t) => {
  const env = await setup(t);
  const vlogs = [];
  for (const [entity, first] of [['camera/a', 0], ['camera/b', 1000]]) {
    const name = entity.replace('/', '_');
    const h264 = join(env.scratch, `${name}.h264`);
    ffmpeg(['-f', 'lavfi', '-i', ffmpegPatternFilter(320, 240, 30, FRAMES / 30, first), '-c:v', 'libx264', '-bf', '0',
      '-g', '30', '-pix_fmt', 'yuv420p', '-f', 'h264', h264]);
    const vlog = join(env.scratch, `${name}.vlog`);
    await run(['import', h264, '--entity', entity, '--fps', '30', '-o', vlog]);
    vlogs.push(vlog);
  }
  const feeder = await env.newPage();
  await feedFiles(feeder, env.addr, vlogs);
  await feeder.close();
  const [recording] = await (await fetch(`${env.base}/api/recordings`)).json();
  const page = await env.newPage();
  await page.goto(`${env.base}/?recording=${recording.id}`);

  // Both shown, camera/b (later in entity order) on top.
  let s = await until(page, 'both entities at the end', (s) => s.entities.length === 2 &&
    s.entities.every((e) => e.shownIndex === FRAMES - 1) && s.settled);
  assert.deepEqual(s.entities.map((e) => e.entity), ['camera/a', 'camera/b']);
  let n = await frameNumbers(page);
  assert.equal(n.canvas, 1000 + FRAMES - 1, 'camera/b is drawn over camera/a');
  assert.equal(n.a, FRAMES - 1, 'camera/a has its own frame');

  await scrub(page, ptsOf(20));
  await until(page, 'frame 20 on both', (s) => s.settled && s.entities.every((e) => e.shownIndex === 20));
  assert.equal(await canvasFrameNumber(page), 1020);

  // Unticking the top entity shows the one below; ticking it again puts it back on top.
  await page.click('input[data-entity="camera/b"]');
  s = await until(page, 'camera/b hidden', (s) => !s.entities[1].enabled);
  assert.equal(await canvasFrameNumber(page), 20, 'camera/a shows once camera/b is hidden');
  await page.click('input[data-entity="camera/b"]');
  await until(page, 'camera/b shown', (s) => s.entities[1].enabled && s.entities[1].shownIndex === 20);
  assert.equal(await canvasFrameNumber(page), 1020, 'camera/b is on top again');
  await page.screenshot({ path: join(shots, 'two-entities.png') });

  // Mark frames 10 .. 25 and download: the link covers that range (inclusive), not the
  // whole stream.
  await scrub(page, ptsOf(10));
  await until(page, 'frame 10', (s) => s.settled && s.shownIndex === 10);
  await page.keyboard.press('[');
  await scrub(page, ptsOf(25));
  await until(page, 'frame 25', (s) => s.settled && s.shownIndex === 25);
  await page.keyboard.press(']');
  s = await until(page, 'the marked range', (s) => s.range.to === ptsOf(25));
  assert.deepEqual(s.range, { from: ptsOf(10), to: ptsOf(25) });
  const link = new URL(s.download, env.base);
  assert.equal(link.searchParams.get('entity'), 'camera/a');
  assert.equal(link.searchParams.get('timeline'), 'time');
  assert.equal(link.searchParams.get('from'), String(ptsOf(10)));
  assert.equal(link.searchParams.get('to'), String(ptsOf(25)));
  const mp4 = join(env.scratch, 'range.mp4');
  const response = await fetch(link);
  assert.equal(response.status, 200, `${link}: ${response.status === 200 ? '' : await response.text()}`);
  writeFileSync(mp4, Buffer.from(await response.arrayBuffer()));
  const packets = ffprobePackets(mp4);
  console.log(`download of frames 10..25: ${packets} packets`);
  assert.ok(packets >= 16 && packets <= 26, `the range's frames, not all ${FRAMES}: ${packets}`);
  // Escape clears the marks: the whole stream again.
  await page.keyboard.press('Escape');
  s = await until(page, 'no range', (s) => s.range.from === null);
  const whole = new URL(s.download, env.base);
  assert.equal(whole.searchParams.get('from'), '0');
  assert.equal(whole.searchParams.get('to'), String(ptsOf(FRAMES - 1)));

  // The sequence timeline `frame`: pts are frame numbers; an MP4 needs times, so the link
  // is off there and says why.
  assert.equal(s.timeline, 'time');
  await page.selectOption('#timelines', 'frame');
  await until(page, 'the frame timeline', (s) => s.timeline === 'frame' && s.settled);
  await page.evaluate(() => document.activeElement?.blur());
  await scrub(page, 10);
  s = await until(page, 'frame #10', (s) => s.settled && s.shownIndex === 10);
  assert.equal(s.shownPts, 10);
  assert.equal(await canvasFrameNumber(page), 1010);
  await page.keyboard.press('ArrowRight');
  s = await until(page, 'frame #11', (s) => s.settled && s.shownIndex === 11);
  assert.equal(await canvasFrameNumber(page), 1011);
  assert.equal(s.download, null);
  assert.match(await page.getAttribute('#download', 'title'), /time timeline/);
});
