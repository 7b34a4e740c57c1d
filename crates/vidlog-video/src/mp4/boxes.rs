//! Writing ISO BMFF boxes (ISO/IEC 14496-12): a small nesting box writer and the boxes shared by
//! plain and fragmented MP4 (`ftyp`, `mvhd`, `trak` with `tkhd`, `edts`/`elst`, `mdia`, the
//! `avc1` sample entry ...).
//!
//! Owns byte layout only; every number (timescale, durations, offsets) comes from the caller.
//! Reading boxes lives in [`super::demux`].

use super::SampleEntry;
use super::timing::TimingPlan;

/// The one track vidlog writes.
pub const TRACK_ID: u32 = 1;

/// Unity transformation matrix (16.16 and 2.30 fixed point).
const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Builds nested boxes into a byte vector; sizes are filled in when a box is closed.
#[derive(Default)]
pub struct BoxWriter {
    buf: Vec<u8>,
    open: Vec<usize>,
    /// Set when a box grew past 4 GiB (its 32-bit size cannot say so).
    overflow: bool,
}

impl BoxWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a box; close it with [`close`](Self::close).
    pub fn open(&mut self, fourcc: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(fourcc);
    }

    /// Opens a full box (with version and flags).
    pub fn open_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) {
        self.open(fourcc);
        self.u32((u32::from(version) << 24) | (flags & 0x00FF_FFFF));
    }

    /// Closes the innermost open box, writing its size.
    pub fn close(&mut self) {
        let Some(start) = self.open.pop() else {
            return;
        };
        let size = self.buf.len() - start;
        let size = u32::try_from(size).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    /// Current length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Overwrites 4 bytes at `at` (for offsets known only later, e.g. `trun` data_offset).
    pub fn patch_u32(&mut self, at: usize, value: u32) {
        if let Some(dst) = self.buf.get_mut(at..at + 4) {
            dst.copy_from_slice(&value.to_be_bytes());
        }
    }

    /// The bytes, or `None` if a box overflowed its 32-bit size.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        while !self.open.is_empty() {
            self.close();
        }
        (!self.overflow).then_some(self.buf)
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
}

/// `ftyp` for a plain MP4.
pub fn write_ftyp_plain(w: &mut BoxWriter) {
    w.open(b"ftyp");
    w.bytes(b"isom");
    w.u32(0x200);
    for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
        w.bytes(brand);
    }
    w.close();
}

/// `ftyp` for a fragmented MP4 (`iso5`: movie fragments with `tfdt` and default-base-is-moof).
pub fn write_ftyp_fragmented(w: &mut BoxWriter) {
    w.open(b"ftyp");
    w.bytes(b"iso5");
    w.u32(0x200);
    for brand in [b"iso5", b"iso6", b"avc1", b"mp41"] {
        w.bytes(brand);
    }
    w.close();
}

/// The sample tables of a plain MP4, or empty ones for a fragmented init segment.
pub struct SampleTables<'a> {
    /// Size of every sample, in decode order.
    pub sizes: &'a [u32],
    /// Sync flag of every sample.
    pub sync: &'a [bool],
    /// File offset of the single chunk holding all samples.
    pub chunk_offset: u64,
}

/// `moov` for a plain MP4 (`tables` given) or a fragmented init segment (`tables` `None`:
/// empty tables plus `mvex`).
pub fn write_moov(
    w: &mut BoxWriter,
    entry: &SampleEntry,
    plan: &TimingPlan,
    tables: Option<&SampleTables<'_>>,
) {
    let timescale = plan.timescale;
    let movie_duration = plan.presentation_duration;
    w.open(b"moov");

    w.open_full(b"mvhd", 1, 0);
    w.u64(0); // creation_time
    w.u64(0); // modification_time
    w.u32(timescale);
    w.u64(movie_duration);
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(2 + 8); // reserved
    for m in UNITY_MATRIX {
        w.u32(m);
    }
    w.zeros(24); // pre_defined
    w.u32(TRACK_ID + 1); // next_track_ID
    w.close();

    w.open(b"trak");
    w.open_full(b"tkhd", 1, 0x3); // enabled | in_movie
    w.u64(0);
    w.u64(0);
    w.u32(TRACK_ID);
    w.u32(0); // reserved
    w.u64(movie_duration);
    w.zeros(8); // reserved
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(0); // volume (0 for video)
    w.u16(0); // reserved
    for m in UNITY_MATRIX {
        w.u32(m);
    }
    let (width, height) = entry.dimensions();
    w.u32(u32::from(width) << 16);
    w.u32(u32::from(height) << 16);
    w.close();

    if let Some(edit) = plan.edit {
        w.open(b"edts");
        w.open_full(b"elst", 1, 0);
        w.u32(1);
        w.u64(edit.segment_duration);
        w.i64(edit.media_time);
        w.u16(1); // media_rate_integer
        w.u16(0); // media_rate_fraction
        w.close();
        w.close();
    }

    w.open(b"mdia");
    w.open_full(b"mdhd", 1, 0);
    w.u64(0);
    w.u64(0);
    w.u32(timescale);
    w.u64(if tables.is_some() {
        plan.media_duration
    } else {
        0
    });
    w.u16(0x55C4); // language "und"
    w.u16(0);
    w.close();

    w.open_full(b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    w.bytes(b"vide");
    w.zeros(12);
    w.bytes(b"VideoHandler\0");
    w.close();

    w.open(b"minf");
    w.open_full(b"vmhd", 0, 1);
    w.zeros(8); // graphicsmode, opcolor
    w.close();
    w.open(b"dinf");
    w.open_full(b"dref", 0, 0);
    w.u32(1);
    w.open_full(b"url ", 0, 1); // media data in this file
    w.close();
    w.close();
    w.close();

    w.open(b"stbl");
    write_stsd(w, entry);
    match tables {
        Some(tables) => write_sample_tables(w, plan, tables),
        None => {
            for fourcc in [b"stts", b"stsc", b"stco"] {
                w.open_full(fourcc, 0, 0);
                w.u32(0);
                w.close();
            }
            w.open_full(b"stsz", 0, 0);
            w.u32(0);
            w.u32(0);
            w.close();
        }
    }
    w.close(); // stbl
    w.close(); // minf
    w.close(); // mdia
    w.close(); // trak

    if tables.is_none() {
        w.open(b"mvex");
        w.open_full(b"mehd", 1, 0);
        w.u64(plan.media_duration);
        w.close();
        w.open_full(b"trex", 0, 0);
        w.u32(TRACK_ID);
        w.u32(1); // default_sample_description_index
        w.u32(0); // default_sample_duration
        w.u32(0); // default_sample_size
        w.u32(0); // default_sample_flags
        w.close();
        w.close();
    }
    w.close(); // moov
}

fn write_stsd(w: &mut BoxWriter, entry: &SampleEntry) {
    w.open_full(b"stsd", 0, 0);
    w.u32(1);
    let (fourcc, config): (&[u8; 4], &[u8; 4]) = match entry {
        SampleEntry::Avc1 { .. } => (b"avc1", b"avcC"),
        SampleEntry::Hev1 { .. } => (b"hev1", b"hvcC"),
        SampleEntry::Vp09 { .. } => (b"vp09", b"vpcC"),
        SampleEntry::Av01 { .. } => (b"av01", b"av1C"),
    };
    let (width, height) = entry.dimensions();
    w.open(fourcc);
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index
    w.zeros(16); // pre_defined, reserved
    w.u16(width);
    w.u16(height);
    w.u32(0x0048_0000); // 72 dpi
    w.u32(0x0048_0000);
    w.u32(0); // reserved
    w.u16(1); // frame_count
    w.zeros(32); // compressorname
    w.u16(0x0018); // depth
    w.u16(0xFFFF); // pre_defined = -1
    match entry {
        SampleEntry::Avc1 { avcc: record, .. } | SampleEntry::Hev1 { hvcc: record, .. } => {
            w.open(config);
            w.bytes(record);
        }
        SampleEntry::Vp09 { vpcc, .. } => {
            w.open_full(config, 1, 0);
            w.bytes(vpcc);
        }
        SampleEntry::Av01 { av1c, .. } => {
            w.open(config);
            w.bytes(av1c);
        }
    }
    w.close();
    w.close();
    w.close();
}

/// Run-length encodes `values` as `(count, value)` pairs.
fn runs<T: Copy + PartialEq>(values: &[T]) -> Vec<(u32, T)> {
    let mut out: Vec<(u32, T)> = Vec::new();
    for &v in values {
        match out.last_mut() {
            Some((count, last)) if *last == v && *count < u32::MAX => *count += 1,
            _ => out.push((1, v)),
        }
    }
    out
}

fn write_sample_tables(w: &mut BoxWriter, plan: &TimingPlan, tables: &SampleTables<'_>) {
    let count = u32::try_from(tables.sizes.len()).unwrap_or(u32::MAX);

    let stts = runs(&plan.durations);
    w.open_full(b"stts", 0, 0);
    w.u32(stts.len() as u32);
    for (n, d) in stts {
        w.u32(n);
        w.u32(d);
    }
    w.close();

    if plan.composition_offsets.iter().any(|&o| o != 0) {
        let ctts = runs(&plan.composition_offsets);
        w.open_full(b"ctts", 0, 0);
        w.u32(ctts.len() as u32);
        for (n, o) in ctts {
            w.u32(n);
            w.u32(o);
        }
        w.close();
    }

    if tables.sync.iter().any(|s| !s) {
        let sync: Vec<u32> = tables
            .sync
            .iter()
            .enumerate()
            .filter(|(_, s)| **s)
            .map(|(i, _)| i as u32 + 1)
            .collect();
        w.open_full(b"stss", 0, 0);
        w.u32(sync.len() as u32);
        for n in sync {
            w.u32(n);
        }
        w.close();
    }

    w.open_full(b"stsz", 0, 0);
    w.u32(0); // sizes follow
    w.u32(count);
    for &s in tables.sizes {
        w.u32(s);
    }
    w.close();

    // All samples sit back to back in one mdat: one chunk.
    w.open_full(b"stsc", 0, 0);
    w.u32(1);
    w.u32(1); // first_chunk
    w.u32(count); // samples_per_chunk
    w.u32(1); // sample_description_index
    w.close();

    w.open_full(b"co64", 0, 0);
    w.u32(1);
    w.u64(tables.chunk_offset);
    w.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sizes_and_runs() {
        let mut w = BoxWriter::new();
        w.open(b"moov");
        w.open_full(b"mvhd", 1, 0);
        w.u32(7);
        w.close();
        w.close();
        let bytes = w.finish().expect("fits");
        assert_eq!(&bytes[0..8], &[0, 0, 0, 24, b'm', b'o', b'o', b'v']);
        assert_eq!(&bytes[8..16], &[0, 0, 0, 16, b'm', b'v', b'h', b'd']);
        assert_eq!(runs(&[1, 1, 2, 1]), vec![(2, 1), (1, 2), (1, 1)]);
    }
}
