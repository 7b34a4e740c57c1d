//! `vidlog demo`: a synthetic camera encoded on the fly with the built-in H.264 encoder
//! and logged through the SDK into a recording file, in real time unless `--fast`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use vidlog_sdk::{RecordingStream, TimeCell, VideoCodec, VideoStream};
use vidlog_video::encode::h264::{H264Encoder, H264EncoderConfig};

use crate::synth::SyntheticCamera;

#[derive(clap::Args)]
#[command(
    about = "Record a synthetic camera (gradient, bouncing gold ball) to a recording file",
    after_help = "Examples:\n  vidlog demo\n  vidlog demo --size 1920x1080 --seconds 10 -o big.vlog\n  vidlog demo --fast --seconds 60"
)]
pub struct DemoArgs {
    /// Output recording.
    #[arg(short, long, default_value = "demo.vlog")]
    output: PathBuf,
    /// Frame size, WIDTHxHEIGHT.
    #[arg(long, default_value = "480x320", value_parser = super::parse_size)]
    size: (u32, u32),
    /// Seconds of video.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Entity path of the camera.
    #[arg(long, default_value = "camera/front")]
    entity: String,
    /// Do not pace frames in real time.
    #[arg(long)]
    fast: bool,
    /// Stream to a running `vidlog serve` at this address instead of writing a file.
    #[arg(long, value_name = "ADDR")]
    connect: Option<String>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.fps > 0 && args.fps <= 240, "--fps must be 1 to 240");
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    let (width, height) = args.size;
    let frames = (args.seconds * f64::from(args.fps)).round() as u64;
    let fps = f64::from(args.fps);
    let bitrate = ((f64::from(width * height) * fps * 0.08) as u32).max(200_000);
    let mut encoder = H264Encoder::new(H264EncoderConfig {
        width,
        height,
        fps: args.fps as f32,
        bitrate_bps: bitrate,
        keyframe_interval: args.fps * 2,
    })
    .context("starting the H.264 encoder")?;
    let camera = SyntheticCamera::new(width, height, fps);
    let builder = RecordingStream::builder("vidlog_demo");
    let (rec, destination) = match &args.connect {
        Some(addr) => (
            builder
                .connect(addr.as_str())
                .with_context(|| format!("connecting to {addr}"))?,
            format!("vidlog serve at {addr}"),
        ),
        None => (
            builder
                .save(&args.output)
                .with_context(|| format!("creating {}", args.output.display()))?,
            args.output.display().to_string(),
        ),
    };
    rec.log_static(args.entity.as_str(), &VideoStream::new(VideoCodec::H264))?;
    eprintln!(
        "vidlog demo: {width}x{height} at {} fps for {} s -> {destination}",
        args.fps, args.seconds,
    );
    let start = Instant::now();
    let mut rgb = Vec::new();
    for i in 0..frames {
        if !args.fast {
            let due = Duration::from_secs_f64(i as f64 / fps);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        camera.render(i, &mut rgb);
        let sample = encoder
            .encode_rgb(&rgb)
            .with_context(|| format!("encoding frame {i}"))?;
        // Rounded to the nearest ns (see `import`), so export finds the 1/fps timescale.
        let fps_i = i128::from(args.fps);
        let pts = ((i as i128 * 1_000_000_000 + fps_i / 2) / fps_i) as i64;
        rec.set_time("time", TimeCell::from_duration_nanos(pts));
        rec.set_time("frame", TimeCell::from_sequence(i as i64));
        rec.set_time("log_time", TimeCell::timestamp_now());
        rec.log(
            args.entity.as_str(),
            &VideoStream::from_sample(sample.data).with_keyframe(sample.is_keyframe),
        )?;
    }
    rec.flush()?;
    drop(rec);
    eprintln!(
        "vidlog demo: {frames} frames in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    if args.connect.is_some() {
        return Ok(());
    }
    super::info::run(super::info::InfoArgs {
        path: args.output,
        json: false,
    })
}
