//! `vidlog import`: a raw Annex B H.264 file into a recording, one sample per access
//! unit, in decode order, with presentation times from `--fps` and the picture order
//! count (so B-frame streams get their true presentation times). Streams the input in
//! bounded memory: a multi-GB file never sits in memory.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use vidlog_sdk::{RecordingStream, TimeCell, VideoCodec, VideoStream};
use vidlog_video::bitstream::h264::{AccessUnit, AccessUnitReader, H264Error, PresentationOrderer};

#[derive(clap::Args)]
#[command(
    about = "Import video into a recording: raw H.264 (.h264), MP4, or MCAP",
    after_help = "The input kind is recognized from its first bytes.\n\
                  - Raw Annex B H.264: each access unit becomes one sample, logged in decode order; its\n  \
                  presentation time is its picture-order rank divided by --fps, so B-frames import correctly.\n\
                  - MP4: --as stream (default) logs the first video track's samples in decode order at their\n  \
                  presentation times (B-frames kept; parameter sets put in front of keyframes); --as asset\n  \
                  logs the file whole as an AssetVideo plus one VideoFrameReference row per frame.\n\
                  - MCAP: every foxglove.CompressedVideo (and ROS CompressedImage h264) channel becomes an\n  \
                  entity named after its topic, samples at their message timestamps.\n\n\
                  Examples:\n  vidlog import clip.h264 --entity camera/front --fps 30 -o run.vlog\n  \
                  vidlog import clip.264 --entity cam --fps 30000/1001 -o run.vlog\n  \
                  vidlog import movie.mp4 --entity cam --as asset -o movie.vlog\n  \
                  vidlog import run.mcap -o run.vlog"
)]
pub struct ImportArgs {
    /// Input: raw Annex B H.264, MP4, or MCAP.
    pub(crate) input: PathBuf,
    /// Entity path to log the samples on (MCAP: entities come from the topics).
    #[arg(long, default_value = "video")]
    pub(crate) entity: String,
    /// Frame rate of a raw stream: `30`, `29.97` or `30000/1001`.
    #[arg(long, default_value = "30", value_parser = parse_rate)]
    pub(crate) fps: (u64, u64),
    /// Codec of a raw input (only h264 for raw elementary streams so far).
    #[arg(long, default_value = "h264")]
    pub(crate) codec: String,
    /// MP4 only: log samples as a stream, or the whole file as an asset.
    #[arg(long = "as", value_enum, default_value = "stream")]
    pub(crate) import_as: super::import_container::ImportAs,
    /// Output recording (default: the input with a .vlog extension).
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
}

/// `30` -> (30, 1), `29.97` -> (2997, 100), `30000/1001` -> (30000, 1001).
fn parse_rate(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("frame rate {s:?} is not a number like 30, 29.97 or 30000/1001");
    let (num, den) = if let Some((n, d)) = s.split_once('/') {
        (
            n.trim().parse::<u64>().map_err(|_| bad())?,
            d.trim().parse::<u64>().map_err(|_| bad())?,
        )
    } else if let Some((int, frac)) = s.split_once('.') {
        let scale = 10u64.checked_pow(frac.len() as u32).ok_or_else(bad)?;
        let int: u64 = int.parse().map_err(|_| bad())?;
        let frac: u64 = frac.parse().map_err(|_| bad())?;
        (int * scale + frac, scale)
    } else {
        (s.trim().parse::<u64>().map_err(|_| bad())?, 1)
    };
    if num == 0 || den == 0 {
        return Err(format!("frame rate {s:?} must be positive"));
    }
    Ok((num, den))
}

/// Counts bytes read for the progress bar.
struct Counting<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    match super::import_container::sniff(&args.input) {
        super::import_container::Container::Mp4 => {
            return super::import_container::import_mp4(&args);
        }
        super::import_container::Container::Mcap => {
            return super::import_container::import_mcap(&args);
        }
        super::import_container::Container::Other => {}
    }
    let codec = VideoCodec::parse(&args.codec)
        .with_context(|| format!("unknown codec {:?}; use h264, h265 or av1", args.codec))?;
    anyhow::ensure!(
        codec == VideoCodec::H264,
        "importing raw {codec} elementary streams is not supported yet; only H.264 (.h264) is"
    );
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.input.with_extension("vlog"));
    anyhow::ensure!(
        output != args.input,
        "the output would overwrite the input; pass -o"
    );
    let file =
        File::open(&args.input).with_context(|| format!("opening {}", args.input.display()))?;
    let metadata = file.metadata().ok();
    anyhow::ensure!(
        !metadata.as_ref().is_some_and(|m| m.is_dir()),
        "{} is a directory; pass an .h264 file",
        args.input.display()
    );
    let len = metadata.map(|m| m.len()).unwrap_or(0);
    let bar = super::progress_bar(len, "importing");
    let reader = AccessUnitReader::new(Counting {
        inner: BufReader::with_capacity(1 << 20, file),
        bar: bar.clone(),
    });

    let rec = RecordingStream::builder("vidlog_import")
        .save(&output)
        .with_context(|| format!("creating {}", output.display()))?;
    rec.log_static(args.entity.as_str(), &VideoStream::new(codec))?;
    let start = Instant::now();
    let mut importer = Importer {
        rec: &rec,
        entity: &args.entity,
        rate: args.fps,
        orderer: None,
        queue: VecDeque::new(),
        next_decode: 0,
        logged: 0,
        keyframes: 0,
        reordered: false,
        bytes: 0,
    };
    let mut problems = 0u64;
    let mut saw_sps = false;
    for au in reader {
        match au {
            Ok(au) => {
                saw_sps |= au.sps.is_some();
                importer.push(au)?
            }
            // The input itself failed (a directory, an I/O error): not a stream problem.
            Err(e @ H264Error::Io(_)) => {
                bar.finish_and_clear();
                return Err(e).with_context(|| format!("reading {}", args.input.display()));
            }
            Err(e) => {
                problems += 1;
                if problems <= 10 {
                    bar.suspend(|| eprintln!("vidlog import: {}: {e}", args.input.display()));
                }
            }
        }
    }
    importer.finish()?;
    let Importer {
        logged,
        keyframes,
        reordered,
        bytes,
        ..
    } = importer;
    rec.flush()?;
    drop(rec);
    bar.finish_and_clear();
    if logged == 0 || !saw_sps {
        // A recording without samples, or without the SPS any decoder needs (random bytes
        // can hold a start code that looks like a slice), is no use; do not leave one behind.
        let _ = std::fs::remove_file(&output);
        anyhow::bail!(
            "{}: no H.264 {} found (is it an Annex B .h264 file?)",
            args.input.display(),
            if logged == 0 {
                "access units"
            } else {
                "sequence parameter set (SPS)"
            }
        );
    }
    eprintln!(
        "vidlog import: {} samples ({} keyframes{}, {:.1} MB) from {} -> {} in {:.2} s{}",
        logged,
        keyframes,
        if reordered { ", B-frames" } else { "" },
        bytes as f64 / 1e6,
        args.input.display(),
        output.display(),
        start.elapsed().as_secs_f64(),
        if problems > 0 {
            format!("; {problems} stream problems (the first 10 are shown above)")
        } else {
            String::new()
        },
    );
    Ok(())
}

/// Holds access units until their presentation index is known, then logs them in
/// decode order.
struct Importer<'a> {
    rec: &'a RecordingStream,
    entity: &'a str,
    rate: (u64, u64),
    orderer: Option<PresentationOrderer>,
    /// `(decode index, access unit, presentation index once known)`.
    queue: VecDeque<(u64, AccessUnit, Option<u64>)>,
    next_decode: u64,
    logged: u64,
    keyframes: u64,
    reordered: bool,
    bytes: u64,
}

impl Importer<'_> {
    fn push(&mut self, au: AccessUnit) -> anyhow::Result<()> {
        let orderer = self.orderer.get_or_insert_with(|| {
            let depth = match &au.sps {
                Some(sps) if sps.pic_order_cnt_type == 2 => 0,
                Some(sps) => sps
                    .max_num_reorder_frames
                    .unwrap_or(PresentationOrderer::DEFAULT_MAX_REORDER),
                None => PresentationOrderer::DEFAULT_MAX_REORDER,
            };
            PresentationOrderer::new(depth)
        });
        let done = orderer.push(au.poc, au.poc_reset);
        self.queue.push_back((self.next_decode, au, None));
        self.next_decode += 1;
        self.assign(done);
        self.log_ready()
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(orderer) = &mut self.orderer {
            let done = orderer.finish();
            self.assign(done);
        }
        self.log_ready()
    }

    fn assign(&mut self, done: Vec<(u64, u64)>) {
        let Some(first) = self.queue.front().map(|(d, _, _)| *d) else {
            return;
        };
        for (decode, presentation) in done {
            if decode != presentation {
                self.reordered = true;
            }
            if let Some(entry) = self.queue.get_mut((decode - first) as usize) {
                entry.2 = Some(presentation);
            }
        }
    }

    fn log_ready(&mut self) -> anyhow::Result<()> {
        while let Some((_, _, Some(_))) = self.queue.front() {
            let Some((_, au, Some(presentation))) = self.queue.pop_front() else {
                break;
            };
            let (num, den) = self.rate;
            // Rounded to the nearest ns, as MP4 tick conversions round, so `n / fps` maps back
            // to whole ticks of the frame rate's timescale on export.
            let (num, den) = (i128::from(num), i128::from(den));
            let pts = (i128::from(presentation) * 1_000_000_000 * den + num / 2) / num;
            self.rec
                .set_time("time", TimeCell::from_duration_nanos(pts as i64));
            self.rec
                .set_time("frame", TimeCell::from_sequence(presentation as i64));
            self.logged += 1;
            self.bytes += au.data.len() as u64;
            if au.is_keyframe {
                self.keyframes += 1;
            }
            self.rec.log(
                self.entity,
                &VideoStream::from_sample(au.data).with_keyframe(au.is_keyframe),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("30"), Ok((30, 1)));
        assert_eq!(parse_rate("29.97"), Ok((2997, 100)));
        assert_eq!(parse_rate("30000/1001"), Ok((30000, 1001)));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("abc").is_err());
        assert!(parse_rate("30/0").is_err());
    }
}
