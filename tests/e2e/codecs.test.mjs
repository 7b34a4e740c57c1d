// VP9 and AV1 in the viewer: ffmpeg draws the frame-number pattern (harness.mjs), libvpx or
// SVT-AV1 / libaom encodes it (a keyframe every 30 frames), `vidlog import` reads the MP4's
// vp09 / av01 track, the test feeds the recording to the server, and Chromium decodes it with
// WebCodecs (the codec string the server derives from the keyframe header or sequence
// header): right frames when following live and on scrubs and steps across the GOP boundary;
// the viewer's "Download MP4" link gives an MP4 (vp09 / av01) FFmpeg decodes every frame of.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { setup, run, until, scrub, feedFile, canvasFrameNumber, ffmpeg, ffmpegPatternFilter, hasEncoder, shots, waitingViewer, firstVideoInfo } from './harness.mjs';

const FRAMES = 60;

const CODECS = [
  {
    name: 'VP9', entity: 'camera/vp9', encoder: 'libvpx-vp9',
    args: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-g', '30'],
    codecString: /^vp09\.00\.20\.08$/,
  },
  {
    name: 'AV1', entity: 'camera/av1', encoder: hasEncoder('libsvtav1') ? 'libsvtav1' : 'libaom-av1',
    args: hasEncoder('libsvtav1')
      ? ['-c:v', 'libsvtav1', '-preset', '12', '-g', '30']
      : ['-c:v', 'libaom-av1', '-cpu-used', '8', '-g', '30'],
    codecString: /^av01\.0\.\d\dM\.08$/,
  },
];

for (const codec of CODECS) {
  test(`${codec.name} is decoded by the browser: live edge, scrubs and steps show the right frames`, { timeout: 120_000, skip: !hasEncoder(codec.encoder) && `ffmpeg with ${codec.encoder} is not installed` }, async (t) => {
    const env = await setup(t);
    const mp4 = join(env.scratch, `${codec.name}.mp4`);
    ffmpeg(['-f', 'lavfi', '-i', ffmpegPatternFilter(320, 240, 30, FRAMES / 30), ...codec.args, '-pix_fmt', 'yuv420p', mp4]);
    const vlog = join(env.scratch, `${codec.name}.vlog`);
    await run(['import', mp4, '--entity', codec.entity, '-o', vlog]);
    const page = await waitingViewer(env);
    const feeder = await env.newPage();
    await feedFile(feeder, env.addr, vlog);
    await feeder.close();
    const info = await firstVideoInfo(env.base, codec.entity);
    assert.equal(info.codec, codec.name);
    assert.match(info.codec_string, codec.codecString);
    assert.equal(info.samples, FRAMES);
    const byRank = [...info.pts].sort((a, b) => a - b);

    const s = await until(page, 'the last frame, following live', (s) => s.live && s.shownPts === byRank[FRAMES - 1] && s.settled);
    assert.equal(s.serverDecoded, false, `WebCodecs decodes ${codec.name} here`);
    assert.equal(await canvasFrameNumber(page), FRAMES - 1);
    await until(page, 'the overlay', (s) => s.overlay.includes(`${codec.entity}  320×240  ${codec.name} `));
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
    const done = await until(page, 'no error', (s) => s.error === null);
    await page.screenshot({ path: join(shots, `${codec.name.toLowerCase()}.png`) });

    // Download MP4: the whole stream, decoded by FFmpeg frame for frame.
    const response = await fetch(new URL(done.download, env.base));
    assert.equal(response.status, 200, response.status === 200 ? '' : await response.text());
    const downloaded = join(env.scratch, `${codec.name}-download.mp4`);
    writeFileSync(downloaded, Buffer.from(await response.arrayBuffer()));
    const probe = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0',
      '-show_entries', 'stream=codec_name,nb_read_frames', '-of', 'json', downloaded], { encoding: 'utf8' });
    assert.equal(probe.status, 0, probe.stderr);
    const [stream] = JSON.parse(probe.stdout).streams;
    assert.equal(stream.codec_name, codec.name.toLowerCase());
    assert.equal(Number(stream.nb_read_frames), FRAMES, 'every frame decodes from the download');
  });
}
