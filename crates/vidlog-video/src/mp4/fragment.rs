//! Movie fragments: one `moof` + `mdat` per GOP for fragmented MP4.
//!
//! Owns buffering of the current GOP (memory bounded by one GOP, or [`MAX_FRAGMENT_BYTES`]) and
//! the `moof` layout: `mfhd`, and a `traf` with `tfhd` (default-base-is-moof), `tfdt` (64-bit
//! base media decode time) and a `trun` carrying each sample's duration, size, flags and
//! composition offset. Timing numbers come from [`super::timing::TimingPlan`]; the init segment
//! is written by [`super::boxes::write_moov`].

use std::io::Write;

use super::boxes::{BoxWriter, TRACK_ID};
use super::timing::TimingPlan;

/// A fragment is cut early (at any sample) once its media data grows past this.
pub const MAX_FRAGMENT_BYTES: usize = 64 << 20;

/// `sample_flags` of a sync sample: depends on no other sample.
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of other samples: depends on others, `sample_is_non_sync_sample`.
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// One buffered sample's table entry.
struct FragmentSample {
    size: u32,
    sync: bool,
}

/// Collects samples of the current fragment and writes it out.
#[derive(Default)]
pub struct Fragmenter {
    data: Vec<u8>,
    samples: Vec<FragmentSample>,
    /// Decode index of the first buffered sample.
    first_index: usize,
    sequence_number: u32,
    /// Fragments written so far.
    pub fragments: usize,
}

impl Fragmenter {
    /// Whether the next sample (a keyframe or not) should start a new fragment.
    pub fn should_cut_before(&self, is_keyframe: bool) -> bool {
        !self.samples.is_empty() && (is_keyframe || self.data.len() >= MAX_FRAGMENT_BYTES)
    }

    /// Buffers sample `index` (length-prefixed bytes).
    pub fn push(&mut self, index: usize, sample: &[u8], sync: bool) {
        if self.samples.is_empty() {
            self.first_index = index;
        }
        self.data.extend_from_slice(sample);
        self.samples.push(FragmentSample {
            size: sample.len() as u32,
            sync,
        });
    }

    /// Writes the buffered fragment (if any); returns the bytes written.
    pub fn flush(&mut self, out: &mut impl Write, plan: &TimingPlan) -> std::io::Result<u64> {
        if self.samples.is_empty() {
            return Ok(0);
        }
        self.sequence_number = self.sequence_number.wrapping_add(1);
        let first = self.first_index;
        let mut w = BoxWriter::new();
        w.open(b"moof");
        w.open_full(b"mfhd", 0, 0);
        w.u32(self.sequence_number);
        w.close();
        w.open(b"traf");
        w.open_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
        w.u32(TRACK_ID);
        w.close();
        w.open_full(b"tfdt", 1, 0);
        w.u64(plan.dts.get(first).copied().unwrap_or(0));
        w.close();
        // data-offset, sample duration, size, flags and composition time offset present.
        w.open_full(b"trun", 0, 0x000F01);
        w.u32(self.samples.len() as u32);
        let data_offset_at = w.len();
        w.u32(0);
        for (k, s) in self.samples.iter().enumerate() {
            let i = first + k;
            w.u32(plan.durations.get(i).copied().unwrap_or(0));
            w.u32(s.size);
            w.u32(if s.sync {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            });
            w.u32(plan.composition_offsets.get(i).copied().unwrap_or(0));
        }
        w.close(); // trun
        w.close(); // traf
        w.close(); // moof
        let moof_len = w.len();
        let data_len = self.data.len() as u64;
        let mdat_header: Vec<u8> = match u32::try_from(8 + data_len) {
            Ok(size) => [&size.to_be_bytes()[..], b"mdat"].concat(),
            Err(_) => [
                &1u32.to_be_bytes()[..],
                b"mdat",
                &(16 + data_len).to_be_bytes(),
            ]
            .concat(),
        };
        w.patch_u32(data_offset_at, (moof_len + mdat_header.len()) as u32);
        let moof = w.finish().unwrap_or_default();
        out.write_all(&moof)?;
        out.write_all(&mdat_header)?;
        out.write_all(&self.data)?;
        let written = (moof.len() + mdat_header.len()) as u64 + data_len;
        self.data.clear();
        self.samples.clear();
        self.fragments += 1;
        Ok(written)
    }
}
