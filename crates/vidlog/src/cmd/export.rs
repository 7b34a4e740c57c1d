//! `vidlog export`: a video entity of a recording to MP4 without re-encoding (plain or
//! fragmented, any time range, B-frames with correct decode and composition times), or
//! every video entity to MCAP as `foxglove.CompressedVideo` channels.
//!
//! The sample selection, timing and streaming live in `vidlog_store::export` (shared with
//! the server's `export.mp4` endpoint); this module owns the files, the progress bar and
//! the JSON summary.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use vidlog_store::Recording;
use vidlog_store::export::{ExportError, Mp4Export};
pub use vidlog_store::export::{pick_entity, pick_timeline};
use vidlog_video::mp4::Mp4Muxer;

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
    let plan = Mp4Export::plan(store, &entity, &timeline, from, to).map_err(|e| match e {
        // The library says `from`; here it is the option.
        ExportError::FromAfterEnd { .. } => anyhow::anyhow!("--{e}"),
        e => anyhow::Error::from(e).context(format!("{entity} on timeline {timeline:?}")),
    })?;
    anyhow::ensure!(
        !to_stdout || args.fragmented,
        "-o - (stdout) needs --fragmented: a plain MP4 is finished by seeking back"
    );
    if to_stdout {
        plan.single_segment()
            .context("stdout holds one MP4: pass -o FILE to get one file per part")?;
    }
    let bar = if to_stdout || args.json {
        indicatif::ProgressBar::hidden()
    } else {
        super::progress_bar(plan.total_bytes(store), "exporting")
    };
    let mut files = Vec::new();
    for (n, segment) in plan.segments.iter().enumerate() {
        let path = numbered_path(&args.output, n);
        let entry = plan.sample_entry(store, n)?;
        let codec_string = entry.codec_string();
        let options = plan.options(n, args.fragmented);
        let progress = |bytes| bar.inc(bytes);
        let summary = if to_stdout {
            let out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            let muxer = Mp4Muxer::new_streaming(out, entry, plan.segment_pts(n), options)?;
            plan.write_segment(muxer, store, n, progress)?
        } else {
            let file =
                File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            let written = Mp4Muxer::new(
                BufWriter::with_capacity(1 << 20, file),
                entry,
                plan.segment_pts(n),
                options,
            )
            .map_err(anyhow::Error::from)
            .and_then(|muxer| Ok(plan.write_segment(muxer, store, n, progress)?))
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
