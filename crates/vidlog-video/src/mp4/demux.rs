//! Reading MP4: the video tracks' sample tables (plain `stbl` and movie fragments), with the
//! edit list applied to presentation times, and samples handed back as Annex B.
//!
//! Owns box parsing for the boxes it needs (`moov`, `trak`, `tkhd`, `elst`, `mdhd`, `hdlr`,
//! `stsd` with `avcC`/`hvcC`/`av1C`, `stts`, `ctts`, `stss`, `stsz`, `stsc`, `stco`/`co64`,
//! `mvex`/`trex`, `moof`/`tfhd`/`tfdt`/`trun`). It reads only `moov` and `moof` boxes into memory
//! (sample data is read on demand), checks every size against the file, and reports problems as
//! [`Mp4Error`]s naming the box path and byte offset; it never panics on input.
//!
//! Presentation times: `pts = dts + composition_offset - media_time (+ empty edits)`, from the
//! first non-empty edit, so the first presented frame of an ffmpeg-made file with B-frames is at
//! 0, as ffprobe reports it.

use std::io::{Cursor, Read, Seek, SeekFrom};

use vidlog_types::VideoCodec;

use super::Mp4Error;
use super::timing::ticks_to_ns;
use crate::bitstream::nal::{START_CODE_4, split_length_prefixed};

/// Largest `moov`/`moof` box read into memory.
const MAX_HEADER_BOX_BYTES: u64 = 1 << 30;

/// One sample of a track, located in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemuxSample {
    /// File offset of the sample data.
    pub offset: u64,
    /// Sample size in bytes.
    pub size: u32,
    /// Decode time in the track timescale.
    pub dts: i64,
    /// Presentation time in the track timescale, edit list applied.
    pub pts: i64,
    /// Duration in the track timescale.
    pub duration: u32,
    /// Whether decoding can start here.
    pub is_sync: bool,
}

impl DemuxSample {
    /// The presentation time in nanoseconds (rounded to the nearest).
    pub fn pts_ns(&self, timescale: u32) -> i64 {
        ticks_to_ns(self.pts, timescale)
    }
}

/// A video track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemuxTrack {
    /// `track_ID` from `tkhd`.
    pub track_id: u32,
    /// The codec, when vidlog knows it.
    pub codec: Option<VideoCodec>,
    /// WebCodecs codec string (`avc1.64001F`, `hvc1.1.6.L93.90`, `av01.0.05M.08`), or the
    /// sample entry's FourCC when the configuration record is missing.
    pub codec_string: String,
    /// Width from the sample entry.
    pub width: u16,
    /// Height from the sample entry.
    pub height: u16,
    /// Media timescale (`mdhd`).
    pub timescale: u32,
    /// Samples in decode order.
    pub samples: Vec<DemuxSample>,
    /// Where the edit list's presentation ends (track timescale, same origin as
    /// [`DemuxSample::pts`]), when it gives one: samples presented at or after it are decoded
    /// (they may be references) but not shown.
    pub presentation_end: Option<i64>,
}

/// How a track's samples turn into Annex B.
#[derive(Clone, Debug, Default)]
struct SampleFormat {
    /// NAL length size (0: samples are not NAL-framed, returned as stored).
    length_size: usize,
    /// Parameter set NAL units to put before sync samples lacking them.
    parameter_sets: Vec<Vec<u8>>,
    /// `(shift, mask, value)` identifying an SPS NAL header: H.264 `nal & 0x1F == 7`,
    /// H.265 `(nal >> 1) & 0x3F == 33`.
    sps_type: Option<(u8, u8, u8)>,
}

/// Reads samples of the video tracks of an MP4.
pub struct Mp4Demuxer<R: Read + Seek> {
    reader: R,
    tracks: Vec<DemuxTrack>,
    formats: Vec<SampleFormat>,
}

impl<R: Read + Seek> std::fmt::Debug for Mp4Demuxer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp4Demuxer")
            .field("tracks", &self.tracks)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Box scanning
// ---------------------------------------------------------------------------------------------

/// One box inside an in-memory parent.
struct BoxRef<'a> {
    fourcc: [u8; 4],
    /// File offset of the box header.
    offset: u64,
    payload: &'a [u8],
    /// File offset of `payload[0]`.
    payload_offset: u64,
    path: String,
}

fn fourcc_str(f: &[u8; 4]) -> String {
    f.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// Splits `data` (at file offset `base`, inside box `parent`) into child boxes.
fn children<'a>(data: &'a [u8], base: u64, parent: &str) -> Result<Vec<BoxRef<'a>>, Mp4Error> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let offset = base + pos as u64;
        let rest = &data[pos..];
        if rest.len() < 8 {
            return Err(Mp4Error::Truncated {
                path: format!("{parent}/(box header)"),
                offset,
                size: 8,
                available: rest.len() as u64,
            });
        }
        let mut fourcc = [0u8; 4];
        fourcc.copy_from_slice(&rest[4..8]);
        let path = format!("{parent}/{}", fourcc_str(&fourcc));
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let (size, header) = match size32 {
            0 => (rest.len() as u64, 8usize),
            1 => {
                let Some(large) = rest.get(8..16) else {
                    return Err(Mp4Error::Truncated {
                        path,
                        offset,
                        size: 16,
                        available: rest.len() as u64,
                    });
                };
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                (u64::from_be_bytes(b), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header as u64 {
            return Err(Mp4Error::Malformed {
                path,
                offset,
                problem: format!("size {size} is smaller than its {header}-byte header"),
            });
        }
        if size > rest.len() as u64 {
            return Err(Mp4Error::Truncated {
                path,
                offset,
                size,
                available: rest.len() as u64,
            });
        }
        let size = size as usize;
        out.push(BoxRef {
            fourcc,
            offset,
            payload: &rest[header..size],
            payload_offset: offset + header as u64,
            path,
        });
        pos += size;
    }
    Ok(out)
}

fn find<'a, 'b>(boxes: &'b [BoxRef<'a>], fourcc: &[u8; 4]) -> Option<&'b BoxRef<'a>> {
    boxes.iter().find(|b| &b.fourcc == fourcc)
}

fn require<'a, 'b>(
    boxes: &'b [BoxRef<'a>],
    fourcc: &[u8; 4],
    parent: &str,
) -> Result<&'b BoxRef<'a>, Mp4Error> {
    find(boxes, fourcc).ok_or_else(|| Mp4Error::MissingBox {
        path: format!("{parent}/{}", fourcc_str(fourcc)),
        hint: "",
    })
}

/// Reads big-endian fields from a box payload, with errors naming the box.
struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a str,
    offset: u64,
}

impl<'a> Fields<'a> {
    fn new(b: &'a BoxRef<'a>) -> Self {
        Fields {
            data: b.payload,
            pos: 0,
            path: &b.path,
            offset: b.offset,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Mp4Error> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or_else(|| Mp4Error::Malformed {
                path: self.path.to_string(),
                offset: self.offset,
                problem: format!(
                    "ends after {} payload bytes while reading {what} ({n} more bytes needed)",
                    self.data.len()
                ),
            })?;
        self.pos += n;
        Ok(bytes)
    }
    fn skip(&mut self, n: usize, what: &str) -> Result<(), Mp4Error> {
        self.take(n, what).map(|_| ())
    }
    fn u16(&mut self, what: &str) -> Result<u16, Mp4Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, Mp4Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, Mp4Error> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// Version and flags of a full box.
    fn full_header(&mut self) -> Result<(u8, u32), Mp4Error> {
        let v = self.u32("version and flags")?;
        Ok(((v >> 24) as u8, v & 0x00FF_FFFF))
    }
    /// An entry count whose entries take `entry_size` bytes each, checked against the payload.
    fn count(&mut self, entry_size: usize, what: &str) -> Result<usize, Mp4Error> {
        let n = self.u32(what)? as usize;
        let left = self.data.len().saturating_sub(self.pos);
        if n.saturating_mul(entry_size) > left {
            return Err(Mp4Error::Malformed {
                path: self.path.to_string(),
                offset: self.offset,
                problem: format!(
                    "{what} is {n} ({entry_size} bytes each) but only {left} bytes follow"
                ),
            });
        }
        Ok(n)
    }
    fn malformed(&self, problem: String) -> Mp4Error {
        Mp4Error::Malformed {
            path: self.path.to_string(),
            offset: self.offset,
            problem,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------------

/// A top-level box found while scanning the file.
struct TopBox {
    fourcc: [u8; 4],
    offset: u64,
    header: u64,
    size: u64,
}

fn io_err(context: &'static str) -> impl FnOnce(std::io::Error) -> Mp4Error {
    move |source| Mp4Error::Io { context, source }
}

fn scan_top_level<R: Read + Seek>(reader: &mut R, file_len: u64) -> Result<Vec<TopBox>, Mp4Error> {
    let mut boxes = Vec::new();
    let mut pos = 0u64;
    while pos < file_len {
        let available = file_len - pos;
        if available < 8 {
            return Err(Mp4Error::Truncated {
                path: "(top-level box header)".into(),
                offset: pos,
                size: 8,
                available,
            });
        }
        reader
            .seek(SeekFrom::Start(pos))
            .map_err(io_err("seeking to a box"))?;
        let mut head = [0u8; 16];
        let n = if available >= 16 { 16 } else { 8 };
        reader
            .read_exact(&mut head[..n])
            .map_err(io_err("reading a box header"))?;
        let mut fourcc = [0u8; 4];
        fourcc.copy_from_slice(&head[4..8]);
        if boxes.is_empty()
            && !matches!(
                &fourcc,
                b"ftyp"
                    | b"styp"
                    | b"moov"
                    | b"free"
                    | b"skip"
                    | b"mdat"
                    | b"wide"
                    | b"pdin"
                    | b"uuid"
            )
        {
            return Err(Mp4Error::Malformed {
                path: fourcc_str(&fourcc),
                offset: 0,
                problem: "the file does not start with an MP4 box (ftyp, moov ...); \
                          is it an MP4?"
                    .into(),
            });
        }
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let (size, header) = match size32 {
            0 => (available, 8),
            1 if n == 16 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&head[8..16]);
                (u64::from_be_bytes(b), 16)
            }
            1 => {
                return Err(Mp4Error::Truncated {
                    path: fourcc_str(&fourcc),
                    offset: pos,
                    size: 16,
                    available,
                });
            }
            s => (u64::from(s), 8),
        };
        if size < header {
            return Err(Mp4Error::Malformed {
                path: fourcc_str(&fourcc),
                offset: pos,
                problem: format!("size {size} is smaller than its {header}-byte header"),
            });
        }
        if size > available {
            return Err(Mp4Error::Truncated {
                path: fourcc_str(&fourcc),
                offset: pos,
                size,
                available,
            });
        }
        boxes.push(TopBox {
            fourcc,
            offset: pos,
            header,
            size,
        });
        pos += size;
    }
    Ok(boxes)
}

fn read_box_payload<R: Read + Seek>(reader: &mut R, b: &TopBox) -> Result<Vec<u8>, Mp4Error> {
    let len = b.size - b.header;
    if len > MAX_HEADER_BOX_BYTES {
        return Err(Mp4Error::Malformed {
            path: fourcc_str(&b.fourcc),
            offset: b.offset,
            problem: format!("{len} bytes is more than vidlog reads into memory for this box"),
        });
    }
    reader
        .seek(SeekFrom::Start(b.offset + b.header))
        .map_err(io_err("seeking to a box"))?;
    let mut data = vec![0u8; len as usize];
    reader
        .read_exact(&mut data)
        .map_err(io_err("reading a box"))?;
    Ok(data)
}

/// Per-track state needed while reading fragments.
struct TrackState {
    /// Index in `tracks`.
    index: usize,
    track_id: u32,
    default_duration: u32,
    default_size: u32,
    default_flags: u32,
    /// Edit shift applied to pts (`-media_time + empty edits`).
    pts_shift: i64,
    /// Decode time where the next fragment continues (without `tfdt`).
    next_dts: i64,
}

impl<R: Read + Seek> Mp4Demuxer<R> {
    /// Reads the file's structure: `moov` and any `moof`s. Sample data is read later by
    /// [`read_sample`](Self::read_sample).
    pub fn open(mut reader: R) -> Result<Self, Mp4Error> {
        let file_len = reader
            .seek(SeekFrom::End(0))
            .map_err(io_err("finding the file length"))?;
        let top = scan_top_level(&mut reader, file_len)?;
        let moov_box = top
            .iter()
            .find(|b| &b.fourcc == b"moov")
            .ok_or(Mp4Error::MissingBox {
                path: "moov".into(),
                hint: ": the file is truncated (a plain MP4 keeps moov at its end) or not an MP4",
            })?;
        let moov_data = read_box_payload(&mut reader, moov_box)?;
        let moov_children = children(&moov_data, moov_box.offset + moov_box.header, "moov")?;
        let mvhd_timescale = match find(&moov_children, b"mvhd") {
            Some(mvhd) => {
                let mut f = Fields::new(mvhd);
                let (version, _) = f.full_header()?;
                f.skip(
                    if version == 1 { 16 } else { 8 },
                    "creation/modification times",
                )?;
                f.u32("timescale")?
            }
            None => 0,
        };
        let mut trex: Vec<(u32, u32, u32, u32)> = Vec::new();
        if let Some(mvex) = find(&moov_children, b"mvex") {
            for b in children(mvex.payload, mvex.payload_offset, &mvex.path)? {
                if &b.fourcc == b"trex" {
                    let mut f = Fields::new(&b);
                    f.full_header()?;
                    let id = f.u32("track_ID")?;
                    f.u32("default_sample_description_index")?;
                    trex.push((
                        id,
                        f.u32("default_sample_duration")?,
                        f.u32("default_sample_size")?,
                        f.u32("default_sample_flags")?,
                    ));
                }
            }
        }

        let mut tracks = Vec::new();
        let mut formats = Vec::new();
        let mut states = Vec::new();
        for trak in moov_children.iter().filter(|b| &b.fourcc == b"trak") {
            let Some((track, format, pts_shift)) = parse_trak(trak, mvhd_timescale, file_len)?
            else {
                continue;
            };
            let (default_duration, default_size, default_flags) = trex
                .iter()
                .find(|t| t.0 == track.track_id)
                .map_or((0, 0, 0), |t| (t.1, t.2, t.3));
            let next_dts = track
                .samples
                .last()
                .map_or(0, |s| s.dts + i64::from(s.duration));
            states.push(TrackState {
                index: tracks.len(),
                track_id: track.track_id,
                default_duration,
                default_size,
                default_flags,
                pts_shift,
                next_dts,
            });
            tracks.push(track);
            formats.push(format);
        }
        if tracks.is_empty() {
            return Err(Mp4Error::NoVideoTrack);
        }
        for b in top.iter().filter(|b| &b.fourcc == b"moof") {
            let data = read_box_payload(&mut reader, b)?;
            parse_moof(&data, b, file_len, &mut tracks, &mut states)?;
        }
        Ok(Mp4Demuxer {
            reader,
            tracks,
            formats,
        })
    }

    /// The video tracks, in file order.
    pub fn tracks(&self) -> &[DemuxTrack] {
        &self.tracks
    }

    /// Sample `index` (decode order) of track `track` (an index into [`tracks`](Self::tracks)),
    /// as Annex B: length prefixes become 4-byte start codes, and sync samples get the
    /// configuration record's parameter sets in front unless they carry an SPS already. AV1
    /// samples come back as stored.
    pub fn read_sample(&mut self, track: usize, index: usize) -> Result<Vec<u8>, Mp4Error> {
        let count = self.tracks.len();
        let (Some(t), Some(format)) = (self.tracks.get(track), self.formats.get(track)) else {
            return Err(Mp4Error::NoSuchTrack { track, count });
        };
        let Some(sample) = t.samples.get(index) else {
            return Err(Mp4Error::NoSuchSample {
                track,
                index,
                count: t.samples.len(),
            });
        };
        self.reader
            .seek(SeekFrom::Start(sample.offset))
            .map_err(io_err("seeking to a sample"))?;
        let mut data = vec![0u8; sample.size as usize];
        self.reader
            .read_exact(&mut data)
            .map_err(io_err("reading a sample"))?;
        if format.length_size == 0 {
            return Ok(data);
        }
        let nals = split_length_prefixed(&data, format.length_size).map_err(|e| {
            Mp4Error::BadSampleData {
                track,
                index,
                offset: sample.offset,
                problem: e.to_string(),
            }
        })?;
        let is_sps = |nal: &[u8]| {
            format.sps_type.is_some_and(|(shift, mask, value)| {
                nal.first().is_some_and(|h| (h >> shift) & mask == value)
            })
        };
        let mut out = Vec::with_capacity(data.len() + 64);
        if sample.is_sync && !nals.iter().any(|n| is_sps(n.bytes)) {
            for ps in &format.parameter_sets {
                out.extend_from_slice(&START_CODE_4);
                out.extend_from_slice(ps);
            }
        }
        for nal in nals {
            out.extend_from_slice(&START_CODE_4);
            out.extend_from_slice(nal.bytes);
        }
        Ok(out)
    }
}

/// Presentation times (ns) of the first video track's frames, in presentation order: the
/// frames the edit list shows (pre-roll before it and frames after its end left out).
pub fn read_frame_timestamps_nanos(mp4_bytes: &[u8]) -> Result<Vec<i64>, Mp4Error> {
    let demuxer = Mp4Demuxer::open(Cursor::new(mp4_bytes))?;
    let track = demuxer.tracks().first().ok_or(Mp4Error::NoVideoTrack)?;
    let end = track.presentation_end.unwrap_or(i64::MAX);
    let mut pts: Vec<i64> = track
        .samples
        .iter()
        .filter(|s| s.pts >= 0 && s.pts < end)
        .map(|s| s.pts_ns(track.timescale))
        .collect();
    pts.sort_unstable();
    Ok(pts)
}

// ---------------------------------------------------------------------------------------------
// moov/trak
// ---------------------------------------------------------------------------------------------

/// Parses a `trak`; `None` for tracks that are not video.
fn parse_trak(
    trak: &BoxRef<'_>,
    mvhd_timescale: u32,
    file_len: u64,
) -> Result<Option<(DemuxTrack, SampleFormat, i64)>, Mp4Error> {
    let kids = children(trak.payload, trak.payload_offset, &trak.path)?;
    let mdia = require(&kids, b"mdia", &trak.path)?;
    let mdia_kids = children(mdia.payload, mdia.payload_offset, &mdia.path)?;
    let hdlr = require(&mdia_kids, b"hdlr", &mdia.path)?;
    let mut f = Fields::new(hdlr);
    f.full_header()?;
    f.u32("pre_defined")?;
    if f.take(4, "handler_type")? != b"vide" {
        return Ok(None);
    }

    let tkhd = require(&kids, b"tkhd", &trak.path)?;
    let mut f = Fields::new(tkhd);
    let (version, _) = f.full_header()?;
    f.skip(
        if version == 1 { 16 } else { 8 },
        "creation/modification times",
    )?;
    let track_id = f.u32("track_ID")?;

    let mdhd = require(&mdia_kids, b"mdhd", &mdia.path)?;
    let mut f = Fields::new(mdhd);
    let (version, _) = f.full_header()?;
    f.skip(
        if version == 1 { 16 } else { 8 },
        "creation/modification times",
    )?;
    let timescale = f.u32("timescale")?;
    if timescale == 0 {
        return Err(f.malformed("timescale is 0".into()));
    }

    // Edit list: presentation = composition - media_time + empty edits before it.
    let mut pts_shift = 0i64;
    let mut presentation_end = None;
    if let Some(edts) = find(&kids, b"edts") {
        let edts_kids = children(edts.payload, edts.payload_offset, &edts.path)?;
        if let Some(elst) = find(&edts_kids, b"elst") {
            let mut f = Fields::new(elst);
            let (version, _) = f.full_header()?;
            let entry_size = if version == 1 { 20 } else { 12 };
            let n = f.count(entry_size, "entry_count")?;
            let mut empty = 0i64;
            for _ in 0..n {
                let (duration, media_time) = if version == 1 {
                    (f.u64("segment_duration")?, f.u64("media_time")? as i64)
                } else {
                    (
                        u64::from(f.u32("segment_duration")?),
                        i64::from(f.u32("media_time")? as i32),
                    )
                };
                f.u32("media_rate")?;
                if media_time == -1 {
                    // Empty edit: convert from the movie timescale.
                    let scaled = if mvhd_timescale == 0 {
                        0
                    } else {
                        (i128::from(duration) * i128::from(timescale) / i128::from(mvhd_timescale))
                            as i64
                    };
                    empty = empty.saturating_add(scaled);
                    continue;
                }
                pts_shift = empty.saturating_sub(media_time);
                // A segment duration of 0 means "to the end of the media" (fragmented files).
                // Rounded up, so a coarse movie timescale never hides the last frame.
                if duration > 0 && mvhd_timescale > 0 {
                    let mvhd = i128::from(mvhd_timescale);
                    let scaled = (i128::from(duration) * i128::from(timescale) + mvhd - 1) / mvhd;
                    presentation_end =
                        Some(empty.saturating_add(i64::try_from(scaled).unwrap_or(i64::MAX)));
                }
                break;
            }
        }
    }

    let minf = require(&mdia_kids, b"minf", &mdia.path)?;
    let minf_kids = children(minf.payload, minf.payload_offset, &minf.path)?;
    let stbl = require(&minf_kids, b"stbl", &minf.path)?;
    let stbl_kids = children(stbl.payload, stbl.payload_offset, &stbl.path)?;
    let stsd = require(&stbl_kids, b"stsd", &stbl.path)?;
    let (codec, codec_string, width, height, format) = parse_stsd(stsd)?;
    let samples = parse_sample_tables(&stbl_kids, &stbl.path, pts_shift, file_len)?;
    Ok(Some((
        DemuxTrack {
            track_id,
            codec,
            codec_string,
            width,
            height,
            timescale,
            samples,
            presentation_end,
        },
        format,
        pts_shift,
    )))
}

type StsdInfo = (Option<VideoCodec>, String, u16, u16, SampleFormat);

fn parse_stsd(stsd: &BoxRef<'_>) -> Result<StsdInfo, Mp4Error> {
    let mut f = Fields::new(stsd);
    f.full_header()?;
    let n = f.u32("entry_count")?;
    if n == 0 {
        return Err(f.malformed("no sample entry".into()));
    }
    let rest = &stsd.payload[8..];
    let entries = children(rest, stsd.payload_offset + 8, &stsd.path)?;
    let entry = entries
        .first()
        .ok_or_else(|| f.malformed("no sample entry".into()))?;
    let mut e = Fields::new(entry);
    e.skip(24, "sample entry header")?;
    let width = e.u16("width")?;
    let height = e.u16("height")?;
    e.skip(50, "visual sample entry fields")?;
    let inner = children(&entry.payload[78..], entry.payload_offset + 78, &entry.path)?;
    let fourcc = fourcc_str(&entry.fourcc);
    let config = |name: &[u8; 4]| find(&inner, name).map(|b| b.payload);
    let (codec, codec_string, format) = match &entry.fourcc {
        b"avc1" | b"avc3" => {
            let avcc = config(b"avcC");
            let (string, format) = match avcc {
                Some(avcc) => avc_format(avcc, entry)?,
                None => (fourcc.clone(), SampleFormat::default()),
            };
            let format = SampleFormat {
                length_size: if avcc.is_some() {
                    format.length_size
                } else {
                    4
                },
                sps_type: Some((0, 0x1F, 7)),
                ..format
            };
            (Some(VideoCodec::H264), string, format)
        }
        b"hvc1" | b"hev1" => {
            let (string, format) = match config(b"hvcC") {
                Some(hvcc) => hevc_format(&fourcc, hvcc, entry)?,
                None => (
                    fourcc.clone(),
                    SampleFormat {
                        length_size: 4,
                        ..SampleFormat::default()
                    },
                ),
            };
            (
                Some(VideoCodec::H265),
                string,
                SampleFormat {
                    sps_type: Some((1, 0x3F, 33)),
                    ..format
                },
            )
        }
        b"av01" => {
            let string = config(b"av1C")
                .and_then(av1_codec_string)
                .unwrap_or_else(|| fourcc.clone());
            (Some(VideoCodec::Av1), string, SampleFormat::default())
        }
        b"vp09" => {
            let string = config(b"vpcC")
                .and_then(vp9_codec_string)
                .unwrap_or_else(|| fourcc.clone());
            (Some(VideoCodec::Vp9), string, SampleFormat::default())
        }
        _ => (None, fourcc, SampleFormat::default()),
    };
    Ok((codec, codec_string, width, height, format))
}

fn avc_format(avcc: &[u8], entry: &BoxRef<'_>) -> Result<(String, SampleFormat), Mp4Error> {
    let config =
        crate::bitstream::h264::AvcDecoderConfig::parse(avcc).map_err(|e| Mp4Error::Malformed {
            path: format!("{}/avcC", entry.path),
            offset: entry.offset,
            problem: e.to_string(),
        })?;
    let string = format!(
        "avc1.{:02X}{:02X}{:02X}",
        config.profile_idc, config.profile_compatibility, config.level_idc
    );
    let parameter_sets = config.sps.iter().chain(&config.pps).cloned().collect();
    Ok((
        string,
        SampleFormat {
            length_size: usize::from(config.length_size),
            parameter_sets,
            sps_type: None,
        },
    ))
}

fn hevc_format(
    fourcc: &str,
    hvcc: &[u8],
    entry: &BoxRef<'_>,
) -> Result<(String, SampleFormat), Mp4Error> {
    let bad = |problem: &str| Mp4Error::Malformed {
        path: format!("{}/hvcC", entry.path),
        offset: entry.offset,
        problem: problem.to_string(),
    };
    if hvcc.len() < 23 {
        return Err(bad("shorter than its 23-byte header"));
    }
    let string = crate::bitstream::h265::ProfileTierLevel::from_hvcc(hvcc)
        .ok_or_else(|| bad("shorter than its 23-byte header"))?
        .codec_string(fourcc);
    let length_size = usize::from(hvcc[21] & 3) + 1;
    let mut parameter_sets = Vec::new();
    let mut pos = 23usize;
    for _ in 0..hvcc[22] {
        let head = hvcc
            .get(pos..pos + 3)
            .ok_or_else(|| bad("truncated NAL array"))?;
        let count = u16::from_be_bytes([head[1], head[2]]);
        pos += 3;
        for _ in 0..count {
            let len = hvcc
                .get(pos..pos + 2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                .ok_or_else(|| bad("truncated NAL length"))?;
            pos += 2;
            let nal = hvcc
                .get(pos..pos + len)
                .ok_or_else(|| bad("NAL unit past the end"))?;
            pos += len;
            let nal_type = nal.first().map_or(0, |h| (h >> 1) & 0x3F);
            if (32..=34).contains(&nal_type) {
                parameter_sets.push(nal.to_vec());
            }
        }
    }
    Ok((
        string,
        SampleFormat {
            length_size,
            parameter_sets,
            sps_type: None,
        },
    ))
}

fn av1_codec_string(av1c: &[u8]) -> Option<String> {
    let (b1, b2) = (*av1c.get(1)?, *av1c.get(2)?);
    let profile = b1 >> 5;
    let level = b1 & 0x1F;
    let tier = if b2 & 0x80 != 0 { 'H' } else { 'M' };
    let bit_depth = match (b2 & 0x40 != 0, b2 & 0x20 != 0) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    Some(format!("av01.{profile}.{level:02}{tier}.{bit_depth:02}"))
}

/// `vp09.PP.LL.DD` from a `vpcC` box payload (version 1: version and flags, then profile,
/// level, and bit depth in the high 4 bits of the next byte).
fn vp9_codec_string(vpcc: &[u8]) -> Option<String> {
    let (profile, level, depth) = (*vpcc.get(4)?, *vpcc.get(5)?, *vpcc.get(6)? >> 4);
    Some(format!("vp09.{profile:02}.{level:02}.{depth:02}"))
}

fn parse_sample_tables(
    stbl: &[BoxRef<'_>],
    path: &str,
    pts_shift: i64,
    file_len: u64,
) -> Result<Vec<DemuxSample>, Mp4Error> {
    // Sizes.
    let stsz = require(stbl, b"stsz", path)?;
    let mut f = Fields::new(stsz);
    f.full_header()?;
    let constant = f.u32("sample_size")?;
    let count = if constant == 0 {
        f.count(4, "sample_count")?
    } else {
        f.u32("sample_count")? as usize
    };
    if count as u64 > file_len {
        return Err(f.malformed(format!(
            "sample_count {count} is more than the file's {file_len} bytes could hold"
        )));
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let size = if constant == 0 {
            f.u32("entry_size")?
        } else {
            constant
        };
        samples.push(DemuxSample {
            offset: 0,
            size,
            dts: 0,
            pts: 0,
            duration: 0,
            is_sync: true,
        });
    }

    // Decode times.
    let stts = require(stbl, b"stts", path)?;
    let mut f = Fields::new(stts);
    f.full_header()?;
    let n = f.count(8, "entry_count")?;
    let mut i = 0usize;
    let mut dts = 0i64;
    for _ in 0..n {
        let run = f.u32("sample_count")? as usize;
        let delta = f.u32("sample_delta")?;
        for _ in 0..run {
            let Some(s) = samples.get_mut(i) else { break };
            s.dts = dts;
            s.duration = delta;
            dts = dts.saturating_add(i64::from(delta));
            i += 1;
        }
    }
    if i < count {
        return Err(f.malformed(format!("covers {i} samples, stsz has {count}")));
    }

    // Composition offsets (signed: ffmpeg writes negative ones with version 0 too).
    let mut offsets = vec![0i64; count];
    if let Some(ctts) = find(stbl, b"ctts") {
        let mut f = Fields::new(ctts);
        f.full_header()?;
        let n = f.count(8, "entry_count")?;
        let mut i = 0usize;
        for _ in 0..n {
            let run = f.u32("sample_count")? as usize;
            let offset = i64::from(f.u32("sample_offset")? as i32);
            for _ in 0..run {
                let Some(o) = offsets.get_mut(i) else { break };
                *o = offset;
                i += 1;
            }
        }
    }
    for (s, o) in samples.iter_mut().zip(&offsets) {
        s.pts = s.dts.saturating_add(*o).saturating_add(pts_shift);
    }

    // Sync samples.
    if let Some(stss) = find(stbl, b"stss") {
        let mut f = Fields::new(stss);
        f.full_header()?;
        let n = f.count(4, "entry_count")?;
        for s in samples.iter_mut() {
            s.is_sync = false;
        }
        for _ in 0..n {
            let number = f.u32("sample_number")? as usize;
            if let Some(s) = number.checked_sub(1).and_then(|i| samples.get_mut(i)) {
                s.is_sync = true;
            }
        }
    }

    // Chunk offsets.
    let chunk_offsets: Vec<u64> = if let Some(co64) = find(stbl, b"co64") {
        let mut f = Fields::new(co64);
        f.full_header()?;
        let n = f.count(8, "entry_count")?;
        (0..n)
            .map(|_| f.u64("chunk_offset"))
            .collect::<Result<_, _>>()?
    } else {
        let stco = require(stbl, b"stco", path)?;
        let mut f = Fields::new(stco);
        f.full_header()?;
        let n = f.count(4, "entry_count")?;
        (0..n)
            .map(|_| f.u32("chunk_offset").map(u64::from))
            .collect::<Result<_, _>>()?
    };
    let stsc = require(stbl, b"stsc", path)?;
    let mut f = Fields::new(stsc);
    f.full_header()?;
    let n = f.count(12, "entry_count")?;
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        let first_chunk = f.u32("first_chunk")? as usize;
        let per_chunk = f.u32("samples_per_chunk")? as usize;
        f.u32("sample_description_index")?;
        if first_chunk == 0 {
            return Err(f.malformed("first_chunk is 0 (chunks count from 1)".into()));
        }
        runs.push((first_chunk, per_chunk));
    }
    let mut i = 0usize;
    for (r, &(first_chunk, per_chunk)) in runs.iter().enumerate() {
        let end_chunk = runs.get(r + 1).map_or(chunk_offsets.len(), |next| {
            (next.0 - 1).min(chunk_offsets.len())
        });
        let chunks = chunk_offsets.get(first_chunk - 1..end_chunk).unwrap_or(&[]);
        for &chunk_offset in chunks {
            let mut offset = chunk_offset;
            for _ in 0..per_chunk {
                let Some(s) = samples.get_mut(i) else { break };
                s.offset = offset;
                offset = offset.saturating_add(u64::from(s.size));
                i += 1;
            }
            if i >= count {
                break;
            }
        }
    }
    if i < count {
        return Err(f.malformed(format!("chunks hold {i} samples, stsz has {count}")));
    }
    check_in_file(&samples, file_len, path)?;
    Ok(samples)
}

fn check_in_file(samples: &[DemuxSample], file_len: u64, path: &str) -> Result<(), Mp4Error> {
    for (i, s) in samples.iter().enumerate() {
        let end = s.offset.checked_add(u64::from(s.size));
        if end.is_none_or(|end| end > file_len) {
            return Err(Mp4Error::Malformed {
                path: path.to_string(),
                offset: s.offset,
                problem: format!(
                    "sample {i} ({} bytes at byte {}) ends past the end of the file ({file_len} \
                     bytes), as in a truncated file",
                    s.size, s.offset
                ),
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Movie fragments
// ---------------------------------------------------------------------------------------------

fn parse_moof(
    data: &[u8],
    moof: &TopBox,
    file_len: u64,
    tracks: &mut [DemuxTrack],
    states: &mut [TrackState],
) -> Result<(), Mp4Error> {
    let kids = children(data, moof.offset + moof.header, "moof")?;
    for traf in kids.iter().filter(|b| &b.fourcc == b"traf") {
        let traf_kids = children(traf.payload, traf.payload_offset, &traf.path)?;
        let tfhd = require(&traf_kids, b"tfhd", &traf.path)?;
        let mut f = Fields::new(tfhd);
        let (_, flags) = f.full_header()?;
        let track_id = f.u32("track_ID")?;
        let Some(state) = states.iter_mut().find(|s| s.track_id == track_id) else {
            continue;
        };
        let mut base = moof.offset;
        if flags & 0x01 != 0 {
            base = f.u64("base_data_offset")?;
        }
        if flags & 0x02 != 0 {
            f.u32("sample_description_index")?;
        }
        let default_duration = if flags & 0x08 != 0 {
            f.u32("default_sample_duration")?
        } else {
            state.default_duration
        };
        let default_size = if flags & 0x10 != 0 {
            f.u32("default_sample_size")?
        } else {
            state.default_size
        };
        let default_flags = if flags & 0x20 != 0 {
            f.u32("default_sample_flags")?
        } else {
            state.default_flags
        };
        let mut dts = state.next_dts;
        if let Some(tfdt) = find(&traf_kids, b"tfdt") {
            let mut f = Fields::new(tfdt);
            let (version, _) = f.full_header()?;
            dts = if version == 1 {
                f.u64("baseMediaDecodeTime")? as i64
            } else {
                i64::from(f.u32("baseMediaDecodeTime")?)
            };
        }
        let track = &mut tracks[state.index];
        let first_new = track.samples.len();
        let mut next_offset = base;
        for trun in traf_kids.iter().filter(|b| &b.fourcc == b"trun") {
            let mut f = Fields::new(trun);
            let (version, tflags) = f.full_header()?;
            let per_sample = [0x100, 0x200, 0x400, 0x800]
                .iter()
                .filter(|&&bit| tflags & bit != 0)
                .count()
                * 4;
            let count = f.u32("sample_count")? as usize;
            let mut offset = if tflags & 0x01 != 0 {
                let rel = i64::from(f.u32("data_offset")? as i32);
                base.checked_add_signed(rel).ok_or_else(|| {
                    f.malformed(format!("data_offset {rel} points before the file"))
                })?
            } else {
                next_offset
            };
            let first_flags = if tflags & 0x04 != 0 {
                Some(f.u32("first_sample_flags")?)
            } else {
                None
            };
            let left = trun.payload.len().saturating_sub(f.pos);
            if count.saturating_mul(per_sample) > left || count as u64 > file_len {
                return Err(f.malformed(format!(
                    "sample_count {count} needs {} bytes of entries, {left} follow",
                    count.saturating_mul(per_sample)
                )));
            }
            for k in 0..count {
                let duration = if tflags & 0x100 != 0 {
                    f.u32("sample_duration")?
                } else {
                    default_duration
                };
                let size = if tflags & 0x200 != 0 {
                    f.u32("sample_size")?
                } else {
                    default_size
                };
                let mut sample_flags = if tflags & 0x400 != 0 {
                    f.u32("sample_flags")?
                } else {
                    default_flags
                };
                if k == 0
                    && let Some(first) = first_flags
                {
                    sample_flags = first;
                }
                let cto = if tflags & 0x800 != 0 {
                    let raw = f.u32("sample_composition_time_offset")?;
                    if version == 0 {
                        i64::from(raw)
                    } else {
                        i64::from(raw as i32)
                    }
                } else {
                    0
                };
                track.samples.push(DemuxSample {
                    offset,
                    size,
                    dts,
                    pts: dts.saturating_add(cto).saturating_add(state.pts_shift),
                    duration,
                    is_sync: sample_flags & 0x0001_0000 == 0,
                });
                offset = offset.saturating_add(u64::from(size));
                dts = dts.saturating_add(i64::from(duration));
            }
            next_offset = offset;
        }
        state.next_dts = dts;
        check_in_file(&track.samples[first_new..], file_len, &traf.path)?;
    }
    Ok(())
}
