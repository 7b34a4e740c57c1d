// The vidlog viewer: shows one video entity of a recording served by `vidlog serve`,
// follows it live and scrubs back. Plain ES module, no build step, no network beyond
// the server that serves it. Decoding is the browser's (WebCodecs `VideoDecoder`, Annex B
// access units, no `description`: parameter sets travel in-band on keyframes).
//
// Data: GET /api/recordings (pick the first), GET .../video/info (codec string and the
// stream's index: pts per sample in decode order, keyframes), GET .../video/samples (bytes
// for seeking, decoded from the keyframe before the target), and the /ws/view WebSocket
// (each new sample as it is stored). Protocol: docs/PROTOCOL.md, "Viewer".
//
// Decoder sessions: one VideoDecoder, reset whenever the viewer switches between following
// live, seeking, and playing back; `reset()` drops whatever the previous session had queued.
// Every VideoFrame is closed: frames live in a small cache keyed by decode index (for cheap
// steps back), and evicted ones are closed.

import { parseSamples } from './wire.js';

const $ = (id) => document.getElementById(id);
const canvas = $('view');
const ctx = canvas.getContext('2d');
const ui = {
  source: $('source'), overlay: $('overlay'), message: $('message'), slider: $('timeline'),
  time: $('time'), play: $('play'), live: $('live'), back: $('back'), forward: $('forward'),
};

/** Frames kept decoded around the playhead (each is a VideoFrame, closed on eviction). */
const CACHE_FRAMES = 32;
/** Samples decoded past a seek target, so playback and forward steps hit the cache. */
const DECODE_AHEAD = 15;
/** Largest GOP kept in memory to rejoin the live edge. */
const LIVE_GOP_LIMIT = 1200;

const S = {
  recording: null,
  entity: null,
  info: null,
  config: null,
  recordingLive: false,
  // The stream's index, by decode index.
  pts: [],
  key: [],
  keyframes: [], // sorted decode indexes
  order: [], // [pts, index] in presentation order
  orderDirty: false,
  // What is shown.
  shownPts: null,
  shownIndex: null,
  framesShown: 0,
  framesDecoded: 0,
  live: true,
  playing: true,
  // Decoding.
  decoder: null,
  session: 0,
  sessionKind: null, // 'live' | 'seek'
  onFrame: null,
  pending: new Map(), // chunk timestamp (µs) -> {index, pts, t0, recvAt}
  cache: new Map(), // decode index -> VideoFrame, insertion order = age
  liveGop: [], // samples since the latest keyframe received live
  liveNext: null, // decode index the live session expects next
  seekTarget: null,
  seeking: null,
  playClock: null,
  dragging: false,
  error: null,
  ws: null,
  // Overlay numbers.
  stats: { decodeMs: null, latencyMs: null, shownTimes: [] },
};

// ---------- small helpers ----------

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
  if (!response.ok) {
    const error = new Error(body.error || `${url}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function api(path, params) {
  const query = new URLSearchParams({ entity: S.entity, ...params });
  if (S.info?.timeline) query.set('timeline', S.info.timeline);
  return `/api/recordings/${encodeURIComponent(S.recording)}/video/${path}?${query}`;
}

/** EncodedVideoChunk timestamps are integer µs. */
function toMicros(pts) {
  return S.info.timeline_kind === 'sequence' ? pts : Math.floor(pts / 1000);
}

function formatPts(pts) {
  if (pts == null) return '–';
  if (S.info.timeline_kind === 'sequence') return `#${pts}`;
  const base = S.info.timeline_kind === 'timestamp' ? firstPts() : 0;
  return `${((pts - base) / 1e9).toFixed(3)} s`;
}

// ---------- the stream's index ----------

function addToIndex(index, pts, isKey) {
  const known = S.pts[index] !== undefined;
  S.pts[index] = pts;
  S.key[index] = isKey;
  if (isKey) {
    const at = lowerBound(S.keyframes, index, (k) => k);
    if (S.keyframes[at] !== index) S.keyframes.splice(at, 0, index);
  }
  if (known) {
    S.orderDirty = true;
  } else {
    const last = S.order[S.order.length - 1];
    if (!last || last[0] < pts || (last[0] === pts && last[1] < index)) S.order.push([pts, index]);
    else S.orderDirty = true;
  }
}

function presentation() {
  if (S.orderDirty) {
    S.order = [];
    S.pts.forEach((pts, index) => {
      if (pts !== undefined) S.order.push([pts, index]);
    });
    S.order.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    S.orderDirty = false;
  }
  return S.order;
}

/** First position in sorted `array` whose key is >= `value`. */
function lowerBound(array, value, key) {
  let lo = 0;
  let hi = array.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (key(array[mid]) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First position in sorted `array` whose key is > `value`. */
function upperBound(array, value, key) {
  let lo = 0;
  let hi = array.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (key(array[mid]) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The sample shown at time t: the largest pts <= t (the first sample when t is earlier). */
function targetAt(t) {
  const order = presentation();
  if (!order.length) return null;
  const at = upperBound(order, t, (e) => e[0]);
  return order[Math.max(at - 1, 0)][1];
}

/** The last keyframe at or before decode index `index`. */
function keyframeBefore(index) {
  const at = upperBound(S.keyframes, index, (k) => k);
  return at > 0 ? S.keyframes[at - 1] : null;
}

const firstPts = () => presentation()[0]?.[0] ?? 0;
const lastPts = () => {
  const order = presentation();
  return order.length ? order[order.length - 1][0] : 0;
};

// ---------- decoding ----------

/** Starts a decoder session: whatever an earlier session queued is dropped. */
function newSession(kind, onFrame) {
  if (!S.decoder || S.decoder.state === 'closed') {
    S.decoder = new VideoDecoder({ output: onDecoded, error: onDecoderError });
  } else {
    S.decoder.reset();
  }
  S.decoder.configure(S.config);
  S.pending.clear();
  S.session += 1;
  S.sessionKind = kind;
  S.onFrame = onFrame;
  return S.session;
}

function decode(sample, recvAt) {
  const timestamp = toMicros(sample.pts);
  S.pending.set(timestamp, { index: sample.index, pts: sample.pts, t0: performance.now(), recvAt });
  S.decoder.decode(
    new EncodedVideoChunk({ type: sample.isKey ? 'key' : 'delta', timestamp, data: sample.data }),
  );
}

function onDecoded(frame) {
  const meta = S.pending.get(frame.timestamp);
  S.pending.delete(frame.timestamp);
  if (!meta || !S.onFrame) {
    frame.close();
    return;
  }
  S.framesDecoded += 1;
  S.stats.decodeMs = performance.now() - meta.t0;
  S.onFrame(frame, meta);
}

function onDecoderError(error) {
  // The decoder is closed now; the next session makes a new one.
  fail(`decoding ${S.entity} failed: ${error.message}`);
  S.sessionKind = null;
}

function cachePut(index, frame) {
  const old = S.cache.get(index);
  if (old) {
    old.close();
    S.cache.delete(index);
  }
  S.cache.set(index, frame);
  for (const [i, f] of S.cache) {
    if (S.cache.size <= CACHE_FRAMES) break;
    if (i === S.shownIndex) continue;
    f.close();
    S.cache.delete(i);
  }
}

function show(index, meta) {
  const frame = S.cache.get(index);
  if (!frame) return false;
  if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
    canvas.width = frame.displayWidth;
    canvas.height = frame.displayHeight;
  }
  ctx.drawImage(frame, 0, 0, canvas.width, canvas.height);
  S.shownIndex = index;
  S.shownPts = S.pts[index];
  S.framesShown += 1;
  const now = performance.now();
  S.stats.shownTimes.push(now);
  if (meta?.recvAt != null) S.stats.latencyMs = now - meta.recvAt;
  if (!S.error) say('');
  updateTimeline();
  updateOverlay();
  return true;
}

// ---------- live ----------

function onLiveSample(sample, recvAt) {
  if (sample.index > S.pts.length) refreshIndex(); // samples we have not heard of: refetch
  addToIndex(sample.index, sample.pts, sample.isKey);
  const gop = S.liveGop;
  if (sample.isKey) S.liveGop = [sample];
  else if (gop.length && gop[gop.length - 1].index + 1 === sample.index && gop.length < LIVE_GOP_LIMIT) gop.push(sample);
  else S.liveGop = [];
  if (S.live) decodeLive(sample, recvAt);
  updateTimeline();
}

function decodeLive(sample, recvAt) {
  if (!S.config) return;
  const continues = S.sessionKind === 'live' && sample.index === S.liveNext;
  if (!continues) {
    if (!sample.isKey) return; // wait for a keyframe to (re)start
    newSession('live', liveFrame);
  }
  S.liveNext = sample.index + 1;
  decode(sample, recvAt);
}

function liveFrame(frame, meta) {
  cachePut(meta.index, frame);
  if (S.live) show(meta.index, meta);
}

function goLive() {
  S.live = true;
  S.playing = true;
  S.seekTarget = null;
  S.playClock = null;
  ui.live.checked = true;
  S.sessionKind = null;
  // The live feed starts at a keyframe, so the latest GOP is here once it has said anything.
  for (const sample of S.liveGop) decodeLive(sample, null);
  updateButtons();
}

function connectLive() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = new URLSearchParams({ recording: S.recording, entity: S.entity, timeline: S.info.timeline });
  const ws = new WebSocket(`${scheme}://${location.host}/ws/view?${query}`);
  ws.binaryType = 'arraybuffer';
  S.ws = ws;
  ws.onmessage = (event) => {
    if (!(event.data instanceof ArrayBuffer)) return;
    const recvAt = performance.now();
    try {
      for (const sample of parseSamples(event.data)) onLiveSample(sample, recvAt);
    } catch (error) {
      fail(`live feed: ${error.message}`);
    }
  };
  ws.onclose = (event) => {
    if (event.code === 1008) {
      fail(`the server refused the live feed: ${event.reason}`);
      return;
    }
    // Server restart or network hiccup: come back.
    setTimeout(connectLive, 1000);
  };
}

let refreshing = null;
function refreshIndex() {
  if (refreshing) return refreshing;
  refreshing = getJSON(api('info', {}))
    .then((info) => {
      S.recordingLive = info.live;
      info.pts.forEach((pts, index) => {
        if (S.pts[index] === undefined) addToIndex(index, pts, false);
      });
      for (const k of info.keyframes) addToIndex(k, info.pts[k], true);
    })
    .catch((error) => console.warn(`vidlog viewer: refreshing the index: ${error.message}`))
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

// ---------- seeking and playback ----------

async function fetchSamples(from, to) {
  const out = [];
  while (from < to) {
    const response = await fetch(api('samples', { from, to }), { cache: 'no-store' });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error || `samples ${from}..${to}: HTTP ${response.status}`);
    }
    const samples = parseSamples(await response.arrayBuffer());
    if (!samples.length) break;
    out.push(...samples);
    from = samples[samples.length - 1].index + 1;
  }
  return out;
}

/** Shows the frame at time t (largest pts <= t). Requests made while one runs coalesce. */
function seekTo(t) {
  S.seekTarget = t;
  if (!S.seeking) {
    S.seeking = (async () => {
      while (S.seekTarget !== null) {
        const target = S.seekTarget;
        S.seekTarget = null;
        try {
          await seekOnce(target);
        } catch (error) {
          fail(`seeking to ${formatPts(target)}: ${error.message}`);
        }
      }
    })().finally(() => {
      S.seeking = null;
    });
  }
  return S.seeking;
}

async function seekOnce(t) {
  const target = targetAt(t);
  if (target == null || !S.config) return;
  if (show(target)) return;
  const keyframe = keyframeBefore(target);
  if (keyframe == null) {
    fail(`no keyframe before sample ${target}: frames before the first keyframe cannot be decoded`);
    return;
  }
  const end = Math.min(target + 1 + DECODE_AHEAD, S.pts.length);
  const samples = await fetchSamples(keyframe, end);
  if (S.live) return; // went live meanwhile
  const session = newSession('seek', (frame, meta) => cachePut(meta.index, frame));
  for (const sample of samples) decode(sample, null);
  try {
    await S.decoder.flush();
  } catch {
    return; // another session reset the decoder
  }
  if (session !== S.session || S.live) return;
  if (!show(target)) fail(`sample ${target} did not decode`);
}

function startPlayback() {
  const order = presentation();
  if (!order.length) return;
  S.live = false;
  S.playing = true;
  ui.live.checked = false;
  let from = S.shownPts ?? order[0][0];
  if (from >= lastPts()) from = order[0][0];
  S.playClock = { from, wall: performance.now() };
  updateButtons();
  requestAnimationFrame(playTick);
}

function playTick() {
  if (!S.playing || S.live || !S.playClock) return;
  const elapsedMs = performance.now() - S.playClock.wall;
  const perMs = S.info.timeline_kind === 'sequence' ? (S.info.frame_rate || 30) / 1000 : 1e6;
  const t = S.playClock.from + elapsedMs * perMs;
  if (t > lastPts()) {
    if (S.recordingLive) {
      goLive();
      return;
    }
    pause();
    seekTo(lastPts());
    return;
  }
  if (!S.seeking && targetAt(t) !== S.shownIndex) seekTo(t);
  requestAnimationFrame(playTick);
}

function pause() {
  S.playing = false;
  S.live = false;
  S.playClock = null;
  ui.live.checked = false;
  updateButtons();
}

function step(delta) {
  const order = presentation();
  if (!order.length) return Promise.resolve();
  pause();
  let at = order.findIndex((e) => e[1] === S.shownIndex);
  if (at < 0) at = Math.max(upperBound(order, S.shownPts ?? 0, (e) => e[0]) - 1, 0);
  const next = order[Math.min(Math.max(at + delta, 0), order.length - 1)];
  return seekTo(next[0]);
}

function scrub(t) {
  pause();
  return seekTo(t);
}

// ---------- UI ----------

function updateButtons() {
  ui.play.textContent = S.playing ? 'Pause' : 'Play';
}

function updateTimeline() {
  if (!S.info) return;
  const order = presentation();
  if (!order.length) return;
  ui.slider.min = String(firstPts());
  ui.slider.max = String(lastPts());
  if (!S.dragging && S.shownPts != null) ui.slider.value = String(S.shownPts);
  ui.time.textContent = `${formatPts(S.shownPts)} / ${formatPts(lastPts())}`;
}

function updateOverlay() {
  const now = performance.now();
  const times = S.stats.shownTimes;
  while (times.length && times[0] < now - 1000) times.shift();
  const info = S.info;
  const lines = [];
  if (info) {
    lines.push(`${canvas.width}×${canvas.height}  ${info.codec ?? '?'} ${S.config?.codec ?? ''}`);
    const streamFps = info.frame_rate ? `${info.frame_rate.toFixed(2)}` : estimateFps();
    lines.push(`fps ${times.length} shown/s, stream ${streamFps}`);
    lines.push(`decode ${S.stats.decodeMs == null ? '–' : S.stats.decodeMs.toFixed(1) + ' ms'}`);
    const queued = S.decoder && S.decoder.state !== 'closed' ? S.decoder.decodeQueueSize : 0;
    lines.push(`buffered ${S.cache.size} frames, ${queued} queued`);
    lines.push(`latency ${S.live && S.stats.latencyMs != null ? S.stats.latencyMs.toFixed(1) + ' ms (received → shown)' : '–'}`);
    lines.push(`sample ${S.shownIndex ?? '–'} of ${S.pts.length}  ${S.live ? 'LIVE' : S.playing ? 'playing' : 'paused'}`);
  }
  ui.overlay.textContent = lines.join('\n');
}

function estimateFps() {
  const order = presentation();
  if (order.length < 2 || S.info.timeline_kind === 'sequence') return '–';
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
  ui.slider.addEventListener('input', () => scrub(Number(ui.slider.value)));
  ui.play.addEventListener('click', () => (S.playing ? pause() : startPlayback()));
  ui.back.addEventListener('click', () => step(-1));
  ui.forward.addEventListener('click', () => step(1));
  ui.live.addEventListener('change', () => (ui.live.checked ? goLive() : pause()));
  window.addEventListener('keydown', (event) => {
    if (event.target instanceof HTMLInputElement && event.target.type !== 'range' && event.target.type !== 'checkbox') return;
    if (event.key === 'ArrowLeft') step(-1);
    else if (event.key === 'ArrowRight') step(1);
    else if (event.key === ' ') S.playing ? pause() : startPlayback();
    else if (event.key === 'l' || event.key === 'L') goLive();
    else return;
    event.preventDefault();
  });
  setInterval(updateOverlay, 250);
}

// ---------- start ----------

/** The first recording with a video entity (or ?recording=&entity= from the URL). */
async function pickStream() {
  const params = new URLSearchParams(location.search);
  for (;;) {
    try {
      const recordings = await getJSON('/api/recordings');
      const wanted = params.get('recording');
      const candidates = wanted ? recordings.filter((r) => r.id === wanted) : recordings;
      for (const recording of candidates) {
        const details = await getJSON(`/api/recordings/${encodeURIComponent(recording.id)}`);
        const videos = details.entity_details.filter((e) => e.video && e.video.samples > 0);
        const entity = videos.find((e) => e.path === params.get('entity')) ?? videos[0];
        if (entity) return { recording: recording.id, entity: entity.path };
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

/** The decoder configuration, or a reason the stream cannot be shown here. */
async function decoderConfig(info) {
  let codec = info.codec_string;
  if (!codec && info.codec === 'H.265') codec = 'hev1.1.6.L93.B0'; // ask the browser anyway
  if (!codec) return { problem: `cannot show ${info.entity}: ${info.codec_problem}` };
  const config = { codec, optimizeForLatency: true };
  if (info.width && info.height) {
    config.codedWidth = info.width;
    config.codedHeight = info.height;
  }
  let support;
  try {
    support = await VideoDecoder.isConfigSupported(config);
  } catch (error) {
    return { problem: `${info.codec} (${codec}): ${error.message}` };
  }
  if (!support.supported) {
    return {
      problem: `This browser cannot decode ${info.codec ?? codec} video (${codec}) with WebCodecs. ` +
        'Export the recording to MP4, or use a browser with a decoder for it ' +
        '(headless Chromium decodes H.264, AV1 and VP9, not H.265).',
    };
  }
  return { config: support.config ?? config };
}

async function main() {
  bindUi();
  if (typeof VideoDecoder === 'undefined') {
    fail('This browser has no WebCodecs VideoDecoder. Use a current Chrome, Edge or Safari, ' +
      'over https or on localhost (WebCodecs needs a secure context).');
    return;
  }
  const { recording, entity } = await pickStream();
  S.recording = recording;
  S.entity = entity;
  ui.source.textContent = `${recording} · ${entity}`;
  for (;;) {
    S.info = await getJSON(api('info', {})).catch((error) => ({ error }));
    if (!S.info.error && S.info.keyframes.length) break;
    say(S.info.error ? `Waiting for ${entity}… (${S.info.error.message})` : `Waiting for a keyframe of ${entity}…`);
    S.info = null;
    await sleep(500);
  }
  const info = S.info;
  S.recordingLive = info.live;
  info.pts.forEach((pts, index) => addToIndex(index, pts, false));
  for (const k of info.keyframes) addToIndex(k, info.pts[k], true);
  if (info.width && info.height) {
    canvas.width = info.width;
    canvas.height = info.height;
  }
  updateTimeline();
  const { config, problem } = await decoderConfig(info);
  if (problem) {
    fail(problem);
    return;
  }
  S.config = config;
  say('Waiting for frames…');
  connectLive();
  goLive();
}

window.vidlogViewer = {
  state() {
    return {
      recording: S.recording,
      entity: S.entity,
      codec: S.config?.codec ?? null,
      timeline: S.info?.timeline ?? null,
      samples: S.pts.length,
      shownPts: S.shownPts,
      shownIndex: S.shownIndex,
      frames: S.framesShown,
      decoded: S.framesDecoded,
      cached: S.cache.size,
      live: S.live,
      playing: S.playing,
      seeking: S.seeking !== null,
      error: S.error,
      message: ui.message.textContent,
    };
  },
  /** Shows the frame at `t` (pts units of the timeline) and resolves once shown. */
  seek: (t) => scrub(t),
  step,
  goLive,
  play: startPlayback,
  pause,
};

main().catch((error) => fail(`viewer: ${error.message}`));
