//! `vidlog bench`: the hot-path benchmarks that need the library (whole-process
//! timings of `import`/`info` live in scripts/bench.sh).
//!
//! `bench log`: the Rust SDK logging a real clip into a recording file as fast as it
//! can: samples/s, MB/s of sample bytes, and file bytes per sample beyond the samples.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use vidlog_sdk::{Blob, RecordingStream, TimeCell, VideoCodec, VideoStream};
use vidlog_video::bitstream::h264::split_access_units;

#[derive(clap::Args)]
#[command(about = "Benchmarks of vidlog's hot paths (see BENCHMARKS.md)")]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(clap::Subcommand)]
enum BenchWhat {
    /// SDK logging of an Annex B H.264 clip into a recording file.
    Log {
        /// The clip (raw Annex B H.264).
        #[arg(long)]
        input: PathBuf,
        /// Runs; the best and the median are reported.
        #[arg(long, default_value_t = 7)]
        repeat: usize,
        /// Where to write the recording (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Log { input, repeat, dir } => bench_log(&input, repeat.max(1), dir),
    }
}

fn bench_log(input: &std::path::Path, repeat: usize, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let aus = split_access_units(&bytes).context("splitting the clip into access units")?;
    // Owned sample buffers made up front: logging then shares them (as a producer
    // handing over its Vec<u8> would) and the benchmark measures vidlog, not memcpy.
    let samples: Vec<Blob> = aus.into_iter().map(|au| Blob::from(au.data)).collect();
    let sample_bytes: u64 = samples.iter().map(|s| s.len() as u64).sum();
    let dir = dir.unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("vidlog-bench-log-{}.vlog", std::process::id()));
    let mut times = Vec::with_capacity(repeat);
    let mut file_bytes = 0;
    for _ in 0..repeat {
        let _ = std::fs::remove_file(&path);
        let start = Instant::now();
        {
            let rec = RecordingStream::builder("vidlog_bench").save(&path)?;
            rec.log_static("camera/front", &VideoStream::new(VideoCodec::H264))?;
            for (n, sample) in samples.iter().enumerate() {
                rec.set_time("time", TimeCell::from_duration_nanos(n as i64 * 33_333_333));
                rec.set_time("frame", TimeCell::from_sequence(n as i64));
                rec.log("camera/front", &VideoStream::from_sample(sample.clone()))?;
            }
        } // drop: flush, write the footer, close
        times.push(start.elapsed());
        file_bytes = std::fs::metadata(&path)?.len();
    }
    let _ = std::fs::remove_file(&path);
    times.sort();
    let best = times[0];
    let median = times[times.len() / 2];
    let n = samples.len() as f64;
    let rate = |d: Duration| {
        (
            n / d.as_secs_f64(),
            sample_bytes as f64 / 1e6 / d.as_secs_f64(),
        )
    };
    let (best_sps, best_mbps) = rate(best);
    let (med_sps, med_mbps) = rate(median);
    println!(
        "bench log: {} samples, {:.1} MB of sample bytes, {repeat} runs",
        samples.len(),
        sample_bytes as f64 / 1e6
    );
    println!(
        "  best:   {:>8.1} ms  {best_sps:>10.0} samples/s  {best_mbps:>8.0} MB/s",
        best.as_secs_f64() * 1e3
    );
    println!(
        "  median: {:>8.1} ms  {med_sps:>10.0} samples/s  {med_mbps:>8.0} MB/s",
        median.as_secs_f64() * 1e3
    );
    println!(
        "  file: {file_bytes} bytes = samples + {:.1} bytes/sample ({:.4}x sample bytes)",
        (file_bytes - sample_bytes) as f64 / n,
        file_bytes as f64 / sample_bytes as f64
    );
    Ok(())
}
