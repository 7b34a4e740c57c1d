//! `vidlog bench decode`: the native decoding benchmarks (BENCHMARKS.md, "Decode"), one
//! subcommand each, over a video entity of a recording:
//!
//! - `seek`: `vidlog frame REC --at T -o out.png` as a whole process beside `ffmpeg -ss T -i
//!   clip.mp4 -frames:v 1 out.png`, the decoder's own time for the samples keyframe..T, and
//!   where the rest goes (opening the recording, the player, RGB conversion, PNG encoding).
//! - `warm`: a long-lived `VideoPlayer` stepping forward (one decode per step) and back inside
//!   its cache (no decode); µs per step and decodes per step.
//! - `play`: every sample in decode order through one decoder on one thread (fps), through
//!   the player, and `ffmpeg -threads 1 -i clip.mp4 -f null -`.
//! - `memory`: random seeks and a full play through the stream with a cache budget: the
//!   largest cache seen and the process's peak RSS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use vidlog_store::Recording;
use vidlog_store::export::{pick_entity, pick_timeline};
use vidlog_store::store::video_source::StoreVideoSource;
use vidlog_types::{EntityPath, TimeKind};
use vidlog_video::decode::player::VideoPlayer;
use vidlog_video::decode::{Backend, Frame, SampleSource, Tuning, backend_for};

#[derive(clap::Args)]
#[command(about = "Native decoding benchmarks: seek, warm steps, playback, memory")]
pub struct DecodeBenchArgs {
    #[command(subcommand)]
    what: DecodeBench,
}

/// The recording and stream every decode benchmark reads.
#[derive(clap::Args)]
struct Input {
    /// The recording (e.g. `vidlog import clip.mp4 -o rec.vlog`).
    #[arg(long)]
    input: PathBuf,
    /// Video entity (needed when the recording has several).
    #[arg(long)]
    entity: Option<String>,
    /// Timeline (default: the stream's duration timeline).
    #[arg(long)]
    timeline: Option<String>,
    /// Decoder backend (default: the preferred one; see `vidlog info --decoders`).
    #[arg(long)]
    decoder: Option<String>,
}

#[derive(clap::Subcommand)]
enum DecodeBench {
    /// Random seek: `vidlog frame --at T` whole process vs the decoder's own time and ffmpeg.
    Seek {
        #[command(flatten)]
        input: Input,
        /// The time to seek to (a frame late in its GOP).
        #[arg(long, default_value = "11.9s")]
        at: String,
        /// The same stream as MP4, for `ffmpeg -ss T -i MP4 -frames:v 1 out.png`.
        #[arg(long)]
        mp4: Option<PathBuf>,
        /// Runs of each measurement; the best is reported.
        #[arg(long, default_value_t = 10)]
        repeat: usize,
        /// Where the PNGs go (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A long-lived player: steps forward (one decode each) and back inside the cache (none).
    Warm {
        #[command(flatten)]
        input: Input,
        /// Where stepping starts.
        #[arg(long, default_value = "5s")]
        from: String,
        /// Frames stepped forward, then back.
        #[arg(long, default_value_t = 60)]
        steps: usize,
    },
    /// Sequential playback: fps on one thread, beside `ffmpeg -threads 1 -i MP4 -f null -`.
    Play {
        #[command(flatten)]
        input: Input,
        /// The same stream as MP4, for ffmpeg.
        #[arg(long)]
        mp4: Option<PathBuf>,
        /// Runs; the best is reported.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// The player's cache budget in MiB (the default is the player's default).
        #[arg(long)]
        cache_mb: Option<usize>,
    },
    /// (Used by `seek`.) Decodes the samples of a file `seek` wrote, in a fresh process: the
    /// decoder's own time as a whole process, with its first-run memory faults.
    #[command(hide = true)]
    DecodeSamples {
        /// Samples: `u32 len | i64 pts | bytes`, little-endian, decode order.
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        codec: String,
        #[arg(long)]
        decoder: String,
        /// The PTS of the only frame handed out.
        #[arg(long)]
        until: i64,
    },
    /// Random seeks and a full play with a cache budget: largest cache and peak RSS.
    Memory {
        #[command(flatten)]
        input: Input,
        /// The player's cache budget in MiB (the default is the player's default).
        #[arg(long)]
        cache_mb: Option<usize>,
        /// Random seeks (fixed seed) before the full play.
        #[arg(long, default_value_t = 200)]
        seeks: usize,
    },
}

pub fn run(args: DecodeBenchArgs) -> anyhow::Result<()> {
    match args.what {
        DecodeBench::Seek {
            input,
            at,
            mp4,
            repeat,
            dir,
        } => seek(&input, &at, mp4.as_deref(), repeat.max(1), dir),
        DecodeBench::Warm { input, from, steps } => warm(&input, &from, steps.max(1)),
        DecodeBench::Play {
            input,
            mp4,
            repeat,
            cache_mb,
        } => play(&input, mp4.as_deref(), repeat.max(1), cache_mb),
        DecodeBench::Memory {
            input,
            cache_mb,
            seeks,
        } => memory(&input, cache_mb, seeks),
        DecodeBench::DecodeSamples {
            file,
            codec,
            decoder,
            until,
        } => {
            let codec = vidlog_types::VideoCodec::parse(&codec)
                .with_context(|| format!("--codec {codec:?}: not a codec"))?;
            let samples = read_samples(&file)?;
            decode_run(
                Backend::by_name(&decoder)?,
                codec,
                &samples,
                Some(until),
                Tuning::Throughput,
            )?;
            Ok(())
        }
    }
}

/// An opened recording with the stream picked.
struct Opened {
    recording: Recording,
    entity: EntityPath,
    timeline: String,
    kind: TimeKind,
    backend: Backend,
}

impl Opened {
    fn open(input: &Input) -> anyhow::Result<Opened> {
        let recording = Recording::open(&input.input)
            .with_context(|| format!("opening {}", input.input.display()))?;
        let store = &recording.store;
        let entity = pick_entity(store, input.entity.as_deref())?;
        let video = store.video(&entity).context("checked by pick_entity")?;
        let (timeline, kind) = pick_timeline(video, input.timeline.as_deref(), &entity)?;
        let codec = store
            .codec(&entity)
            .with_context(|| format!("{entity} has no codec logged"))?;
        let backend = match &input.decoder {
            Some(name) => Backend::by_name(name)?,
            None => backend_for(codec)?,
        };
        println!(
            "input: {} entity {entity}, {} samples, {codec}; decoder backend: {}",
            input.input.display(),
            video.len(),
            backend.name()
        );
        Ok(Opened {
            recording,
            entity,
            timeline,
            kind,
            backend,
        })
    }

    fn source(&self) -> anyhow::Result<StoreVideoSource<'_>> {
        Ok(StoreVideoSource::new(
            &self.recording.store,
            self.entity.clone(),
            &self.timeline,
        )?)
    }

    fn player(&self) -> anyhow::Result<VideoPlayer<StoreVideoSource<'_>>> {
        Ok(VideoPlayer::new(self.source()?).with_backend(self.backend))
    }

    /// The player `vidlog frame --at` uses.
    fn stills_player(&self) -> anyhow::Result<VideoPlayer<StoreVideoSource<'_>>> {
        Ok(VideoPlayer::for_stills(self.source()?, true).with_backend(self.backend))
    }

    fn parse_time(&self, text: &str, what: &str) -> anyhow::Result<i64> {
        self.kind
            .parse_value(text)
            .map_err(|e| anyhow::anyhow!("--{what}: {e}"))
    }
}

/// The samples of `range` read into memory (decode order, with their PTS).
fn load_samples(
    source: &StoreVideoSource<'_>,
    range: std::ops::RangeInclusive<usize>,
) -> anyhow::Result<Vec<(Vec<u8>, i64)>> {
    range
        .map(|i| {
            let bytes = source
                .bytes(i)
                .map_err(|e| anyhow::anyhow!("sample {i}: {e}"))?;
            Ok((bytes.as_ref().to_vec(), source.pts(i).unwrap_or(i64::MIN)))
        })
        .collect()
}

/// Decodes `samples` with a fresh decoder tuned with `tuning` and drains it,
/// returning the frames handed out (with `until`, only frames from that PTS on): the
/// decoder's own time for a run of samples.
fn decode_run(
    backend: Backend,
    codec: vidlog_types::VideoCodec,
    samples: &[(Vec<u8>, i64)],
    until: Option<i64>,
    tuning: Tuning,
) -> anyhow::Result<usize> {
    let mut decoder = backend.open_tuned(codec, tuning)?;
    // Only the frame asked for leaves the decoder (its own time, no copies out).
    decoder.set_output_floor(until);
    let mut out: Vec<Frame> = Vec::new();
    let (mut frames, mut found) = (0, false);
    let mut take = |out: &mut Vec<Frame>| {
        frames += out.len();
        found |= out.iter().any(|f| Some(f.pts) == until);
        out.clear();
    };
    for (bytes, pts) in samples {
        decoder.decode(bytes, *pts, &mut out)?;
        take(&mut out);
    }
    decoder.flush(&mut out)?;
    take(&mut out);
    if let Some(t) = until {
        anyhow::ensure!(found, "the decoder gave no frame for pts {t}");
    }
    Ok(frames)
}

/// Writes samples as `u32 len | i64 pts | bytes` (little-endian) for `decode-samples`.
fn write_samples(path: &Path, samples: &[(Vec<u8>, i64)]) -> anyhow::Result<()> {
    let mut out = Vec::new();
    for (bytes, pts) in samples {
        out.extend_from_slice(&u32::try_from(bytes.len())?.to_le_bytes());
        out.extend_from_slice(&pts.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Reads what [`write_samples`] wrote.
fn read_samples(path: &Path) -> anyhow::Result<Vec<(Vec<u8>, i64)>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut samples = Vec::new();
    let mut rest = data.as_slice();
    while !rest.is_empty() {
        anyhow::ensure!(
            rest.len() >= 12,
            "{}: a sample header is cut short",
            path.display()
        );
        let len = u32::from_le_bytes(rest[..4].try_into()?) as usize;
        let pts = i64::from_le_bytes(rest[4..12].try_into()?);
        let bytes = rest
            .get(12..12 + len)
            .with_context(|| format!("{}: a sample is cut short", path.display()))?;
        samples.push((bytes.to_vec(), pts));
        rest = &rest[12 + len..];
    }
    Ok(samples)
}

/// Best (least) wall time of `repeat` runs of `f`, and the last run's result.
fn best_of<R>(
    repeat: usize,
    mut f: impl FnMut() -> anyhow::Result<R>,
) -> anyhow::Result<(Duration, R)> {
    let mut best = Duration::MAX;
    let mut result = None;
    for _ in 0..repeat {
        let t0 = Instant::now();
        let r = f()?;
        best = best.min(t0.elapsed());
        result = Some(r);
    }
    Ok((best, result.context("at least one run")?))
}

/// Wall time of one run of a command (its output discarded); fails when it fails.
fn run_process(program: &Path, args: &[String]) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("running {}", program.display()))?;
    let elapsed = t0.elapsed();
    anyhow::ensure!(
        status.success(),
        "{} {} failed: {status}",
        program.display(),
        args.join(" ")
    );
    Ok(elapsed)
}

/// Best wall time of `repeat` runs of a command.
fn best_process(repeat: usize, program: &Path, args: &[String]) -> anyhow::Result<Duration> {
    (0..repeat).try_fold(Duration::MAX, |best, _| {
        Ok(best.min(run_process(program, args)?))
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn seek(
    input: &Input,
    at: &str,
    mp4: Option<&Path>,
    repeat: usize,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let opened = Opened::open(input)?;
    let t = opened.parse_time(at, "at")?;
    let source = opened.source()?;
    let codec = source.codec().context("checked on open")?;
    let (target, pts) = source
        .presented_at(t)
        .with_context(|| format!("no frame is shown at {at}"))?;
    let keyframe = source
        .keyframe_before(target)
        .context("no keyframe before the target")?;
    // Decode order from the keyframe to the target sample is every sample its picture needs.
    let samples = load_samples(&source, keyframe..=target)?;
    println!(
        "seek to {at}: sample {target} (pts {}), keyframe sample {keyframe}: {} samples to \
         decode",
        opened.kind.format_value(pts),
        target - keyframe + 1
    );

    // In-process stages of `vidlog frame`.
    let (open_time, _) = best_of(repeat, || Ok(opened.backend.open(codec)?))?;
    let (open_rec, _) = best_of(repeat, || Ok(Recording::open(&input.input)?))?;
    let (player_time, presented) = best_of(repeat, || {
        let mut player = opened.stills_player()?;
        player
            .frame_at(t)?
            .context("no frame at the time asked for")
    })?;
    let frame = &presented.frame;
    let (rgb_time, rgb) = best_of(repeat, || Ok(frame.to_rgb()))?;
    let (png_time, png_bytes) = best_of(repeat, || {
        let mut buf = Vec::with_capacity(rgb.len() / 2);
        crate::cmd::frame::encode_png(&mut buf, frame.width, frame.height, &rgb)?;
        Ok(buf)
    })?;
    // The server's fallback for codecs the browser lacks: JPEG straight from YUV, beside the
    // RGBA -> JPEG path it replaced.
    let (w16, h16) = (
        u16::try_from(frame.width).context("width fits JPEG")?,
        u16::try_from(frame.height).context("height fits JPEG")?,
    );
    let (jpeg_time, jpeg) = best_of(repeat, || Ok(vidlog_server::jpeg_of(frame, w16, h16, 85)?))?;
    let (jpeg_rgba_time, _) = best_of(repeat, || {
        let rgba = frame.to_rgba();
        let mut out = Vec::with_capacity(rgba.len() / 8);
        jpeg_encoder::Encoder::new(&mut out, 85).encode(
            &rgba,
            w16,
            h16,
            jpeg_encoder::ColorType::Rgba,
        )?;
        Ok(out)
    })?;

    // The decoder alone, the whole `vidlog frame` process and ffmpeg, interleaved run by run
    // so that load from elsewhere on the machine hits all three alike; best of each.
    let dir = dir.unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ours_png = dir.join(format!("vidlog-bench-seek-{}.png", std::process::id()));
    let ff_png = dir.join(format!(
        "vidlog-bench-seek-ffmpeg-{}.png",
        std::process::id()
    ));
    let exe = std::env::current_exe().context("finding the vidlog executable")?;
    let mut args: Vec<String> = vec![
        "frame".into(),
        input.input.display().to_string(),
        "--at".into(),
        at.into(),
        "-o".into(),
        ours_png.display().to_string(),
        "--decoder".into(),
        opened.backend.name().into(),
    ];
    if let Some(entity) = &input.entity {
        args.extend(["--entity".into(), entity.clone()]);
    }
    if let Some(timeline) = &input.timeline {
        args.extend(["--timeline".into(), timeline.clone()]);
    }
    let seconds = t as f64 / 1e9;
    if mp4.is_some() {
        anyhow::ensure!(
            opened.kind == TimeKind::Duration,
            "comparing with ffmpeg needs a duration timeline"
        );
    }
    let ff_args: Option<Vec<String>> = mp4.map(|mp4| {
        [
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-ss",
            &format!("{seconds}"),
            "-i",
            &mp4.display().to_string(),
            "-frames:v",
            "1",
            &ff_png.display().to_string(),
        ]
        .map(String::from)
        .to_vec()
    });
    let samples_file = dir.join(format!("vidlog-bench-seek-{}.samples", std::process::id()));
    write_samples(&samples_file, &samples)?;
    let decoder_args: Vec<String> = vec![
        "bench".into(),
        "decode".into(),
        "decode-samples".into(),
        "--file".into(),
        samples_file.display().to_string(),
        "--codec".into(),
        codec.name().into(),
        "--decoder".into(),
        opened.backend.name().into(),
        "--until".into(),
        pts.to_string(),
    ];
    let (mut decode_time, mut whole, mut ff) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut decoder_process = Duration::MAX;
    let mut frames = 0;
    for _ in 0..repeat {
        let t0 = Instant::now();
        frames = decode_run(
            opened.backend,
            codec,
            &samples,
            Some(pts),
            Tuning::Throughput,
        )?;
        decode_time = decode_time.min(t0.elapsed());
        decoder_process = decoder_process.min(run_process(&exe, &decoder_args)?);
        whole = whole.min(run_process(&exe, &args)?);
        if let Some(ff_args) = &ff_args {
            ff = ff.min(run_process(Path::new("ffmpeg"), ff_args)?);
        }
    }
    println!(
        "  decoder alone ({}, frame threads where it has them): {:.1} ms for {} samples \
         ({:.2} ms/sample, {frames} frame handed out; opening a decoder takes {:.2} ms)",
        opened.backend.name(),
        ms(decode_time),
        samples.len(),
        ms(decode_time) / samples.len().max(1) as f64,
        ms(open_time)
    );
    println!(
        "  in process: open recording {:.2} ms, player frame_at {:.1} ms, YUV->RGB {:.2} ms, \
         PNG encode {:.2} ms ({} bytes)",
        ms(open_rec),
        ms(player_time),
        ms(rgb_time),
        ms(png_time),
        png_bytes.len()
    );
    println!(
        "  server-decoded frame: JPEG q85 from YUV {:.2} ms ({} bytes); via RGBA {:.2} ms",
        ms(jpeg_time),
        jpeg.len(),
        ms(jpeg_rgba_time)
    );
    let _ = std::fs::remove_file(&samples_file);
    println!(
        "  decoder alone as a fresh process (the same samples from a file, its first-run \
         page faults included): {:.1} ms",
        ms(decoder_process)
    );
    let overhead = whole.saturating_sub(decoder_process);
    println!(
        "  whole process `vidlog frame --at {at} -o out.png`: {:.1} ms; overhead beyond the \
         decoder's own time as a process {:.1} ms = {:.1}% of it",
        ms(whole),
        ms(overhead),
        100.0 * overhead.as_secs_f64() / decoder_process.as_secs_f64()
    );
    if let Some(mp4) = mp4 {
        let (mean, max) = compare_pngs(&ours_png, &ff_png)?;
        println!(
            "  ffmpeg -ss {seconds} -i {} -frames:v 1 out.png: {:.1} ms; vidlog/ffmpeg = \
             {:.2}x; pixels differ by {mean:.3} on average, {max} at most (0-255 per channel)",
            mp4.display(),
            ms(ff),
            whole.as_secs_f64() / ff.as_secs_f64()
        );
        let _ = std::fs::remove_file(ff_png);
    }
    let _ = std::fs::remove_file(ours_png);
    Ok(())
}

/// Mean and largest absolute difference of the RGB channels of two PNGs of the same size.
fn compare_pngs(a: &Path, b: &Path) -> anyhow::Result<(f64, u8)> {
    let (a, b) = (read_png_rgb(a)?, read_png_rgb(b)?);
    anyhow::ensure!(
        a.0 == b.0 && a.1 == b.1,
        "the PNGs differ in size: {}x{} and {}x{}",
        a.0,
        a.1,
        b.0,
        b.1
    );
    let (mut sum, mut max) = (0u64, 0u8);
    for (x, y) in a.2.iter().zip(&b.2) {
        let d = x.abs_diff(*y);
        sum += u64::from(d);
        max = max.max(d);
    }
    Ok((sum as f64 / a.2.len().max(1) as f64, max))
}

fn read_png_rgb(path: &Path) -> anyhow::Result<(u32, u32, Vec<u8>)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("reading {}", path.display()))?;
    let mut buf = vec![0; reader.output_buffer_size().context("PNG too large")?];
    let info = reader
        .next_frame(&mut buf)
        .with_context(|| format!("reading {}", path.display()))?;
    buf.truncate(info.buffer_size());
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => anyhow::bail!("{}: unexpected PNG colour type {other:?}", path.display()),
    };
    Ok((info.width, info.height, rgb))
}

fn warm(input: &Input, from: &str, steps: usize) -> anyhow::Result<()> {
    let opened = Opened::open(input)?;
    let t = opened.parse_time(from, "from")?;
    let source = opened.source()?;
    let order = source.presentation_order();
    let start = order
        .partition_point(|(pts, _)| *pts <= t)
        .saturating_sub(1);
    anyhow::ensure!(
        start + steps < order.len(),
        "the stream has {} frames after {from}; ask for fewer --steps",
        order.len() - start - 1
    );
    let times: Vec<i64> = order[start..=start + steps].iter().map(|p| p.0).collect();
    let mut player = opened.player()?;
    player.frame_at(times[0])?.context("no first frame")?;

    let before = player.stats();
    let t0 = Instant::now();
    for &pts in &times[1..] {
        player.frame_at(pts)?.context("a frame stepping forward")?;
    }
    let forward = t0.elapsed();
    let mid = player.stats();
    let t1 = Instant::now();
    for &pts in times[..steps].iter().rev() {
        player.frame_at(pts)?.context("a frame stepping back")?;
    }
    let back = t1.elapsed();
    let after = player.stats();
    println!(
        "warm player from {from}: {steps} steps forward: {:.0} us/step, {:.2} samples decoded \
         per step ({} seeks); {steps} steps back: {:.2} us/step, {} samples decoded, {} cache \
         hits; cache {:.1} MiB",
        forward.as_secs_f64() * 1e6 / steps as f64,
        (mid.samples_decoded - before.samples_decoded) as f64 / steps as f64,
        mid.seeks - before.seeks,
        back.as_secs_f64() * 1e6 / steps as f64,
        after.samples_decoded - mid.samples_decoded,
        after.cache_hits - mid.cache_hits,
        player.cache_bytes() as f64 / (1 << 20) as f64
    );
    Ok(())
}

fn play(
    input: &Input,
    mp4: Option<&Path>,
    repeat: usize,
    cache_mb: Option<usize>,
) -> anyhow::Result<()> {
    let opened = Opened::open(input)?;
    let source = opened.source()?;
    let codec = source.codec().context("checked on open")?;
    anyhow::ensure!(!source.is_empty(), "the stream has no samples");
    let samples = load_samples(&source, 0..=source.len() - 1)?;
    let n = samples.len();
    let (decode, frames) = best_of(repeat, || {
        decode_run(opened.backend, codec, &samples, None, Tuning::LowLatency)
    })?;
    anyhow::ensure!(frames == n, "{n} samples gave {frames} frames");
    println!(
        "sequential decode, one thread ({}): {n} frames in {:.0} ms = {:.1} fps",
        opened.backend.name(),
        ms(decode),
        n as f64 / decode.as_secs_f64()
    );
    let times: Vec<i64> = source.presentation_order().iter().map(|p| p.0).collect();
    let (through_player, decoded) = best_of(repeat, || {
        let mut player = opened.player()?;
        if let Some(mb) = cache_mb {
            player = player.with_cache_bytes(mb << 20);
        }
        for &t in &times {
            player.frame_at(t)?.context("a frame while playing")?;
        }
        Ok(player.stats().samples_decoded)
    })?;
    println!(
        "  through VideoPlayer::frame_at, samples read from the recording: {:.0} ms = {:.1} \
         fps ({decoded} samples decoded for {} frames)",
        ms(through_player),
        times.len() as f64 / through_player.as_secs_f64(),
        times.len()
    );
    if let Some(mp4) = mp4 {
        let args: Vec<String> = [
            "-nostdin",
            "-v",
            "error",
            "-threads",
            "1",
            "-i",
            &mp4.display().to_string(),
            "-f",
            "null",
            "-",
        ]
        .map(String::from)
        .to_vec();
        let ff = best_process(repeat, Path::new("ffmpeg"), &args)?;
        println!(
            "  ffmpeg -threads 1 -i {} -f null - (whole process): {:.0} ms = {:.1} fps; our \
             decoder's time / ffmpeg's = {:.2}",
            mp4.display(),
            ms(ff),
            n as f64 / ff.as_secs_f64(),
            decode.as_secs_f64() / ff.as_secs_f64()
        );
    }
    Ok(())
}

/// `VmRSS` and `VmHWM` of this process in KiB (Linux).
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn memory(input: &Input, cache_mb: Option<usize>, seeks: usize) -> anyhow::Result<()> {
    let opened = Opened::open(input)?;
    let source = opened.source()?;
    let times: Vec<i64> = source.presentation_order().iter().map(|p| p.0).collect();
    anyhow::ensure!(!times.is_empty(), "the stream has no samples");
    let (rss_open, _) = rss_kib();
    let mut player = opened.player()?;
    if let Some(mb) = cache_mb {
        player = player.with_cache_bytes(mb << 20);
    }
    let mut largest = 0;
    // A fixed-seed linear congruential generator: the same seeks every run.
    let mut state: u64 = 0x5eed;
    let t0 = Instant::now();
    for _ in 0..seeks {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let t = times[(state >> 33) as usize % times.len()];
        player.frame_at(t)?.context("a frame at a random time")?;
        largest = largest.max(player.cache_bytes());
    }
    let seeking = t0.elapsed();
    for &t in &times {
        player.frame_at(t)?.context("a frame while playing")?;
        largest = largest.max(player.cache_bytes());
    }
    let stats = player.stats();
    let (_, peak) = rss_kib();
    let budget = cache_mb.map_or(vidlog_video::decode::player::DEFAULT_CACHE_BYTES, |m| {
        m << 20
    });
    println!(
        "memory: {seeks} random seeks ({:.1} ms each) then all {} frames: cache budget {:.0} \
         MiB, largest cache {:.1} MiB, {} evictions; RSS after opening {:.1} MiB, peak RSS \
         {:.1} MiB",
        ms(seeking) / seeks.max(1) as f64,
        times.len(),
        budget as f64 / (1 << 20) as f64,
        largest as f64 / (1 << 20) as f64,
        stats.evictions,
        rss_open as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    Ok(())
}
