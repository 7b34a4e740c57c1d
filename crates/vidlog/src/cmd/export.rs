//! `vidlog export`: a video entity of a recording to MP4 without re-encoding (plain or
//! fragmented, any time range, B-frames with correct decode and composition times), or
//! every video entity to MCAP as `foxglove.CompressedVideo` channels.
//!
//! Reads the store's index for timing, then streams sample bytes chunk by chunk, so memory
//! holds the sample table plus one chunk whatever the recording's size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use vidlog_store::{ChunkStore, Recording, VideoIndex};
use vidlog_types::{EntityPath, TimeKind};
use vidlog_video::mp4::{Mp4Muxer, Mp4Options, SampleEntry};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Mp4,
    Mcap,
}

#[derive(clap::Args)]
#[command(
    about = "Export video to MP4 (no re-encoding) or MCAP",
    after_help = "A range that starts inside a GOP starts decoding at the keyframe before --from and \
                  uses an MP4 edit list so playback starts at --from. A stream whose parameters \
                  change mid-way (new SPS) is split into numbered files: out.mp4, out.2.mp4, ...\n\n\
                  Times are in the timeline's unit: 12.5s, 1500ms, 250us (duration), 120 \
                  (sequence), 2026-11-21T10:00:00Z (timestamp).\n\n\
                  Examples:\n  vidlog export run.vlog --entity camera/front -o front.mp4\n  \
                  vidlog export run.vlog --entity camera/front --from 10s --to 20s -o clip.mp4\n  \
                  vidlog export run.vlog --entity camera/front --fragmented -o - | ffplay -\n  \
                  vidlog export run.vlog --format mcap -o run.mcap"
)]
pub struct ExportArgs {
    /// The recording.
    pub recording: PathBuf,
    /// Video entity to export (MP4: needed when the recording has several).
    #[arg(long)]
    pub entity: Option<String>,
    /// Output file; `-` writes fragmented MP4 to stdout.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Timeline giving presentation times (default: the stream's duration timeline, else its
    /// timestamp timeline).
    #[arg(long)]
    pub timeline: Option<String>,
    /// Start of the range (inclusive): the frame shown at this time is the first frame.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the range (inclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Fragmented MP4 (streamable, bounded memory; required for `-o -`).
    #[arg(long)]
    pub fragmented: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "mp4")]
    pub format: ExportFormat,
    /// Print a JSON summary on stdout (not with `-o -`).
    #[arg(long)]
    pub json: bool,
}

/// One file written.
#[derive(Serialize)]
pub struct ExportedFile {
    pub path: String,
    pub first_sample: usize,
    pub samples: usize,
    pub timescale: u32,
    pub duration_seconds: f64,
    pub bytes: u64,
    pub codec_string: String,
}

#[derive(Serialize)]
pub struct ExportSummary {
    pub entity: String,
    pub timeline: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub files: Vec<ExportedFile>,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let to_stdout = args.output.as_os_str() == "-";
    anyhow::ensure!(
        !(to_stdout && args.json),
        "--json prints on stdout; it cannot be used with -o -"
    );
    let recording = Recording::open(&args.recording)
        .with_context(|| format!("opening {}", args.recording.display()))?;
    if let Some(report) = recording.recovery() {
        eprintln!("vidlog export: {}: {report}", args.recording.display());
    }
    if args.format == ExportFormat::Mcap {
        return super::export_mcap::run(&recording, &args);
    }
    let store = &recording.store;
    let entity = pick_entity(store, args.entity.as_deref())?;
    let video = store.video(&entity).context("checked by pick_entity")?;
    let (timeline, kind) = pick_timeline(video, args.timeline.as_deref(), &entity)?;
    let pts = video
        .pts(&timeline)
        .with_context(|| format!("{entity}: some samples have no time on timeline {timeline:?}"))?;
    let parse = |text: &Option<String>, what: &str| -> anyhow::Result<Option<i64>> {
        text.as_deref()
            .map(|t| {
                kind.parse_value(t)
                    .map_err(|e| anyhow::anyhow!("--{what}: {e}"))
            })
            .transpose()
    };
    let from = parse(&args.from, "from")?;
    let to = parse(&args.to, "to")?;
    let range = SampleRange::select(video, &timeline, pts, from, to)
        .with_context(|| format!("{entity} on timeline {timeline:?}"))?;
    anyhow::ensure!(
        !to_stdout || args.fragmented,
        "-o - (stdout) needs --fragmented: a plain MP4 is finished by seeking back"
    );
    let segments = range.split_at_parameter_changes(video);
    anyhow::ensure!(
        !(to_stdout && segments.len() > 1),
        "the stream's parameters change at sample {}: it exports as several files, so pass -o FILE",
        segments.get(1).map_or(0, |s| s.start)
    );
    let codec = store
        .codec(&entity)
        .with_context(|| format!("{entity}: no codec logged, so its samples cannot be exported"))?;
    let total_bytes: u64 = video.samples()[range.keyframe..=range.last]
        .iter()
        .map(|s| u64::from(s.size))
        .sum();
    let bar = if to_stdout || args.json {
        indicatif::ProgressBar::hidden()
    } else {
        super::progress_bar(total_bytes, "exporting")
    };
    let mut files = Vec::new();
    for (n, segment) in segments.iter().enumerate() {
        let path = numbered_path(&args.output, n);
        let first = store
            .video_samples(&entity, segment.start..segment.start + 1)
            .next()
            .context("segment is empty")??;
        let entry = SampleEntry::from_keyframe(codec, first.as_slice()).with_context(|| {
            format!(
                "{entity} sample {}: building the MP4 sample entry",
                segment.start
            )
        })?;
        let codec_string = entry.codec_string();
        let segment_pts = &pts[segment.clone()];
        let options = Mp4Options {
            fragmented: args.fragmented,
            timescale: None,
            start: if n == 0 {
                range.start.filter(|s| segment_pts.iter().any(|p| p < s))
            } else {
                None
            },
            end: if n + 1 == segments.len() {
                range.end
            } else {
                None
            },
            last_duration: last_frame_duration(video, &timeline, segment_pts),
        };
        let summary = if to_stdout {
            let out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            let muxer = Mp4Muxer::new_streaming(out, entry, segment_pts, options)?;
            write_samples(muxer, store, &entity, segment.clone(), &bar)?
        } else {
            let file =
                File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            let written = Mp4Muxer::new(
                BufWriter::with_capacity(1 << 20, file),
                entry,
                segment_pts,
                options,
            )
            .map_err(anyhow::Error::from)
            .and_then(|muxer| write_samples(muxer, store, &entity, segment.clone(), &bar))
            .with_context(|| format!("writing {}", path.display()));
            match written {
                Ok(summary) => summary,
                Err(e) => {
                    // No half-written MP4 left behind.
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
            }
        };
        files.push(ExportedFile {
            path: if to_stdout {
                "-".into()
            } else {
                path.display().to_string()
            },
            first_sample: segment.start,
            samples: summary.samples,
            timescale: summary.timescale,
            duration_seconds: summary.duration_ns as f64 / 1e9,
            bytes: summary.bytes,
            codec_string,
        });
    }
    bar.finish_and_clear();
    if files.len() > 1 {
        eprintln!(
            "vidlog export: the stream's parameters change mid-way, so it was split into {} files: {}",
            files.len(),
            files
                .iter()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let summary = ExportSummary {
        entity: entity.to_string(),
        timeline,
        from,
        to,
        files,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !to_stdout {
        for f in &summary.files {
            eprintln!(
                "vidlog export: {} samples of {} ({}) -> {} ({:.3} s, {} bytes, timescale {})",
                f.samples,
                summary.entity,
                f.codec_string,
                f.path,
                f.duration_seconds,
                f.bytes,
                f.timescale
            );
        }
    }
    Ok(())
}

/// Streams `samples` (decode order) from the store into `muxer`.
fn write_samples<W: Write>(
    mut muxer: Mp4Muxer<W>,
    store: &ChunkStore,
    entity: &EntityPath,
    samples: std::ops::Range<usize>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<vidlog_video::mp4::Mp4Summary> {
    for sample in store.video_samples(entity, samples) {
        let sample = sample?;
        muxer
            .push(sample.as_slice(), sample.is_keyframe)
            .with_context(|| format!("{entity} sample {}", sample.index))?;
        bar.inc(sample.bytes.len() as u64);
    }
    Ok(muxer.finish()?)
}

/// The only video entity, or the one asked for.
pub fn pick_entity(store: &ChunkStore, asked: Option<&str>) -> anyhow::Result<EntityPath> {
    let videos: Vec<&EntityPath> = store.video_entities().collect();
    match asked {
        Some(name) => {
            let entity = EntityPath::parse(name)?;
            if store.video(&entity).is_none() {
                bail!(
                    "{entity} has no video samples; video entities: {}",
                    list(&videos)
                );
            }
            Ok(entity)
        }
        None => match videos.as_slice() {
            [only] => Ok((*only).clone()),
            [] => bail!("the recording has no video entity"),
            _ => bail!(
                "the recording has several video entities; pick one with --entity: {}",
                list(&videos)
            ),
        },
    }
}

fn list(entities: &[&EntityPath]) -> String {
    if entities.is_empty() {
        return "none".into();
    }
    entities
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The timeline asked for, or the stream's duration timeline, or its timestamp timeline.
pub fn pick_timeline(
    video: &VideoIndex,
    asked: Option<&str>,
    entity: &EntityPath,
) -> anyhow::Result<(String, TimeKind)> {
    let mut timelines: Vec<(String, TimeKind)> =
        video.timelines().map(|(n, k)| (n.to_string(), k)).collect();
    timelines.sort_by_key(|(name, kind)| (*kind, name.clone()));
    let chosen = match asked {
        Some(name) => timelines
            .iter()
            .find(|(n, _)| n == name)
            .cloned()
            .with_context(|| {
                format!(
                    "{entity} has no timeline {name:?}; it has {}",
                    timelines
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?,
        None => timelines
            .iter()
            .find(|(_, k)| *k == TimeKind::Duration)
            .or_else(|| timelines.iter().find(|(_, k)| *k == TimeKind::Timestamp))
            .cloned()
            .with_context(|| {
                format!("{entity} has no duration or timestamp timeline to give presentation times")
            })?,
    };
    if chosen.1 == TimeKind::Sequence {
        bail!(
            "timeline {:?} is a sequence, which has no unit of time; export on a duration or timestamp timeline",
            chosen.0
        );
    }
    Ok(chosen)
}

/// The samples to write, in decode order: `keyframe..=last`.
pub struct SampleRange {
    pub keyframe: usize,
    pub last: usize,
    /// Presentation start when the range starts inside a GOP (`--from`).
    pub start: Option<i64>,
    /// Presentation end (exclusive) when frames after the range are written because frames in
    /// it reference them (`--to` before a B-frame's reference): the next frame's time.
    pub end: Option<i64>,
}

impl SampleRange {
    pub fn select(
        video: &VideoIndex,
        timeline: &str,
        pts: &[i64],
        from: Option<i64>,
        to: Option<i64>,
    ) -> anyhow::Result<Self> {
        let (lo, hi) = (
            pts.iter().copied().min().unwrap_or(0),
            pts.iter().copied().max().unwrap_or(0),
        );
        let kind = video
            .timelines()
            .find(|(name, _)| name.as_str() == timeline)
            .map_or(TimeKind::Duration, |(_, kind)| kind);
        let covers = |t: i64| kind.format_value(t);
        if let Some(f) = from.filter(|&f| f > hi) {
            bail!(
                "--from {} is after the last frame (the stream covers {} .. {})",
                covers(f),
                covers(lo),
                covers(hi)
            );
        }
        // The first frame is the one shown at `from`: the latest with pts <= from.
        let first_pts = match from {
            Some(f) => match video.plan(timeline, f) {
                Some(plan) => plan.pts,
                None => lo,
            },
            None => lo,
        };
        let to = to.unwrap_or(hi);
        let selected: Vec<usize> = (0..pts.len())
            .filter(|&i| pts[i] >= first_pts && pts[i] <= to)
            .collect();
        let (Some(&first), Some(&last)) = (selected.iter().min(), selected.iter().max()) else {
            bail!(
                "no samples in the range (the stream covers {} .. {})",
                covers(lo),
                covers(hi)
            );
        };
        let keyframes = video.keyframes();
        let k = keyframes.partition_point(|&k| k <= first);
        let keyframe = *keyframes
            .get(k.wrapping_sub(1))
            .filter(|_| k > 0)
            .with_context(|| {
                format!("no keyframe at or before sample {first}: nothing decodable to start from")
            })?;
        // Samples decoded before `last` but presented after the range are written (they are
        // references); the presentation ends where the next frame of the stream starts.
        let shown_last = selected.iter().map(|&i| pts[i]).max().unwrap_or(hi);
        let end = (pts[keyframe..=last].iter().any(|&p| p > shown_last))
            .then(|| pts.iter().copied().filter(|&p| p > shown_last).min())
            .flatten();
        Ok(SampleRange {
            keyframe,
            last,
            start: from.map(|_| first_pts),
            end,
        })
    }

    /// `keyframe..=last` cut where a keyframe brings parameter sets different from the
    /// ones in force (a new SPS: another size or profile).
    pub fn split_at_parameter_changes(&self, video: &VideoIndex) -> Vec<std::ops::Range<usize>> {
        let samples = video.samples();
        let mut current = samples[..=self.keyframe]
            .iter()
            .rev()
            .find_map(|s| s.parameter_sets);
        let mut segments = Vec::new();
        let mut start = self.keyframe;
        for (i, sample) in samples
            .iter()
            .enumerate()
            .take(self.last + 1)
            .skip(self.keyframe + 1)
        {
            if let (true, Some(hash)) = (sample.is_keyframe(), sample.parameter_sets) {
                if current.is_some_and(|c| c != hash) {
                    segments.push(start..i);
                    start = i;
                }
                current = Some(hash);
            }
        }
        segments.push(start..self.last + 1);
        segments
    }
}

/// How long the last presented frame of `segment_pts` lasts: until the next frame of the
/// whole stream, when there is one.
fn last_frame_duration(video: &VideoIndex, timeline: &str, segment_pts: &[i64]) -> Option<i64> {
    let last = segment_pts.iter().copied().max()?;
    let order = video.presentation_order(timeline)?;
    let next = order.partition_point(|(p, _)| *p <= last);
    order.get(next).map(|(p, _)| p - last)
}

/// `out.mp4`, `out.2.mp4`, `out.3.mp4`, ...
pub fn numbered_path(path: &Path, n: usize) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{}.{}", n + 1, ext.to_string_lossy()),
        None => format!("{stem}.{}", n + 1),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_paths() {
        assert_eq!(
            numbered_path(Path::new("a/front.mp4"), 0),
            PathBuf::from("a/front.mp4")
        );
        assert_eq!(
            numbered_path(Path::new("a/front.mp4"), 1),
            PathBuf::from("a/front.2.mp4")
        );
        assert_eq!(
            numbered_path(Path::new("front"), 2),
            PathBuf::from("front.3")
        );
    }
}
