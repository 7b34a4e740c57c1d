// The viewer's binary sample layout (docs/PROTOCOL.md, "Viewer"): each sample is
// u32 len | u8 is_keyframe | 3 pad | i64 pts | u64 index | u64 row_id | len bytes,
// little-endian. Used by GET /api/recordings/{id}/video/samples (many samples) and
// /ws/view (one each). `row_id` is the producer's wall clock (ns since the Unix epoch)
// when the sample was logged: the viewer's live latency is paint time minus it.

export const SAMPLE_HEADER_LEN = 32;

/**
 * Splits a buffer into samples: [{index, isKey, pts, rowId, data}]. `pts` is a Number (ns
 * on duration/timestamp timelines; epoch timestamps lose sub-µs precision), `rowId` a
 * BigInt, `data` a view into `buffer` (no copy). A truncated tail is an error, not
 * silently dropped.
 */
export function parseSamples(buffer) {
  const view = new DataView(buffer);
  const out = [];
  let at = 0;
  while (at < buffer.byteLength) {
    if (at + SAMPLE_HEADER_LEN > buffer.byteLength) {
      throw new Error(`sample header at byte ${at} is cut off (${buffer.byteLength - at} bytes left)`);
    }
    const len = view.getUint32(at, true);
    const isKey = view.getUint8(at + 4) !== 0;
    const pts = Number(view.getBigInt64(at + 8, true));
    const index = Number(view.getBigUint64(at + 16, true));
    const rowId = view.getBigUint64(at + 24, true);
    const start = at + SAMPLE_HEADER_LEN;
    if (start + len > buffer.byteLength) {
      throw new Error(`sample ${index} at byte ${at} says ${len} bytes, only ${buffer.byteLength - start} follow`);
    }
    out.push({ index, isKey, pts, rowId, data: new Uint8Array(buffer, start, len) });
    at = start + len;
  }
  return out;
}

/** Milliseconds since the Unix epoch of a row id (ns), for latency against the page clock. */
export function rowIdMillis(rowId) {
  return Number(rowId / 1000n) / 1000;
}

/**
 * The frame number drawn by the synthetic camera (crates/vidlog/src/synth.rs, "Frame-number
 * pattern"): 16 black/white blocks across a strip at the top, most significant bit left.
 * `rgba` is ImageData.data of one row through the middle of the strip, `width` pixels.
 */
export function readFrameNumberRow(rgba, width) {
  let number = 0;
  for (let block = 0; block < 16; block++) {
    const x = Math.floor(((2 * block + 1) * width) / 32);
    let sum = 0;
    let n = 0;
    for (let dx = -1; dx <= 1; dx++) {
      const at = 4 * Math.min(Math.max(x + dx, 0), width - 1);
      sum += rgba[at] + rgba[at + 1] + rgba[at + 2];
      n += 3;
    }
    number = number * 2 + (sum / n > 128 ? 1 : 0);
  }
  return number;
}

/** Rows of the frame-number strip in a picture `height` tall (synth.rs `frame_strip_height`). */
export function frameStripHeight(height) {
  return Math.min(Math.max(Math.floor(height / 10), 16), height);
}
