//! `vidlog demo`: a synthetic camera encoded on the fly with the built-in H.264 encoder
//! and logged through the SDK, in real time unless `--fast`. By default it starts a live
//! server and streams to it (open the printed URL: the viewer follows the stream); with
//! `-o FILE` it records to a file and prints its info; with `--connect ADDR` it streams to
//! a `vidlog serve` already running.

use crate::say::say;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use vidlog_sdk::{RecordingStream, TimeCell, VideoCodec, VideoStream};
use vidlog_video::encode::h264::{H264Encoder, H264EncoderConfig};

use crate::synth::SyntheticCamera;

#[derive(clap::Args)]
#[command(
    about = "A synthetic camera (gradient, bouncing gold ball) streamed live to the browser viewer, or recorded to a file",
    after_help = "Examples:\n  vidlog demo                         live: open the printed URL; Ctrl-C to stop\n  \
                  vidlog demo --size 1920x1080 --seconds 30\n  \
                  vidlog demo -o demo.vlog            record 4 s to a file and describe it\n  \
                  vidlog demo --fast --seconds 60 -o big.vlog\n  \
                  vidlog demo --connect 127.0.0.1:9877   stream to a running vidlog serve"
)]
pub struct DemoArgs {
    /// Record to this file instead of streaming live.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Port of the live server the demo starts (live mode).
    #[arg(long, default_value_t = 9877)]
    port: u16,
    /// Frame size, WIDTHxHEIGHT.
    #[arg(long, default_value = "480x320", value_parser = super::parse_size)]
    size: (u32, u32),
    /// Seconds of video (default: until Ctrl-C when live, 4 s into a file).
    #[arg(long)]
    seconds: Option<f64>,
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
    anyhow::ensure!(
        args.seconds.is_none_or(|s| s > 0.0),
        "--seconds must be positive"
    );
    anyhow::ensure!(
        !(args.output.is_some() && args.connect.is_some()),
        "pick one of -o (record to a file) and --connect (stream to a server)"
    );
    let (width, height) = args.size;
    let seconds = match (&args.output, args.seconds) {
        (_, Some(s)) => Some(s),
        (Some(_), None) => Some(4.0),
        (None, None) => None,
    };
    let frames = seconds.map(|s| (s * f64::from(args.fps)).round() as u64);
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
    let stop = Arc::new(AtomicBool::new(false));
    let mut live_server = None;
    let (rec, destination) = match (&args.output, &args.connect) {
        (Some(output), _) => (
            builder
                .save(output)
                .with_context(|| format!("creating {}", output.display()))?,
            output.display().to_string(),
        ),
        (None, Some(addr)) => (
            builder
                .connect(addr.as_str())
                .with_context(|| format!("connecting to {addr}"))?,
            format!("vidlog serve at {addr}"),
        ),
        (None, None) => {
            let server = super::serve::start_live(args.port, stop.clone())?;
            let addr = server.addr().to_string();
            let rec = builder
                .connect(&addr)
                .with_context(|| format!("connecting to the demo's server at {addr}"))?;
            live_server = Some(server);
            (rec, format!("the viewer at http://{addr}/"))
        }
    };
    rec.log_static(args.entity.as_str(), &VideoStream::new(VideoCodec::H264))?;
    say!(
        "vidlog demo: {width}x{height} at {} fps {} -> {destination}",
        args.fps,
        seconds.map_or("until Ctrl-C".into(), |s| format!("for {s} s")),
    );
    let start = Instant::now();
    let mut rgb = Vec::new();
    let mut i = 0u64;
    while frames.is_none_or(|n| i < n) && !stop.load(Ordering::Relaxed) {
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
        i += 1;
    }
    let frames = i;
    rec.flush()?;
    drop(rec);
    say!(
        "vidlog demo: {frames} frames in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    if let Some(server) = live_server {
        say!("vidlog demo: stopping the server; finishing its recording file");
        server.shutdown();
    }
    match args.output {
        Some(path) => super::info::run(super::info::InfoArgs {
            path: Some(path),
            json: false,
            decoders: false,
        }),
        None => Ok(()),
    }
}
