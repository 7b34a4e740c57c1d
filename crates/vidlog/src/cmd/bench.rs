//! `vidlog bench`: the hot-path benchmarks that need the library (whole-process
//! timings of `import`/`info` live in scripts/bench.sh).
//!
//! `bench log`: the Rust SDK logging a real clip into a recording file as fast as it
//! can: samples/s, MB/s of sample bytes, and file bytes per sample beyond the samples.
//!
//! `bench ingest`: N producers stream a clip at once, each paced in real time through the
//! SDK's `connect()`, into a `vidlog serve` started as a child process; reports samples
//! lost and the server process's CPU time over the run (from `/proc/PID/stat`).

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
    /// Native decoding: seek, warm steps, playback, memory (see `vidlog bench decode --help`).
    Decode(crate::cmd::bench_decode::DecodeBenchArgs),
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
    /// Producers streaming a clip in real time to a `vidlog serve` child process.
    Ingest {
        /// The clip (raw Annex B H.264), looped.
        #[arg(long)]
        input: PathBuf,
        /// Producers streaming at once.
        #[arg(long, default_value_t = 8)]
        producers: usize,
        /// Frame rate each producer logs at (real-time pacing).
        #[arg(long, default_value_t = 30.0)]
        fps: f64,
        /// How long each producer streams.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// The server's data dir (default: a new one in the system temp dir, removed).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Decode(args) => crate::cmd::bench_decode::run(args),
        BenchWhat::Log { input, repeat, dir } => bench_log(&input, repeat.max(1), dir),
        BenchWhat::Ingest {
            input,
            producers,
            fps,
            seconds,
            dir,
        } => bench_ingest(&input, producers.max(1), fps, seconds, dir),
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

/// CPU seconds (user + system) `pid` has used, from `/proc/PID/stat`.
fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat (Linux only)"))?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/PID/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse::<f64>()?)
    };
    // utime and stime are fields 14 and 15 (1-based), so 11 and 12 after `)`.
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    Ok((ticks(11)? + ticks(12)?) / per_second)
}

/// Ends the server child: SIGINT (it finishes its files), then waits.
struct ServerChild(std::process::Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn bench_ingest(
    input: &std::path::Path,
    producers: usize,
    fps: f64,
    seconds: f64,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    use std::net::{TcpListener, TcpStream};
    anyhow::ensure!(
        fps > 0.0 && seconds > 0.0,
        "--fps and --seconds must be positive"
    );
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let aus = split_access_units(&bytes).context("splitting the clip into access units")?;
    let samples: Vec<Blob> = aus.into_iter().map(|au| Blob::from(au.data)).collect();
    anyhow::ensure!(!samples.is_empty(), "{}: no access units", input.display());
    let (data_dir, remove_dir) = match dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("vidlog-bench-ingest-{}", std::process::id())),
            true,
        ),
    };
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let exe = std::env::current_exe().context("finding the vidlog binary")?;
    let server = ServerChild(
        std::process::Command::new(&exe)
            .args(["serve", "--port", &port.to_string(), "--data-dir"])
            .arg(&data_dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?,
    );
    let pid = server.0.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the server did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let frames = (fps * seconds).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / fps);
    let cpu_before = process_cpu_seconds(pid)?;
    let started = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let samples = samples.clone();
            let addr = addr.clone();
            std::thread::spawn(move || -> anyhow::Result<(usize, Duration)> {
                let rec = RecordingStream::builder("vidlog_bench_ingest")
                    .recording_id(format!("producer-{p}"))
                    .connect(&addr)?;
                rec.log_static("camera/front", &VideoStream::new(VideoCodec::H264))?;
                let t0 = Instant::now();
                let mut late = Duration::ZERO;
                for n in 0..frames {
                    let due = t0 + interval * n as u32;
                    let now = Instant::now();
                    if now < due {
                        std::thread::sleep(due - now);
                    } else {
                        late = late.max(now - due);
                    }
                    rec.set_time(
                        "time",
                        TimeCell::from_duration_nanos((n as f64 * 1e9 / fps) as i64),
                    );
                    rec.log(
                        "camera/front",
                        &VideoStream::from_sample(samples[n % samples.len()].clone()),
                    )?;
                }
                rec.flush()?;
                Ok((frames, late))
            })
        })
        .collect();
    let mut logged = 0;
    let mut worst_late = Duration::ZERO;
    for t in threads {
        let (n, late) = t
            .join()
            .map_err(|_| anyhow::anyhow!("a producer panicked"))??;
        logged += n;
        worst_late = worst_late.max(late);
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds(pid)? - cpu_before;
    // Every producer flushed: the server acknowledged all it stored. Count what it has.
    let mut stream = TcpStream::connect(&addr)?;
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /api/recordings HTTP/1.0\r\nHost: {addr}\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .context("no HTTP body")?;
    let recordings: serde_json::Value = serde_json::from_str(body)?;
    let stored: u64 = recordings
        .as_array()
        .context("the recordings list")?
        .iter()
        .filter(|r| r["application_id"] == "vidlog_bench_ingest")
        .map(|r| r["video_samples"].as_u64().unwrap_or(0))
        .sum();
    let rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "?".into());
    drop(server);
    if remove_dir {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    let sample_bytes: u64 = (0..frames)
        .map(|n| samples[n % samples.len()].len() as u64)
        .sum::<u64>()
        * producers as u64;
    println!(
        "bench ingest: {producers} producers x {frames} samples at {fps} fps ({:.1} MB of sample bytes)",
        sample_bytes as f64 / 1e6
    );
    println!(
        "  logged {logged}, stored {stored}, lost {}",
        logged as i64 - stored as i64
    );
    println!(
        "  server CPU: {cpu:.2} s over {wall:.2} s wall = {:.3} cores; peak RSS {rss_kib} KiB",
        cpu / wall
    );
    println!(
        "  producers' worst lateness against real time: {:.1} ms",
        worst_late.as_secs_f64() * 1e3
    );
    anyhow::ensure!(
        stored == logged as u64,
        "{} samples lost",
        logged as i64 - stored as i64
    );
    Ok(())
}
