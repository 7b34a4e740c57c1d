// One video entity in the viewer: its index (pts per sample in decode order, keyframes,
// row ids), the sample bytes it holds, its WebCodecs decoder and its cache of decoded
// frames. The app asks `want(t)` for the frame at time t; the stream decodes towards it,
// and the app paints `cache.get(targetAt(t))` once it is there.
//
// Decoding is continuous: one decoder session starts at a keyframe and is fed the next
// samples in decode order (chunk timestamp = the sample's pts in µs), so forward play and
// live follow never re-seek. Frames come out in presentation order (B-frames) and go into
// a cache keyed by decode index; the frame shown at t is the cached one with the largest
// pts <= t. A target the running session cannot reach cheaply (behind it, or past a later
// keyframe) starts a new session at the keyframe before the target. A backward scrub
// inside the cached window needs no decoding. Every VideoFrame is closed when evicted
// (the cache is bounded by count and bytes); `frames.open` counts those not yet closed.
//
// Server-decoded fallback: when WebCodecs cannot decode the codec here (H.265 in Linux
// Chromium), the stream asks the server for the frame at t instead
// (GET .../video/frame?sample=I&session=S: a JPEG the server decodes natively; at most two
// requests in flight, the frame at t and, playing, the next) and caches the ImageBitmaps in the same cache, so scrubbing,
// stepping, playing and live follow behave the same. The session id keeps one decoder on
// the server for this stream, so forward play costs one decode per frame there.

import { parseSamples } from './wire.js';

/** Decoded frames kept per stream, and their byte bound. */
const CACHE_FRAMES = 48;
const CACHE_BYTES = 256 << 20;
/** Samples fed past the target so frames held for reordering come out. */
const DECODE_AHEAD = 8;
/** Sample bytes kept per stream (live arrivals and fetched ranges). */
const DATA_SAMPLES = 2400;
/** Frame requests in flight per server-decoded stream. */
const SERVER_REQUESTS = 2;
/** A target the decoder still holds (paused, or at the end) is flushed out after this long. */
const FLUSH_AFTER_MS = 250;

/** Opened and closed VideoFrames over all streams (no growth per scrub: check it). */
export const frames = { opened: 0, closed: 0, get open() { return this.opened - this.closed; } };

function closeFrame(frame) {
  frame.close();
  frames.closed += 1;
}

/** First position in sorted `array` whose key is > `value`. */
export function upperBound(array, value, key) {
  let lo = 0;
  let hi = array.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (key(array[mid]) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class Stream {
  constructor({ recording, entity, order, onChange, onError }) {
    this.recording = recording;
    this.entity = entity;
    this.order = order; // entity order, for compositing when no draw order was logged
    this.onChange = onChange; // a frame became available: repaint
    this.onError = onError;
    this.info = null;
    this.config = null;
    this.problem = null;
    this.pts = [];
    this.key = [];
    this.rowIds = [];
    this.keyframes = [];
    this.presentation = [];
    this.orderDirty = false;
    this.data = new Map(); // decode index -> sample {index, isKey, pts, rowId, data}
    this.cache = new Map(); // decode index -> VideoFrame
    this.cacheBytes = 0;
    this.decoder = null;
    this.session = null; // {id, start, fed, flushed}
    this.sessions = 0;
    this.pending = new Map(); // chunk timestamp (µs) -> {index, t0}
    this.fetching = null;
    this.flushTimer = null;
    this.flushFor = null; // {session, target} a flush is timed for
    this.shown = null; // decode index painted last
    this.painted = new Set(); // decode indexes whose latency was measured
    this.latencies = [];
    this.decodeMs = null;
    this.decoded = 0;
    this.live = false;
    this.ws = null;
    this.closed = false;
    this.serverDecoded = false; // the server decodes: see the file's comment
    this.serverSession = Math.random().toString(36).slice(2);
    this.frameRequests = new Set(); // decode indexes asked of the server, in flight
    this.decoderName = null; // the server's decoder backend
  }

  /** Frames can be had: by WebCodecs here, or from the server. */
  get decodable() {
    return !!this.config || this.serverDecoded;
  }

  get drawOrder() {
    return this.info?.draw_order ?? null;
  }

  api(path, params) {
    const query = new URLSearchParams({ entity: this.entity, ...params });
    if (this.info?.timeline) query.set('timeline', this.info.timeline);
    return `/api/recordings/${encodeURIComponent(this.recording)}/${path}?${query}`;
  }

  /** Loads the index (`timeline` or the server's default) and checks the codec here. */
  async load(timeline) {
    const query = new URLSearchParams({ entity: this.entity });
    if (timeline) query.set('timeline', timeline);
    const response = await fetch(`/api/recordings/${encodeURIComponent(this.recording)}/video/info?${query}`, { cache: 'no-store' });
    const info = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(info.error || `video info of ${this.entity}: HTTP ${response.status}`);
    this.info = info;
    this.addIndex(info);
    const { config, problem, fallback } = await decoderConfig(info);
    this.config = config ?? null;
    this.serverDecoded = !config && !!fallback;
    this.problem = this.serverDecoded ? null : problem ?? null;
  }

  addIndex(info) {
    info.pts.forEach((pts, index) => {
      if (this.pts[index] === undefined) this.addSample(index, pts, false, null);
    });
    for (const k of info.keyframes) this.addSample(k, info.pts[k], true, null);
  }

  addSample(index, pts, isKey, rowId) {
    const known = this.pts[index] !== undefined;
    this.pts[index] = pts;
    if (rowId != null) this.rowIds[index] = rowId;
    if (isKey || !known) this.key[index] = isKey;
    if (isKey) {
      const at = upperBound(this.keyframes, index - 1, (k) => k);
      if (this.keyframes[at] !== index) this.keyframes.splice(at, 0, index);
    }
    if (known) {
      this.orderDirty = true;
    } else {
      const last = this.presentation[this.presentation.length - 1];
      if (!last || last[0] < pts || (last[0] === pts && last[1] < index)) this.presentation.push([pts, index]);
      else this.orderDirty = true;
    }
  }

  presentationOrder() {
    if (this.orderDirty) {
      this.presentation = [];
      this.pts.forEach((pts, index) => {
        if (pts !== undefined) this.presentation.push([pts, index]);
      });
      this.presentation.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      this.orderDirty = false;
    }
    return this.presentation;
  }

  get samples() {
    return this.pts.length;
  }

  firstPts() {
    return this.presentationOrder()[0]?.[0] ?? null;
  }

  lastPts() {
    const order = this.presentationOrder();
    return order.length ? order[order.length - 1][0] : null;
  }

  /** Decode index of the sample shown at t: the largest pts <= t (the first when earlier). */
  targetAt(t) {
    const order = this.presentationOrder();
    if (!order.length) return null;
    const at = upperBound(order, t, (e) => e[0]);
    return order[Math.max(at - 1, 0)][1];
  }

  /** Presentation-order neighbour of the sample at t, `delta` steps away: its pts. */
  neighbourPts(t, delta) {
    const order = this.presentationOrder();
    if (!order.length) return null;
    const at = Math.max(upperBound(order, t, (e) => e[0]) - 1, 0);
    return order[Math.min(Math.max(at + delta, 0), order.length - 1)][0];
  }

  keyframeBefore(index) {
    const at = upperBound(this.keyframes, index, (k) => k);
    return at > 0 ? this.keyframes[at - 1] : null;
  }

  // ---------- live feed ----------

  follow() {
    if (this.ws || this.closed) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const query = new URLSearchParams({ recording: this.recording, entity: this.entity, timeline: this.info.timeline });
    const ws = new WebSocket(`${scheme}://${location.host}/ws/view?${query}`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (event) => {
      if (!(event.data instanceof ArrayBuffer)) return;
      try {
        for (const sample of parseSamples(event.data)) this.onLiveSample(sample);
      } catch (error) {
        this.onError(`live feed of ${this.entity}: ${error.message}`);
      }
    };
    ws.onclose = (event) => {
      this.ws = null;
      if (this.closed) return;
      if (event.code === 1008) {
        this.onError(`the server refused the live feed of ${this.entity}: ${event.reason}`);
        return;
      }
      setTimeout(() => this.follow(), 1000); // server restart or network hiccup
    };
  }

  onLiveSample(sample) {
    if (sample.index > this.pts.length) this.refreshIndex(); // samples we have not heard of
    this.addSample(sample.index, sample.pts, sample.isKey, sample.rowId);
    if (!this.serverDecoded) this.keepData(sample);
    this.onChange('sample');
  }

  refreshIndex() {
    if (this.refreshing) return;
    this.refreshing = fetch(this.api('video/info', {}), { cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : null))
      .then((info) => info && this.addIndex(info))
      .catch(() => {})
      .finally(() => {
        this.refreshing = null;
      });
  }

  keepData(sample) {
    this.data.set(sample.index, sample);
    if (this.data.size <= DATA_SAMPLES) return;
    const keepFrom = this.session ? Math.min(this.session.fed, this.session.start) : 0;
    for (const index of this.data.keys()) {
      if (this.data.size <= DATA_SAMPLES) break;
      if (index < keepFrom || index > sample.index) this.data.delete(index);
    }
    // Still too many (one huge GOP): drop the oldest regardless.
    for (const index of this.data.keys()) {
      if (this.data.size <= DATA_SAMPLES) break;
      this.data.delete(index);
    }
  }

  // ---------- decoding ----------

  /** Decodes towards the frame at t. `paused` lets a seek flush out a held frame. */
  want(t, paused) {
    if (this.serverDecoded) {
      this.wantFromServer(t, paused);
      return;
    }
    if (!this.config || this.closed) return;
    const target = this.targetAt(t);
    if (target == null || this.session?.flushing) return;
    if (this.cache.has(target) && !this.needsAhead(target, paused)) return;
    const s = this.session;
    const keyframe = this.keyframeBefore(target);
    if (keyframe == null) {
      this.onError(`${this.entity}: no keyframe before sample ${target}; frames before the first keyframe cannot be decoded`);
      return;
    }
    const continues = s && !s.flushed && s.start <= target && keyframe <= s.fed &&
      (target >= s.fed || this.pendingIndex(target) || this.cache.has(target));
    if (!continues) this.newSession(keyframe);
    const end = Math.min(target + 1 + DECODE_AHEAD, this.pts.length);
    this.feed(end);
    // The decoder may hold the target for reordering until more samples come; paused, or
    // with nothing more to feed, flush it out after a moment.
    if ((paused || this.session.fed >= this.pts.length) && !this.cache.has(target)) this.flushLater(target);
  }

  /**
   * Asks the server for the frame at t unless it is cached or asked for already; playing,
   * also for the next one, so the server decodes one while it encodes the other.
   */
  wantFromServer(t, paused) {
    if (this.closed || this.problem) return;
    const target = this.targetAt(t);
    if (target == null) return;
    const wanted = [target];
    if (!paused) {
      const next = this.targetAt(this.neighbourPts(t, 1));
      if (next != null && next !== target) wanted.push(next);
    }
    for (const index of wanted) {
      if (this.frameRequests.size >= SERVER_REQUESTS) return;
      if (!this.cache.has(index) && !this.frameRequests.has(index)) this.askServer(index);
    }
  }

  askServer(index) {
    this.frameRequests.add(index);
    const t0 = performance.now();
    fetch(this.api('video/frame', { sample: index, session: this.serverSession }), { cache: 'no-store' })
      .then(async (response) => {
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          throw new Error(body.error || `frame of sample ${index}: HTTP ${response.status}`);
        }
        this.decoderName = response.headers.get('x-vidlog-decoder');
        const shown = Number(response.headers.get('x-vidlog-sample') ?? index);
        const bitmap = await createImageBitmap(await response.blob());
        frames.opened += 1;
        if (this.closed) {
          closeFrame(bitmap);
          return;
        }
        this.decoded += 1;
        this.decodeMs = performance.now() - t0;
        this.cachePut(shown, bitmap);
      })
      .catch((error) => {
        // Asking again would fail the same way (e.g. no decoder built into the server).
        this.problem = `the server cannot decode ${this.entity}: ${error.message}`;
        this.onError(this.problem);
      })
      .finally(() => {
        this.frameRequests.delete(index);
        if (!this.problem) this.onChange('fetched');
      });
  }

  /** While playing, keep the decoder fed ahead of the frame shown. */
  needsAhead(target, paused) {
    const s = this.session;
    return !paused && s && !s.flushed && s.start <= target && s.fed < Math.min(target + 1 + DECODE_AHEAD, this.pts.length) && this.keyframeBefore(target) <= s.fed;
  }

  pendingIndex(index) {
    for (const meta of this.pending.values()) if (meta.index === index) return true;
    return false;
  }

  newSession(start) {
    if (!this.decoder || this.decoder.state === 'closed') {
      this.decoder = new VideoDecoder({ output: (f) => this.onDecoded(f), error: (e) => this.onDecoderError(e) });
    } else {
      this.decoder.reset();
    }
    this.decoder.configure(this.config);
    this.pending.clear();
    clearTimeout(this.flushTimer);
    this.flushFor = null;
    this.sessions += 1;
    this.session = { id: this.sessions, start, fed: start, flushed: false };
  }

  /** Feeds samples `session.fed .. end` (decode order) that are at hand; fetches the rest. */
  feed(end) {
    const s = this.session;
    while (s.fed < end) {
      const sample = this.data.get(s.fed);
      if (!sample) {
        this.fetch(s.fed, end);
        return;
      }
      const timestamp = this.info.timeline_kind === 'sequence' ? sample.pts : Math.floor(sample.pts / 1000);
      this.pending.set(timestamp, { index: sample.index, t0: performance.now() });
      try {
        this.decoder.decode(new EncodedVideoChunk({ type: sample.isKey ? 'key' : 'delta', timestamp, data: sample.data }));
      } catch (error) {
        this.onError(`decoding ${this.entity} sample ${sample.index}: ${error.message}`);
        this.session = null;
        return;
      }
      s.fed += 1;
    }
  }

  fetch(from, to) {
    if (this.fetching) return;
    this.fetching = (async () => {
      while (from < to) {
        const response = await fetch(this.api('video/samples', { from, to }), { cache: 'no-store' });
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          throw new Error(body.error || `samples ${from}..${to}: HTTP ${response.status}`);
        }
        const samples = parseSamples(await response.arrayBuffer());
        if (!samples.length) break;
        for (const sample of samples) {
          if (this.rowIds[sample.index] == null) this.rowIds[sample.index] = sample.rowId;
          this.keepData(sample);
        }
        from = samples[samples.length - 1].index + 1;
      }
    })()
      .catch((error) => this.onError(`fetching ${this.entity}: ${error.message}`))
      .finally(() => {
        this.fetching = null;
        this.onChange('fetched');
      });
  }

  /** A paused seek: if the decoder still holds the target after a moment, flush it out. */
  flushLater(target) {
    const session = this.session;
    if (this.flushFor?.session === session && this.flushFor.target === target) return; // already timed
    clearTimeout(this.flushTimer);
    this.flushFor = { session, target };
    this.flushTimer = setTimeout(() => {
      this.flushFor = null;
      if (this.session !== session || this.cache.has(target) || this.fetching || session.fed <= target) return;
      // After flush() the decoder wants a keyframe: the session ends when the flush is done
      // (resetting before then would drop the frames it pushes out).
      session.flushing = true;
      this.decoder.flush().catch(() => {}).finally(() => {
        session.flushing = false;
        session.flushed = true;
        this.onChange('flushed');
      });
    }, FLUSH_AFTER_MS);
  }

  onDecoded(frame) {
    frames.opened += 1;
    const meta = this.pending.get(frame.timestamp);
    this.pending.delete(frame.timestamp);
    if (!meta || this.closed) {
      closeFrame(frame);
      return;
    }
    this.decoded += 1;
    this.decodeMs = performance.now() - meta.t0;
    this.cachePut(meta.index, frame);
    this.onChange('frame');
  }

  onDecoderError(error) {
    // The decoder is closed now; the next want() makes a new one.
    this.session = null;
    this.onError(`decoding ${this.entity} failed: ${error.message}`);
  }

  cachePut(index, frame) {
    const old = this.cache.get(index);
    if (old) this.evict(index, old);
    this.cache.set(index, frame);
    this.cacheBytes += frameBytes(frame);
    if (this.cache.size <= CACHE_FRAMES && this.cacheBytes <= CACHE_BYTES) return;
    // Evict the frames farthest (in decode order) from the newest one, never the shown one.
    const byDistance = [...this.cache.keys()]
      .filter((i) => i !== this.shown && i !== index)
      .sort((a, b) => Math.abs(b - index) - Math.abs(a - index));
    for (const i of byDistance) {
      if (this.cache.size <= CACHE_FRAMES && this.cacheBytes <= CACHE_BYTES) break;
      this.evict(i, this.cache.get(i));
    }
  }

  evict(index, frame) {
    this.cacheBytes -= frameBytes(frame);
    this.cache.delete(index);
    closeFrame(frame);
  }

  /** Records the frame as painted; returns its live latency (ms) the first time, if known. */
  markPainted(index, live) {
    this.shown = index;
    if (!live || this.painted.has(index)) return null;
    this.painted.add(index);
    if (this.painted.size > 4096) this.painted = new Set([index]);
    const rowId = this.rowIds[index];
    if (rowId == null) return null;
    const latency = performance.timeOrigin + performance.now() - Number(rowId / 1000n) / 1000;
    this.latencies.push(latency);
    if (this.latencies.length > 10000) this.latencies.splice(0, 5000);
    return latency;
  }

  close() {
    this.closed = true;
    this.ws?.close();
    clearTimeout(this.flushTimer);
    if (this.decoder && this.decoder.state !== 'closed') this.decoder.close();
    for (const [index, frame] of this.cache) this.evict(index, frame);
    this.data.clear();
  }
}

/** Width and height of a cached frame (a VideoFrame, or an ImageBitmap from the server). */
export function frameSize(frame) {
  return frame.displayWidth ? [frame.displayWidth, frame.displayHeight] : [frame.width, frame.height];
}

function frameBytes(frame) {
  if (frame.codedWidth) return frame.codedWidth * frame.codedHeight * 1.5;
  return frame.width * frame.height * 4;
}

/** The decoder configuration, or a reason the stream cannot be shown here. */
export async function decoderConfig(info) {
  let codec = info.codec_string;
  if (!codec && info.codec === 'H.265') codec = 'hev1.1.6.L93.B0'; // ask the browser anyway
  if (!codec) return { problem: `cannot show ${info.entity}: ${info.codec_problem}` };
  if (typeof VideoDecoder === 'undefined') {
    return { fallback: true, problem: 'This browser has no WebCodecs VideoDecoder. Use a current Chrome, Edge or Safari, over https or on localhost (WebCodecs needs a secure context).' };
  }
  const config = { codec, optimizeForLatency: true };
  if (info.width && info.height) {
    config.codedWidth = info.width;
    config.codedHeight = info.height;
  }
  let support;
  try {
    support = await VideoDecoder.isConfigSupported(config);
  } catch (error) {
    return { problem: `${info.entity}: ${info.codec} (${codec}): ${error.message}` };
  }
  if (!support.supported) {
    return {
      fallback: true,
      problem: `This browser cannot decode ${info.codec ?? codec} video (${codec}) of ${info.entity} with WebCodecs. ` +
        'Download it as MP4 and play it in a desktop player, or use a browser with a decoder for it ' +
        '(headless Chromium decodes H.264, AV1 and VP9, not H.265).',
    };
  }
  return { config: support.config ?? config };
}
