//! `vidlog info`: what a recording holds, from its footer index (sample bytes are read
//! only for one keyframe per video entity, to describe the stream).

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use vidlog_store::Recording;
use vidlog_types::{EntityPath, TimeKind};
use vidlog_video::probe::stream_info;

#[derive(clap::Args)]
#[command(
    about = "Describe a recording: entities, timelines, and each video stream",
    after_help = "Examples:\n  vidlog info run.vlog\n  vidlog info run.vlog --json | jq .entities\n  vidlog info --decoders"
)]
pub struct InfoArgs {
    /// The recording.
    #[arg(required_unless_present = "decoders")]
    pub path: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// List the decoder backends built into this binary and the codecs each decodes.
    #[arg(long)]
    pub decoders: bool,
}

/// One decoder backend built in (`vidlog info --decoders`).
#[derive(Serialize)]
pub struct DecoderReport {
    pub backend: &'static str,
    pub codecs: Vec<String>,
    pub note: &'static str,
}

fn decoders(json: bool) -> anyhow::Result<()> {
    use vidlog_types::VideoCodec;
    use vidlog_video::decode::{Backend, backend_for};
    let reports: Vec<DecoderReport> = Backend::all()
        .into_iter()
        .map(|b| DecoderReport {
            backend: b.name(),
            codecs: b.codecs().iter().map(|c| c.to_string()).collect(),
            note: b.note(),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    println!("decoder backends (preferred first):");
    for r in &reports {
        println!("  {:<10} {:<22} {}", r.backend, r.codecs.join(", "), r.note);
    }
    for codec in VideoCodec::ALL {
        match backend_for(codec) {
            Ok(b) => println!("{codec}: {}", b.name()),
            Err(e) => println!("{codec}: none ({e})"),
        }
    }
    Ok(())
}

#[derive(Serialize)]
pub struct InfoReport {
    pub path: String,
    pub file_bytes: u64,
    pub format_version: String,
    pub application_id: Option<String>,
    pub recording_id: Option<String>,
    pub started: Option<String>,
    /// Set when the file had no footer (writer killed) and was scanned.
    pub recovery: Option<String>,
    pub timelines: Vec<TimelineReport>,
    pub entities: Vec<EntityReport>,
    pub diagnostics: Vec<String>,
}

#[derive(Serialize)]
pub struct TimelineReport {
    pub name: String,
    pub kind: &'static str,
    pub min: i64,
    pub max: i64,
    pub min_text: String,
    pub max_text: String,
}

#[derive(Serialize)]
pub struct EntityReport {
    pub path: String,
    pub rows: u64,
    pub components: Vec<String>,
    pub video: Option<VideoReport>,
}

#[derive(Serialize)]
pub struct VideoReport {
    pub codec: Option<String>,
    pub codec_string: Option<String>,
    pub profile: Option<String>,
    pub level: Option<String>,
    pub coded_width: Option<u32>,
    pub coded_height: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frames: usize,
    pub keyframes: usize,
    pub gop_min: Option<usize>,
    pub gop_median: Option<usize>,
    pub gop_max: Option<usize>,
    pub b_frames: bool,
    /// The timeline durations are measured on.
    pub timeline: Option<String>,
    pub duration_seconds: Option<f64>,
    pub bytes: u64,
    pub bitrate_bps: Option<f64>,
    pub stream_problem: Option<String>,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    if args.decoders {
        return decoders(args.json);
    }
    let path = args
        .path
        .context("give a recording, or --decoders to list the decoder backends")?;
    let report = report(&path)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

pub fn report(path: &std::path::Path) -> anyhow::Result<InfoReport> {
    let recording = Recording::open(path).with_context(|| format!("opening {}", path.display()))?;
    let store = &recording.store;
    let info = recording.info.as_ref();
    let timelines = store
        .timelines()
        .filter_map(|(name, kind)| {
            let (min, max) = store.time_range(None, name.as_str())?;
            Some(TimelineReport {
                name: name.to_string(),
                kind: kind.name(),
                min,
                max,
                min_text: kind.format_value(min),
                max_text: kind.format_value(max),
            })
        })
        .collect();
    let entities = store
        .entity_paths()
        .map(|entity| EntityReport {
            path: entity.to_string(),
            rows: store.summaries(entity).map(|s| s.num_rows() as u64).sum(),
            components: store
                .components(entity)
                .iter()
                .map(|c| c.to_string())
                .collect(),
            video: store
                .video(entity)
                .map(|_| video_report(&recording, entity)),
        })
        .collect();
    Ok(InfoReport {
        path: path.display().to_string(),
        file_bytes: recording.file.len(),
        format_version: format!("{}.{}", recording.file.version.0, recording.file.version.1),
        application_id: info.map(|i| i.application_id.clone()),
        recording_id: info.map(|i| i.recording_id.clone()),
        started: info.map(|i| TimeKind::Timestamp.format_value(i.started_unix_nanos)),
        recovery: recording.recovery().map(|r| r.to_string()),
        timelines,
        entities,
        diagnostics: store.diagnostics().iter().map(|d| d.to_string()).collect(),
    })
}

fn video_report(recording: &Recording, entity: &EntityPath) -> VideoReport {
    let store = &recording.store;
    let video = store.video(entity).expect("checked by the caller");
    let codec = store.codec(entity);
    let mut gops = video.gop_lengths();
    gops.sort_unstable();
    let bytes: u64 = video.samples().iter().map(|s| u64::from(s.size)).sum();
    // Durations on a duration timeline (presentation time) if the stream has one, else
    // on a timestamp timeline.
    let timeline = video
        .timelines()
        .filter(|(_, kind)| *kind != TimeKind::Sequence)
        .map(|(name, kind)| (kind != TimeKind::Duration, name.to_string()))
        .min()
        .map(|(_, name)| name);
    let duration_seconds = timeline.as_deref().and_then(|t| {
        let order = video.presentation_order(t)?;
        let (first, last) = (order.first()?.0, order.last()?.0);
        // The last frame lasts as long as the median frame interval.
        let mut steps: Vec<i64> = order
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .filter(|d| *d > 0)
            .collect();
        steps.sort_unstable();
        let frame = steps.get(steps.len() / 2).copied().unwrap_or(0);
        Some((last - first + frame) as f64 / 1e9)
    });
    let mut report = VideoReport {
        codec: codec.map(|c| c.to_string()),
        codec_string: None,
        profile: None,
        level: None,
        coded_width: None,
        coded_height: None,
        width: None,
        height: None,
        frames: video.len(),
        keyframes: video.keyframes().len(),
        gop_min: gops.first().copied(),
        gop_median: gops.get(gops.len() / 2).copied(),
        gop_max: gops.last().copied(),
        b_frames: video
            .timelines()
            .any(|(name, _)| video.has_b_frames(name.as_str())),
        timeline,
        duration_seconds,
        bytes,
        bitrate_bps: duration_seconds
            .filter(|d| *d > 0.0)
            .map(|d| bytes as f64 * 8.0 / d),
        stream_problem: None,
    };
    let described = codec
        .context("no codec logged; log VideoStream::new(codec) as static data")
        .and_then(|codec| {
            let first_key = *video
                .keyframes()
                .first()
                .context("the stream has no keyframe")?;
            let sample = store.video_sample(entity, first_key)?;
            Ok(stream_info(codec, sample.as_slice())?)
        });
    match described {
        Ok(s) => {
            report.codec_string = Some(s.codec_string);
            report.profile = Some(s.profile);
            report.level = Some(s.level);
            report.coded_width = Some(s.coded_width);
            report.coded_height = Some(s.coded_height);
            report.width = Some(s.width);
            report.height = Some(s.height);
        }
        Err(e) => report.stream_problem = Some(format!("{e:#}")),
    }
    report
}

fn print_text(r: &InfoReport) {
    println!("{}", r.path);
    println!("  format {}, {} bytes", r.format_version, r.file_bytes);
    if let Some(app) = &r.application_id {
        println!(
            "  application {app}, recording {}",
            r.recording_id.as_deref().unwrap_or("?")
        );
    }
    if let Some(started) = &r.started {
        println!("  started {started}");
    }
    if let Some(recovery) = &r.recovery {
        println!("  recovered: {recovery}");
    }
    println!("timelines:");
    for t in &r.timelines {
        println!(
            "  {} ({}): {} .. {}",
            t.name, t.kind, t.min_text, t.max_text
        );
    }
    println!("entities:");
    for e in &r.entities {
        println!(
            "  {}: {} rows [{}]",
            e.path,
            e.rows,
            e.components.join(", ")
        );
        if let Some(v) = &e.video {
            let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "?".into());
            println!(
                "    video: {} {} (profile {}, level {})",
                opt(&v.codec),
                opt(&v.codec_string),
                opt(&v.profile),
                opt(&v.level)
            );
            if let (Some(w), Some(h), Some(cw), Some(ch)) =
                (v.width, v.height, v.coded_width, v.coded_height)
            {
                println!("    size: {w}x{h} (coded {cw}x{ch})");
            }
            println!(
                "    frames: {}, keyframes: {}, GOP min/median/max: {}/{}/{}, B-frames: {}",
                v.frames,
                v.keyframes,
                v.gop_min.map_or("-".into(), |g| g.to_string()),
                v.gop_median.map_or("-".into(), |g| g.to_string()),
                v.gop_max.map_or("-".into(), |g| g.to_string()),
                if v.b_frames { "yes" } else { "no" }
            );
            let duration = v
                .duration_seconds
                .map_or("?".into(), |d| format!("{d:.3} s"));
            let bitrate = v
                .bitrate_bps
                .map_or("?".into(), |b| format!("{:.3} Mbit/s", b / 1e6));
            println!(
                "    duration: {duration} on {}, {} bytes, {bitrate}",
                v.timeline.as_deref().unwrap_or("-"),
                v.bytes
            );
            if let Some(p) = &v.stream_problem {
                println!("    problem: {p}");
            }
        }
    }
    if !r.diagnostics.is_empty() {
        println!("diagnostics ({}):", r.diagnostics.len());
        for d in r.diagnostics.iter().take(20) {
            println!("  {d}");
        }
        if r.diagnostics.len() > 20 {
            println!("  ... {} more (see --json)", r.diagnostics.len() - 20);
        }
    }
}
