// The dataframe view with a long table: a 100,000-sample stream (tiny frames made with
// ffmpeg, imported, fed to the server), the table's row count, and rows rendered far down
// after scrolling (virtual scrolling: only rows in view exist as elements).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setup, run, until, feedFile, ffmpeg, hasEncoder, shots } from './harness.mjs';

const ROWS = 100_000;

test('the dataframe view pages 100,000 rows', { timeout: 120_000, skip: !hasEncoder('libx264') && 'ffmpeg with libx264 is not installed' }, async (t) => {
  const env = await setup(t);
  const h264 = join(env.scratch, 'long.h264');
  const vlog = join(env.scratch, 'long.vlog');
  ffmpeg(['-f', 'lavfi', '-i', `color=c=gray:s=16x16:r=1000,format=yuv420p`, '-frames:v', String(ROWS),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '250', '-bf', '0', '-f', 'h264', h264]);
  await run(['import', h264, '--entity', 'long/cam', '--fps', '1000', '-o', vlog]);
  const feeder = await env.newPage();
  await feedFile(feeder, env.addr, vlog);
  await feeder.close();

  const page = await env.newPage();
  await page.goto(`${env.base}/`);
  await until(page, 'the stream', (s) => s.samples === ROWS && s.frames > 0, 60_000);
  const table = await page.evaluate(() => window.vidlogViewer.openTable());
  assert.equal(table.total, ROWS);
  // `vidlog import` logs a `time` (duration) and a `frame` (sequence) timeline.
  assert.deepEqual(table.columns, ['index', 'time', 'frame', 'size', 'keyframe', 'codec', 'row_id']);
  const column = (name) => table.columns.indexOf(name);

  for (const target of [50_000, 99_990, 250]) {
    const rendered = await page.evaluate((i) => window.vidlogViewer.scrollTableTo(i), target);
    assert.ok(rendered.includes(target), `row ${target} is rendered after scrolling to it: ${rendered.slice(0, 5)}…`);
    assert.ok(rendered.length < 100, `only rows in view exist as elements (${rendered.length})`);
    const text = await page.textContent(`.df-row[data-row="${target}"] span:first-child`);
    assert.equal(text, String(target), 'the row shows its index');
  }
  // Keyframe flags: every 250th row (x264 -g 250, no scenecut in a flat picture).
  const keyRow = await page.evaluate(async () => {
    await window.vidlogViewer.scrollTableTo(50_000);
    return [...document.querySelectorAll('.df-row[data-row="50000"] span')].map((s) => s.textContent);
  });
  assert.equal(keyRow[0], '50000');
  assert.equal(keyRow[column('keyframe')], 'yes', `row 50000 is a keyframe: ${keyRow}`);
  assert.equal(keyRow[column('codec')], 'H.264');
  assert.equal(keyRow[column('frame')], '50000');
  await page.screenshot({ path: join(shots, 'dataframe.png') });
});
