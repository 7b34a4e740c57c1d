//! `vidlog frame`: decode the frame shown at a time (or every N seconds) of a recorded video
//! entity and write it as PNG or raw I420/RGBA. Prints the PTS of each frame written.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use vidlog_store::Recording;
use vidlog_store::export::{pick_entity, pick_timeline};
use vidlog_store::store::video_source::StoreVideoSource;
use vidlog_types::TimeKind;
use vidlog_video::decode::player::{PresentedFrame, VideoPlayer};
use vidlog_video::decode::{Backend, Frame};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FrameFormat {
    /// PNG, 8-bit RGB.
    Png,
    /// Raw I420 (yuv420p) bytes.
    I420,
    /// Raw RGBA8 bytes.
    Rgba,
}

#[derive(clap::Args)]
#[command(
    about = "Decode the frame shown at a time (or every N seconds) and write it as PNG or raw",
    after_help = "Examples:\n  vidlog frame run.vlog --entity cam --at 12.5s -o f.png\n  vidlog frame run.vlog --every 1s -o frames/\n  vidlog frame run.vlog --at 3s --format i420 -o f.yuv"
)]
pub struct FrameArgs {
    /// The recording.
    pub recording: PathBuf,
    /// Video entity (needed when the recording has several).
    #[arg(long)]
    pub entity: Option<String>,
    /// Timeline the times are on (default: the stream's duration timeline, else its timestamp
    /// timeline).
    #[arg(long)]
    pub timeline: Option<String>,
    /// The time to show (e.g. 12.5s); writes one frame to -o.
    #[arg(long, conflicts_with = "every", required_unless_present = "every")]
    pub at: Option<String>,
    /// Write the frame shown every this often (e.g. 1s) into the directory -o.
    #[arg(long)]
    pub every: Option<String>,
    /// With --every: the first time (default: the first frame).
    #[arg(long, requires = "every")]
    pub from: Option<String>,
    /// With --every: the last time (default: the last frame).
    #[arg(long, requires = "every")]
    pub to: Option<String>,
    /// Output file (--at) or directory (--every).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "png")]
    pub format: FrameFormat,
    /// Decoder backend (default: the preferred one for the codec; see `vidlog info --decoders`).
    #[arg(long)]
    pub decoder: Option<String>,
}

pub fn run(args: FrameArgs) -> anyhow::Result<()> {
    let recording = Recording::open(&args.recording)
        .with_context(|| format!("opening {}", args.recording.display()))?;
    if let Some(report) = recording.recovery() {
        eprintln!("vidlog frame: {}: {report}", args.recording.display());
    }
    let store = &recording.store;
    let entity = pick_entity(store, args.entity.as_deref())?;
    let video = store.video(&entity).context("checked by pick_entity")?;
    let (timeline, kind) = pick_timeline(video, args.timeline.as_deref(), &entity)?;
    let parse = |text: &str, what: &str| -> anyhow::Result<i64> {
        kind.parse_value(text)
            .map_err(|e| anyhow::anyhow!("--{what}: {e}"))
    };
    let source = StoreVideoSource::new(store, entity.clone(), &timeline)?;
    let (first, last) = match (
        source.presentation_order().first(),
        source.presentation_order().last(),
    ) {
        (Some(a), Some(b)) => (a.0, b.0),
        _ => anyhow::bail!("{entity} has no samples on timeline {timeline:?}"),
    };
    let times: Vec<i64> = match (&args.at, &args.every) {
        (Some(at), _) => vec![parse(at, "at")?],
        (None, Some(every)) => {
            let step = match kind {
                TimeKind::Sequence => parse(every, "every")?,
                _ => TimeKind::Duration
                    .parse_value(every)
                    .map_err(|e| anyhow::anyhow!("--every: {e}"))?,
            };
            anyhow::ensure!(step > 0, "--every must be more than zero");
            let from = args.from.as_deref().map(|t| parse(t, "from")).transpose()?;
            let to = args.to.as_deref().map(|t| parse(t, "to")).transpose()?;
            let (from, to) = (from.unwrap_or(first), to.unwrap_or(last));
            anyhow::ensure!(from <= to, "--from is after --to (or after the last frame)");
            let count = (to - from) / step + 1;
            anyhow::ensure!(
                count <= 100_000,
                "--every {every} gives {count} frames; pick a longer step or a --from/--to range"
            );
            std::fs::create_dir_all(&args.output)
                .with_context(|| format!("creating {}", args.output.display()))?;
            (0..count).map(|n| from + n * step).collect()
        }
        (None, None) => anyhow::bail!("give --at TIME or --every STEP"),
    };
    // Stills, not playback: frame threads, only the frames asked for leave the decoder, and
    // one frame alone drains the decoder as soon as its sample is in.
    let mut player = VideoPlayer::for_stills(source, times.len() == 1);
    if let Some(name) = &args.decoder {
        player = player.with_backend(Backend::by_name(name)?);
    }
    let extension = match args.format {
        FrameFormat::Png => "png",
        FrameFormat::I420 => "yuv",
        FrameFormat::Rgba => "rgba",
    };
    let mut reported = 0;
    for (n, t) in times.iter().enumerate() {
        let presented = player.frame_at(*t)?;
        for report in &player.reports()[reported..] {
            eprintln!("vidlog frame: {report}");
        }
        reported = player.reports().len();
        let Some(presented) = presented else {
            let text = kind.format_value(*t);
            if args.at.is_some() {
                anyhow::bail!(
                    "{entity}: no frame is shown at {text}; the first is at {}",
                    kind.format_value(first)
                );
            }
            continue;
        };
        let path = if args.at.is_some() {
            args.output.clone()
        } else {
            args.output.join(format!("frame_{n:06}.{extension}"))
        };
        write_frame(&presented.frame, args.format, &path)?;
        print_written(&path, &presented, kind);
    }
    Ok(())
}

fn print_written(path: &Path, presented: &PresentedFrame, kind: TimeKind) {
    let frame = &presented.frame;
    let mut line = format!(
        "{}: pts {} (sample {}, {}x{})",
        path.display(),
        kind.format_value(frame.pts),
        presented.sample,
        frame.width,
        frame.height
    );
    if presented.concealed {
        line.push_str(&format!(
            ", concealed: sample at {} could not be decoded",
            kind.format_value(presented.sample_pts)
        ));
    }
    println!("{line}");
}

fn write_frame(frame: &Frame, format: FrameFormat, path: &Path) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    match format {
        FrameFormat::I420 => out.write_all(frame.i420())?,
        FrameFormat::Rgba => out.write_all(&frame.to_rgba())?,
        FrameFormat::Png => encode_png(&mut out, frame.width, frame.height, &frame.to_rgb())
            .with_context(|| format!("writing {}", path.display()))?,
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes an 8-bit RGB PNG (the pixel format `ffmpeg -i ... out.png` writes) of `rgb`
/// (`width * height * 3` bytes), compressed for speed: a frame is written in a few ms.
pub fn encode_png(
    out: &mut impl Write,
    width: u32,
    height: u32,
    rgb: &[u8],
) -> Result<(), png::EncodingError> {
    let mut encoder = png::Encoder::new(out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()
}
