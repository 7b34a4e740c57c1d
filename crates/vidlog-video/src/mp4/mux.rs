//! The MP4 muxer: samples in decode order in, a plain or fragmented MP4 out, streaming.
//!
//! Owns the write sequence and its memory bounds:
//! - **plain** (`fragmented: false`): `ftyp`, an `mdat` with a 64-bit size that is patched at
//!   [`Mp4Muxer::finish`] (hence a seekable writer, [`Mp4Muxer::new`]), every sample streamed into
//!   it as it is pushed, then `moov` with the sample tables. Memory: a few bytes per sample for
//!   the tables, never the sample data.
//! - **fragmented** (`fragmented: true`): the init segment (`ftyp` + `moov` with `mvex`), then
//!   one `moof` + `mdat` per GOP. Any writer works ([`Mp4Muxer::new_streaming`] for pipes and
//!   `Vec<u8>`); memory is one GOP.
//!
//! Timing is decided up front by [`super::timing::TimingPlan`] from every sample's presentation
//! time, before the first byte is written.

use std::io::{Seek, SeekFrom, Write};

use super::boxes::{self, BoxWriter, SampleTables};
use super::fragment::Fragmenter;
use super::timing::{TimingPlan, ticks_to_ns};
use super::{Mp4Error, Mp4Options, Mp4Summary, SampleEntry};

/// Writes the 64-bit `mdat` size at `position` and returns to `end`.
type PatchFn<W> = fn(&mut W, u64, u64, u64) -> std::io::Result<()>;

fn patch_seekable<W: Write + Seek>(
    writer: &mut W,
    position: u64,
    value: u64,
    end: u64,
) -> std::io::Result<()> {
    writer.seek(SeekFrom::Start(position))?;
    writer.write_all(&value.to_be_bytes())?;
    writer.seek(SeekFrom::Start(end))?;
    Ok(())
}

enum Layout<W> {
    Plain {
        /// Offset (from the MP4's first byte) of the mdat header.
        mdat_at: u64,
        sizes: Vec<u32>,
        sync: Vec<bool>,
        /// Where the writer's position was when the MP4 began.
        base: u64,
        patch: PatchFn<W>,
    },
    Fragmented(Fragmenter),
}

/// Streams one video track into an MP4. See the [module docs](super) for an example.
pub struct Mp4Muxer<W: Write> {
    writer: W,
    entry: SampleEntry,
    plan: TimingPlan,
    layout: Layout<W>,
    /// Samples pushed so far.
    pushed: usize,
    /// Bytes written so far.
    written: u64,
}

impl<W: Write + Seek> Mp4Muxer<W> {
    /// Starts an MP4 (plain or fragmented, per `options`) on a seekable writer (a file, a
    /// `Cursor`). `pts` are the presentation times (ns) of **all** samples, in decode order.
    ///
    /// Writes `ftyp` (and for fragmented MP4 the whole init segment) immediately.
    pub fn new(
        mut writer: W,
        entry: SampleEntry,
        pts: &[i64],
        options: Mp4Options,
    ) -> Result<Self, Mp4Error> {
        let base = writer.stream_position().map_err(|source| Mp4Error::Io {
            context: "reading the writer's position",
            source,
        })?;
        Self::start(
            writer,
            entry,
            pts,
            options,
            Some((base, patch_seekable::<W>)),
        )
    }
}

impl<W: Write> Mp4Muxer<W> {
    /// Starts a **fragmented** MP4 on any writer (stdout, a socket, a `Vec<u8>`). A plain MP4
    /// needs to patch its `mdat` size at the end; ask for one here and you get
    /// [`Mp4Error::PlainNeedsSeek`].
    pub fn new_streaming(
        writer: W,
        entry: SampleEntry,
        pts: &[i64],
        options: Mp4Options,
    ) -> Result<Self, Mp4Error> {
        if !options.fragmented {
            return Err(Mp4Error::PlainNeedsSeek);
        }
        Self::start(writer, entry, pts, options, None)
    }

    fn start(
        writer: W,
        entry: SampleEntry,
        pts: &[i64],
        options: Mp4Options,
        seekable: Option<(u64, PatchFn<W>)>,
    ) -> Result<Self, Mp4Error> {
        let plan = TimingPlan::new(pts, options.timescale, options.start, options.last_duration)?
            .ending_at(options.end)?;
        let mut head = BoxWriter::new();
        let layout = match (options.fragmented, seekable) {
            (true, _) => {
                boxes::write_ftyp_fragmented(&mut head);
                boxes::write_moov(&mut head, &entry, &plan, None);
                Layout::Fragmented(Fragmenter::default())
            }
            (false, Some((base, patch))) => {
                boxes::write_ftyp_plain(&mut head);
                let mdat_at = head.len() as u64;
                // 64-bit size, patched at finish.
                head.u32(1);
                head.bytes(b"mdat");
                head.u64(0);
                Layout::Plain {
                    mdat_at,
                    sizes: Vec::with_capacity(plan.len()),
                    sync: Vec::with_capacity(plan.len()),
                    base,
                    patch,
                }
            }
            (false, None) => return Err(Mp4Error::PlainNeedsSeek),
        };
        let head = head.finish().ok_or(Mp4Error::TooLarge { what: "moov" })?;
        let mut muxer = Mp4Muxer {
            writer,
            entry,
            plan,
            layout,
            pushed: 0,
            written: 0,
        };
        muxer.write(&head, "writing the MP4 header")?;
        Ok(muxer)
    }

    fn write(&mut self, bytes: &[u8], context: &'static str) -> Result<(), Mp4Error> {
        self.writer
            .write_all(bytes)
            .map_err(|source| Mp4Error::Io { context, source })?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// The timescale chosen (or given) for the track.
    pub fn timescale(&self) -> u32 {
        self.plan.timescale
    }

    /// The sample entry the track uses.
    pub fn sample_entry(&self) -> &SampleEntry {
        &self.entry
    }

    /// Adds the next sample in decode order and its keyframe flag: one Annex B access unit
    /// (stored with 4-byte length prefixes; AUD/SPS/PPS/SEI NAL units stay in-band), one VP9
    /// frame or superframe, or one AV1 temporal unit (see [`SampleEntry::sample_data`]).
    pub fn push(&mut self, sample: &[u8], is_keyframe: bool) -> Result<(), Mp4Error> {
        let index = self.pushed;
        if index >= self.plan.len() {
            return Err(Mp4Error::SampleCount {
                pushed: index + 1,
                expected: self.plan.len(),
            });
        }
        if index == 0 && !is_keyframe {
            return Err(Mp4Error::FirstSampleNotKeyframe);
        }
        let data = self.entry.sample_data(index, sample)?;
        let size = u32::try_from(data.len()).map_err(|_| Mp4Error::SampleTooLarge {
            index,
            size: data.len(),
        })?;
        match &mut self.layout {
            Layout::Plain { sizes, sync, .. } => {
                sizes.push(size);
                sync.push(is_keyframe);
                self.write(&data, "writing sample data")?;
            }
            Layout::Fragmented(fragmenter) => {
                if fragmenter.should_cut_before(is_keyframe) {
                    let n = fragmenter
                        .flush(&mut self.writer, &self.plan)
                        .map_err(|source| Mp4Error::Io {
                            context: "writing a fragment",
                            source,
                        })?;
                    self.written += n;
                }
                fragmenter.push(index, &data, is_keyframe);
            }
        }
        self.pushed += 1;
        Ok(())
    }

    /// Ends the MP4: for plain MP4 patches the `mdat` size and writes `moov`; for fragmented MP4
    /// writes the last fragment. Fails if fewer samples were pushed than `pts` announced.
    pub fn finish(mut self) -> Result<Mp4Summary, Mp4Error> {
        if self.pushed != self.plan.len() {
            return Err(Mp4Error::SampleCount {
                pushed: self.pushed,
                expected: self.plan.len(),
            });
        }
        let fragments = match &mut self.layout {
            Layout::Plain {
                mdat_at,
                sizes,
                sync,
                base,
                patch,
            } => {
                let mdat_at = *mdat_at;
                let (base, patch) = (*base, *patch);
                let mdat_size = self.written - mdat_at;
                let mut moov = BoxWriter::new();
                let tables = SampleTables {
                    sizes,
                    sync,
                    chunk_offset: mdat_at + 16,
                };
                boxes::write_moov(&mut moov, &self.entry, &self.plan, Some(&tables));
                let moov = moov.finish().ok_or(Mp4Error::TooLarge { what: "moov" })?;
                self.write(&moov, "writing moov")?;
                patch(
                    &mut self.writer,
                    base + mdat_at + 8,
                    mdat_size,
                    base + self.written,
                )
                .map_err(|source| Mp4Error::Io {
                    context: "patching the mdat size",
                    source,
                })?;
                0
            }
            Layout::Fragmented(fragmenter) => {
                let n = fragmenter
                    .flush(&mut self.writer, &self.plan)
                    .map_err(|source| Mp4Error::Io {
                        context: "writing the last fragment",
                        source,
                    })?;
                self.written += n;
                fragmenter.fragments
            }
        };
        self.writer.flush().map_err(|source| Mp4Error::Io {
            context: "flushing the output",
            source,
        })?;
        let timescale = self.plan.timescale;
        Ok(Mp4Summary {
            samples: self.pushed,
            timescale,
            duration_ns: ticks_to_ns(
                i64::try_from(self.plan.presentation_duration).unwrap_or(i64::MAX),
                timescale,
            ),
            bytes: self.written,
            fragments,
        })
    }
}
