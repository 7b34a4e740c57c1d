// The viewer's binary sample layout (docs/PROTOCOL.md, "Viewer"): each sample is
// u32 len | u8 is_keyframe | 3 pad | i64 pts | u64 index | len bytes, little-endian.
// Used by GET /api/recordings/{id}/video/samples (many samples) and /ws/view (one each).

export const SAMPLE_HEADER_LEN = 24;

/**
 * Splits a buffer into samples: [{index, isKey, pts, data}]. `pts` is a Number (ns on
 * duration/timestamp timelines; epoch timestamps lose sub-µs precision), `data` a view
 * into `buffer` (no copy). A truncated tail is an error, not silently dropped.
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
    const start = at + SAMPLE_HEADER_LEN;
    if (start + len > buffer.byteLength) {
      throw new Error(`sample ${index} at byte ${at} says ${len} bytes, only ${buffer.byteLength - start} follow`);
    }
    out.push({ index, isKey, pts, data: new Uint8Array(buffer, start, len) });
    at = start + len;
  }
  return out;
}
