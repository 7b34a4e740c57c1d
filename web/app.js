// The vidlog viewer: the video entities of a recording served by `vidlog serve`,
// composited on one 2D canvas, followed live or played back and scrubbed, plus a table of
// an entity's rows. Plain ES modules, no build step, no network beyond the server that
// serves it. Decoding is the browser's (WebCodecs; see stream.js), or the server's for a
// codec the browser lacks (marked "server-decoded" in the overlay); protocol:
// docs/PROTOCOL.md, "Viewer".
//
// Data: GET /api/recordings (the picker; `?recording=ID` on the page URL picks one, else
// the first with video), GET /api/recordings/{id} (entities and timelines; `?entity=PATH`
// shows only that entity), per entity GET .../video/info, .../video/samples and the
// /ws/view feed, GET .../dataframe for the table, and a link to .../export.mp4.
//
// One playhead `t` on the chosen timeline drives every stream: following live it is the
// newest pts; playing it advances with the clock times the speed; scrubbing sets it. Each
// animation frame asks every stream for the frame at t and paints the ones that have it,
// lowest draw order first.

import { Stream, frames, frameSize } from './stream.js';
import { readFrameNumberRow, frameStripHeight } from './wire.js';
import { Table } from './table.js';

const $ = (id) => document.getElementById(id);
const canvas = $('view');
const ctx = canvas.getContext('2d', { willReadFrequently: true });
const ui = {
  source: $('source'), recordings: $('recordings'), timelines: $('timelines'), entities: $('entities'),
  overlay: $('overlay'), message: $('message'), slider: $('timeline'), time: $('time'), play: $('play'),
  live: $('live'), back: $('back'), forward: $('forward'), speed: $('speed'), download: $('download'),
  tableToggle: $('table-toggle'), table: $('table'),
};

const S = {
  recording: null,
  details: null,
  timeline: null,
  timelineKind: null,
  streams: [], // every video entity of the recording, in entity order
  t: null, // the playhead
  live: true,
  playing: true,
  speed: 1,
  playClock: null, // {from, wall}
  dragging: false,
  error: null,
  framesPainted: 0,
  paintTimes: [],
  latencies: [],
  scrubs: 0,
  range: { from: null, to: null }, // marked with [ and ] (the download's range); Escape clears
};

// ---------- helpers ----------

function say(text) {
  ui.message.textContent = text || '';
}

function fail(text) {
  S.error = text;
  say(text);
  console.error(`vidlog viewer: ${text}`);
}

async function getJSON(url) {
  const response = await fetch(url, { cache: 'no-store' });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${url}: HTTP ${response.status}`);
  return body;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const enabled = () => S.streams.filter((s) => s.enabled && s.decodable);
const primary = () => S.streams.find((s) => s.enabled) ?? null;

function formatPts(pts) {
  if (pts == null) return '–';
  if (S.timelineKind === 'sequence') return `#${pts}`;
  const base = S.timelineKind === 'timestamp' ? (firstPts() ?? 0) : 0;
  return `${((pts - base) / 1e9).toFixed(3)} s`;
}

function firstPts() {
  const values = enabled().map((s) => s.firstPts()).filter((v) => v != null);
  return values.length ? Math.min(...values) : null;
}

function lastPts() {
  const values = enabled().map((s) => s.lastPts()).filter((v) => v != null);
  return values.length ? Math.max(...values) : null;
}

/** Timeline units per millisecond of wall clock at speed 1. */
function unitsPerMs() {
  if (S.timelineKind !== 'sequence') return 1e6;
  return (primary()?.info?.frame_rate || 30) / 1000;
}

// ---------- the playhead ----------

function setLive(live) {
  S.live = live;
  ui.live.checked = live;
  if (live) {
    S.playing = true;
    S.playClock = null;
  }
  updateButtons();
}

function play() {
  if (firstPts() == null) return;
  setLive(false);
  S.playing = true;
  let from = S.t ?? firstPts();
  if (from >= lastPts()) from = firstPts();
  S.t = from;
  S.playClock = { from, wall: performance.now() };
  updateButtons();
}

function pause() {
  setLive(false);
  S.playing = false;
  S.playClock = null;
  updateButtons();
}

function seek(t) {
  pause();
  S.scrubs += 1;
  S.t = Math.min(Math.max(t, firstPts() ?? t), lastPts() ?? t);
  tick();
}

/** One frame forward or back in presentation order of the first shown entity. */
function step(delta) {
  const stream = enabled()[0];
  if (!stream) return;
  const t = stream.neighbourPts(S.t ?? stream.firstPts(), delta);
  if (t != null) seek(t);
}

function setSpeed(speed) {
  if (S.playClock) S.playClock = { from: S.t, wall: performance.now() };
  S.speed = speed;
  ui.speed.value = String(speed);
}

/** Advances the playhead and asks every stream for its frame; paints what is there. */
function tick() {
  const last = lastPts();
  if (S.live) {
    S.t = last;
  } else if (S.playing && S.playClock) {
    const t = S.playClock.from + (performance.now() - S.playClock.wall) * unitsPerMs() * S.speed;
    if (last != null && t > last) {
      if (S.details?.live) setLive(true);
      else {
        pause();
        S.t = last;
      }
    } else {
      S.t = t;
    }
  }
  if (S.t == null) return;
  const paused = !S.live && !S.playing;
  for (const stream of enabled()) stream.want(S.t, paused);
  paint();
}

function loop() {
  tick();
  requestAnimationFrame(loop);
}

// ---------- painting ----------

let lastPainted = '';

function paint() {
  const shown = [];
  for (const stream of enabled()) {
    const target = stream.targetAt(S.t);
    let frame = stream.cache.get(target);
    let index = target;
    // Not decoded yet: keep the frame painted before, if it is still cached.
    if (!frame && stream.shown != null) {
      frame = stream.cache.get(stream.shown);
      index = stream.shown;
    }
    if (frame) shown.push({ stream, frame, index });
  }
  const key = shown.map((s) => `${s.stream.entity}:${s.index}`).join('|');
  if (key === lastPainted || !shown.length) return;
  lastPainted = key;
  const [width, height] = frameSize(shown[0].frame);
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  shown.sort((a, b) => (a.stream.drawOrder ?? 0) - (b.stream.drawOrder ?? 0) || a.stream.order - b.stream.order);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (const { stream, frame, index } of shown) {
    ctx.drawImage(frame, 0, 0, canvas.width, canvas.height);
    const latency = stream.markPainted(index, S.live);
    if (latency != null) {
      S.latencies.push(latency);
      if (S.latencies.length > 10000) S.latencies.splice(0, 5000);
    }
  }
  S.framesPainted += 1;
  S.paintTimes.push(performance.now());
  if (!S.error) say('');
  updateTimeline();
}

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---------- UI ----------

function updateButtons() {
  ui.play.textContent = S.playing ? 'Pause' : 'Play';
}

function updateTimeline() {
  const first = firstPts();
  const last = lastPts();
  if (first == null) return;
  ui.slider.min = String(first);
  ui.slider.max = String(last);
  if (!S.dragging && S.t != null) ui.slider.value = String(S.t);
  const { from, to } = S.range;
  const marked = from != null || to != null ? `  [${formatPts(from ?? first)} – ${formatPts(to ?? last)}]` : '';
  ui.time.textContent = `${formatPts(S.t)} / ${formatPts(last)}${marked}`;
  updateDownload();
}

/** Marks the start (`which` = 'from') or end ('to') of the range at the playhead. */
function mark(which) {
  if (S.t == null) return;
  S.range[which] = S.t;
  const { from, to } = S.range;
  if (from != null && to != null && from > to) S.range = { from: to, to: from };
  updateTimeline();
}

function clearRange() {
  S.range = { from: null, to: null };
  updateTimeline();
}

/**
 * The "Download MP4" link: the first shown entity over the marked range ([ and ] at the
 * playhead), else over its whole stream.
 */
function updateDownload() {
  const stream = primary();
  if (!stream?.info || stream.info.timeline_kind === 'sequence') {
    // An MP4 needs times: a sequence timeline has no unit of time.
    ui.download.removeAttribute('href');
    ui.download.title = stream?.info ? `pick a time timeline to download (${stream.info.timeline} counts, it has no unit of time)` : '';
    return;
  }
  ui.download.title = DOWNLOAD_TITLE;
  const query = new URLSearchParams({ entity: stream.entity, timeline: stream.info.timeline });
  const from = S.range.from ?? stream.firstPts();
  const to = S.range.to ?? stream.lastPts();
  if (from != null) query.set('from', String(from));
  if (to != null) query.set('to', String(to));
  const href = `/api/recordings/${encodeURIComponent(S.recording)}/export.mp4?${query}`;
  if (ui.download.getAttribute('href') !== href) {
    ui.download.setAttribute('href', href);
    ui.download.setAttribute('download', `${S.recording}-${stream.entity.replaceAll('/', '_')}.mp4`);
  }
}

function updateOverlay() {
  const now = performance.now();
  while (S.paintTimes.length && S.paintTimes[0] < now - 1000) S.paintTimes.shift();
  const lines = [];
  for (const stream of S.streams.filter((s) => s.enabled)) {
    const info = stream.info;
    if (!info) continue;
    if (stream.problem) {
      lines.push(`${stream.entity}: cannot decode here`);
      continue;
    }
    const fps = info.frame_rate ? info.frame_rate.toFixed(2) : estimateFps(stream);
    const queued = stream.decoder && stream.decoder.state !== 'closed' ? stream.decoder.decodeQueueSize : 0;
    const latency = stream.latencies.length ? stream.latencies[stream.latencies.length - 1] : null;
    const painted = stream.cache.get(stream.shown);
    const [width, height] = painted ? frameSize(painted) : [info.width, info.height];
    const decoder = stream.serverDecoded
      ? `server-decoded${stream.decoderName ? ` (${stream.decoderName})` : ''}`
      : stream.config?.codec ?? '';
    lines.push(
      `${stream.entity}  ${width ?? '?'}×${height ?? '?'}  ${info.codec ?? '?'} ${decoder}\n` +
      `  fps ${fps}  decode ${stream.decodeMs == null ? '–' : stream.decodeMs.toFixed(1) + ' ms'}  ` +
      `buffered ${stream.cache.size} frames, ${queued} queued\n` +
      `  latency ${S.live && latency != null ? latency.toFixed(1) + ' ms' : '–'}  ` +
      `sample ${stream.shown ?? '–'} of ${stream.samples}`,
    );
  }
  lines.push(`${S.paintTimes.length} paints/s  ${S.live ? 'LIVE' : S.playing ? `playing ×${S.speed}` : 'paused'}`);
  ui.overlay.textContent = lines.join('\n');
}

function estimateFps(stream) {
  const order = stream.presentationOrder();
  if (order.length < 2 || S.timelineKind === 'sequence') return '–';
  const n = Math.min(order.length, 60);
  const span = order[order.length - 1][0] - order[order.length - n][0];
  return span > 0 ? ((n - 1) / (span / 1e9)).toFixed(2) : '–';
}

function bindUi() {
  ui.slider.addEventListener('pointerdown', () => {
    S.dragging = true;
  });
  window.addEventListener('pointerup', () => {
    S.dragging = false;
  });
  ui.slider.addEventListener('input', () => seek(Number(ui.slider.value)));
  ui.play.addEventListener('click', () => (S.playing ? pause() : play()));
  ui.back.addEventListener('click', () => step(-1));
  ui.forward.addEventListener('click', () => step(1));
  ui.live.addEventListener('change', () => (ui.live.checked ? setLive(true) : pause()));
  ui.speed.addEventListener('change', () => setSpeed(Number(ui.speed.value)));
  ui.recordings.addEventListener('change', () => {
    location.search = new URLSearchParams({ recording: ui.recordings.value }).toString();
  });
  ui.timelines.addEventListener('change', () => switchTimeline(ui.timelines.value));
  ui.tableToggle.addEventListener('click', () => {
    const open = ui.table.hidden;
    ui.table.hidden = !open;
    if (open) table.show(S.recording, primary()?.entity, S.timeline);
  });
  window.addEventListener('keydown', (event) => {
    const target = event.target;
    if (target instanceof HTMLSelectElement) return;
    if (target instanceof HTMLInputElement && target.type !== 'range' && target.type !== 'checkbox') return;
    if (event.key === 'ArrowLeft') step(-1);
    else if (event.key === 'ArrowRight') step(1);
    else if (event.key === ' ') S.playing ? pause() : play();
    else if (event.key === 'Home') seek(firstPts() ?? 0);
    else if (event.key === 'End') seek(lastPts() ?? 0);
    else if (event.key === 'l' || event.key === 'L') setLive(true);
    else if (event.key === '[') mark('from');
    else if (event.key === ']') mark('to');
    else if (event.key === 'Escape') clearRange();
    else return;
    event.preventDefault();
  });
  setInterval(updateOverlay, 250);
}

const table = new Table(ui.table);
const DOWNLOAD_TITLE = ui.download.title;

// ---------- recording, entities, timeline ----------

/** The recording to show: ?recording=ID, else the first with a video entity; waits for one. */
async function pickRecording() {
  const wanted = new URLSearchParams(location.search).get('recording');
  for (;;) {
    try {
      const recordings = await getJSON('/api/recordings');
      fillRecordings(recordings, wanted);
      for (const recording of recordings.filter((r) => !wanted || r.id === wanted)) {
        const details = await getJSON(`/api/recordings/${encodeURIComponent(recording.id)}`);
        if (details.entity_details.some((e) => e.video && e.video.samples > 0)) {
          ui.recordings.value = recording.id;
          return details;
        }
      }
      say(recordings.length
        ? 'Waiting for video samples…'
        : `Waiting for a recording… (log one, e.g. \`vidlog demo --connect ${location.host}\`)`);
    } catch (error) {
      say(`Waiting for the server… (${error.message})`);
    }
    await sleep(500);
  }
}

function fillRecordings(recordings, wanted) {
  const ids = recordings.map((r) => r.id);
  if (ids.join('\n') === [...ui.recordings.options].map((o) => o.value).join('\n')) return;
  ui.recordings.replaceChildren(...recordings.map((r) => new Option(`${r.id}${r.live ? ' (live)' : ''}`, r.id)));
  if (wanted) ui.recordings.value = wanted;
}

/** The entity tree: every video entity with a checkbox, indented by path depth. */
function fillEntities() {
  ui.entities.replaceChildren(...S.streams.map((stream) => {
    const label = document.createElement('label');
    label.style.paddingLeft = `${(stream.entity.split('/').length - 1) * 12}px`;
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = stream.enabled;
    box.dataset.entity = stream.entity;
    box.addEventListener('change', () => {
      stream.enabled = box.checked;
      if (box.checked) stream.want(S.t ?? stream.lastPts(), !S.playing);
      lastPainted = '';
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      paint();
    });
    label.append(box, ` ${stream.entity}`);
    return label;
  }));
}

function fillTimelines() {
  const names = S.details.timelines.map((t) => t.name);
  ui.timelines.replaceChildren(...names.map((n) => new Option(n, n)));
  ui.timelines.value = S.timeline;
}

/** Opens every video entity of the recording on `timeline` (the server's default if null). */
async function openStreams(timeline) {
  for (const stream of S.streams) stream.close();
  const wantedEntity = new URLSearchParams(location.search).get('entity');
  const videos = S.details.entity_details.filter((e) => e.video && e.video.samples > 0);
  S.streams = videos.map((e, order) => {
    const stream = new Stream({
      recording: S.recording,
      entity: e.path,
      order,
      // Following live, a new sample is fed and a new frame painted at once, not at the
      // next animation frame (latency); fetched samples are fed at once too.
      onChange: (what) => {
        if (S.live || what === 'fetched' || what === 'flushed') tick();
      },
      onError: (text) => fail(text),
    });
    stream.enabled = wantedEntity ? e.path === wantedEntity : true;
    return stream;
  });
  if (!S.streams.some((s) => s.enabled) && S.streams.length) S.streams[0].enabled = true;
  S.error = null;
  for (const stream of S.streams) {
    for (;;) {
      try {
        await stream.load(timeline);
        if (stream.info.keyframes.length) break;
        say(`Waiting for a keyframe of ${stream.entity}…`);
      } catch (error) {
        if (timeline) {
          stream.problem = error.message;
          break;
        }
        say(`Waiting for ${stream.entity}… (${error.message})`);
      }
      await sleep(500);
    }
  }
  const first = S.streams.find((s) => s.enabled && s.info) ?? S.streams.find((s) => s.info);
  S.timeline = first?.info?.timeline ?? timeline;
  S.timelineKind = first?.info?.timeline_kind ?? null;
  fillEntities();
  fillTimelines();
  const problems = S.streams.filter((s) => s.enabled && s.problem).map((s) => s.problem);
  if (problems.length) fail(problems.join('\n'));
  else say('Waiting for frames…');
  if (first?.info?.width && first.info.height) {
    canvas.width = first.info.width;
    canvas.height = first.info.height;
  }
  for (const stream of S.streams) if (stream.decodable) stream.follow();
  lastPainted = '';
  setLive(true);
  updateTimeline();
}

async function switchTimeline(name) {
  if (name === S.timeline) return;
  S.range = { from: null, to: null }; // in the old timeline's units
  await openStreams(name);
}

async function main() {
  bindUi();
  S.details = await pickRecording();
  S.recording = S.details.id;
  ui.source.textContent = S.recording;
  await openStreams(null);
  requestAnimationFrame(loop);
}

// ---------- test and automation hooks ----------

/** The frame number (synth.rs pattern) in `entityIndex`'s painted frame, read from pixels. */
function readFrameNumber(entityIndex = 0) {
  const stream = enabled()[entityIndex];
  const frame = stream && stream.cache.get(stream.shown);
  if (!frame) return null;
  const [width, frameHeight] = frameSize(frame);
  const height = frameStripHeight(frameHeight);
  const scratch = new OffscreenCanvas(width, height);
  const c = scratch.getContext('2d', { willReadFrequently: true });
  c.drawImage(frame, 0, 0, width, frameHeight);
  const row = c.getImageData(0, Math.floor(height / 2), width, 1).data;
  return readFrameNumberRow(row, width);
}

/** The frame number read from the composited canvas itself. */
function readCanvasFrameNumber() {
  const height = frameStripHeight(canvas.height);
  const row = ctx.getImageData(0, Math.floor(height / 2), canvas.width, 1).data;
  return readFrameNumberRow(row, canvas.width);
}

window.vidlogViewer = {
  state() {
    const first = enabled()[0] ?? primary();
    return {
      recording: S.recording,
      entity: first?.entity ?? null,
      entities: S.streams.map((s) => ({ entity: s.entity, enabled: !!s.enabled, shownIndex: s.shown, problem: s.problem })),
      codec: first?.config?.codec ?? null,
      serverDecoded: !!first?.serverDecoded,
      overlay: ui.overlay.textContent,
      timeline: S.timeline,
      samples: first?.samples ?? 0,
      t: S.t,
      shownPts: first && first.shown != null ? first.pts[first.shown] : null,
      shownIndex: first?.shown ?? null,
      // The frame at the playhead is painted for every entity shown (not an older one of
      // any of them while it decodes).
      settled: !!first && first.shown != null && first.shown === first.targetAt(S.t)
        && enabled().every((s) => s.shown != null && s.shown === s.targetAt(S.t)),
      frames: S.framesPainted,
      decoded: S.streams.reduce((n, s) => n + s.decoded, 0),
      sessions: S.streams.reduce((n, s) => n + s.sessions, 0),
      cached: S.streams.reduce((n, s) => n + s.cache.size, 0),
      openFrames: frames.open,
      live: S.live,
      playing: S.playing,
      speed: S.speed,
      seeking: !!first && (first.fetching !== null || first.shown !== first.targetAt(S.t)),
      latency: { count: S.latencies.length, p50: percentile(S.latencies, 50), p99: percentile(S.latencies, 99) },
      error: S.error,
      message: ui.message.textContent,
      download: ui.download.getAttribute('href'),
      range: { ...S.range },
    };
  },
  /** Per-stream decoder internals, for diagnosing a test failure. */
  streams: () => S.streams.map((s) => ({
    entity: s.entity, session: s.session && { ...s.session }, pending: [...s.pending.values()].map((m) => m.index),
    cache: [...s.cache.keys()].sort((a, b) => a - b), target: S.t == null ? null : s.targetAt(S.t),
    fetching: s.fetching !== null, data: s.data.size, decoder: s.decoder?.state ?? null,
  })),
  seek,
  step,
  play,
  pause,
  setSpeed,
  goLive: () => setLive(true),
  readFrameNumber,
  readCanvasFrameNumber,
  /** Opens the table of the first shown entity; resolves once its first page is in. */
  async openTable() {
    ui.table.hidden = false;
    await table.show(S.recording, primary()?.entity, S.timeline);
    return { total: table.total, columns: table.columns.map((c) => c.name) };
  },
  /** Scrolls the table to row `i`; resolves with the row indexes rendered once in. */
  async scrollTableTo(i) {
    table.scrollToRow(i);
    for (let tries = 0; tries < 100; tries++) {
      const rows = [...ui.table.querySelectorAll('.df-row')].map((r) => Number(r.dataset.row));
      if (rows.includes(i)) return rows;
      await sleep(50);
    }
    return [...ui.table.querySelectorAll('.df-row')].map((r) => Number(r.dataset.row));
  },
  /** Clears the latency figures (a benchmark's warm-up). */
  resetLatency() {
    S.latencies = [];
  },
};

main().catch((error) => fail(`viewer: ${error.message}`));
