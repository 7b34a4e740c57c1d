//! `vidlog import` of containers: MP4 (as a sample stream or as an asset) and MCAP
//! (`foxglove.CompressedVideo` / ROS `CompressedImage` channels). Raw elementary streams
//! are `import.rs`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use vidlog_mcap::McapVideoReader;
use vidlog_sdk::{RecordingStream, TimeCell, VideoStream};
use vidlog_types::{AssetVideo, VideoFrameReference};
use vidlog_video::mp4::{Mp4Demuxer, read_frame_timestamps_nanos};

use super::import::ImportArgs;

/// How an MP4 is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportAs {
    /// Demuxed samples on a `VideoStream`.
    Stream,
    /// The file whole as `AssetVideo`, plus `VideoFrameReference` rows.
    Asset,
}

/// What an input file is, from its first bytes.
pub enum Container {
    Mp4,
    Mcap,
    Other,
}

pub fn sniff(path: &Path) -> Container {
    let mut head = [0u8; 12];
    let Ok(mut file) = File::open(path) else {
        return Container::Other;
    };
    let n = file.read(&mut head).unwrap_or(0);
    if n >= 8 && head[..8] == *b"\x89MCAP0\r\n" {
        Container::Mcap
    } else if n >= 8 && matches!(&head[4..8], b"ftyp" | b"moov" | b"mdat" | b"free" | b"wide") {
        Container::Mp4
    } else {
        Container::Other
    }
}

fn output_path(args: &ImportArgs) -> anyhow::Result<PathBuf> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.input.with_extension("vlog"));
    anyhow::ensure!(
        output != args.input,
        "the output would overwrite the input; pass -o"
    );
    Ok(output)
}

/// Runs `body` into a fresh recording at `output`; removes the file if `body` fails, so a
/// failed import never leaves a half recording behind.
fn with_recording(
    output: &Path,
    body: impl FnOnce(&RecordingStream) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let rec = RecordingStream::builder("vidlog_import")
        .save(output)
        .with_context(|| format!("creating {}", output.display()))?;
    let result = body(&rec).and_then(|summary| {
        rec.flush()?;
        Ok(summary)
    });
    drop(rec);
    match result {
        Ok(summary) => {
            eprintln!(
                "vidlog import: {summary} -> {} in {:.2} s",
                output.display(),
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(output);
            Err(e)
        }
    }
}

pub fn import_mp4(args: &ImportArgs) -> anyhow::Result<()> {
    let output = output_path(args)?;
    let input = &args.input;
    let entity = args.entity.as_str();
    match args.import_as {
        ImportAs::Asset => {
            let bytes =
                std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
            let times = read_frame_timestamps_nanos(&bytes)
                .with_context(|| format!("{}: reading the frame times", input.display()))?;
            let size = bytes.len();
            with_recording(&output, |rec| {
                rec.log_static(entity, &AssetVideo::new(bytes).with_media_type("video/mp4"))?;
                for (n, t) in times.iter().enumerate() {
                    rec.set_time("time", TimeCell::from_duration_nanos(*t));
                    rec.set_time("frame", TimeCell::from_sequence(n as i64));
                    rec.log(entity, &VideoFrameReference::new(*t))?;
                }
                Ok(format!(
                    "{} as an asset ({size} bytes) with {} frame references on {entity}",
                    input.display(),
                    times.len()
                ))
            })
        }
        ImportAs::Stream => {
            let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
            let mut demuxer = Mp4Demuxer::open(BufReader::with_capacity(1 << 20, file))
                .with_context(|| format!("reading {}", input.display()))?;
            let tracks = demuxer.tracks();
            let (index, track) = tracks
                .iter()
                .enumerate()
                .find(|(_, t)| t.codec.is_some())
                .with_context(|| {
                    let found: Vec<String> =
                        tracks.iter().map(|t| t.codec_string.clone()).collect();
                    format!(
                        "{}: no H.264, H.265 or AV1 video track (tracks: {})",
                        input.display(),
                        if found.is_empty() {
                            "none".into()
                        } else {
                            found.join(", ")
                        }
                    )
                })?;
            let track = track.clone();
            let codec = track.codec.context("checked above")?;
            // Presentation rank of each sample, for the `frame` timeline.
            let mut order: Vec<usize> = (0..track.samples.len()).collect();
            order.sort_by_key(|&i| (track.samples[i].pts, i));
            let mut rank = vec![0i64; order.len()];
            for (r, &i) in order.iter().enumerate() {
                rank[i] = r as i64;
            }
            let bar = super::progress_bar(
                track.samples.iter().map(|s| u64::from(s.size)).sum(),
                "importing",
            );
            let result = with_recording(&output, |rec| {
                rec.log_static(entity, &VideoStream::new(codec))?;
                let mut keyframes = 0;
                for (i, sample) in track.samples.iter().enumerate() {
                    let data = demuxer
                        .read_sample(index, i)
                        .with_context(|| format!("{}: sample {i}", input.display()))?;
                    bar.inc(u64::from(sample.size));
                    keyframes += usize::from(sample.is_sync);
                    rec.set_time(
                        "time",
                        TimeCell::from_duration_nanos(sample.pts_ns(track.timescale)),
                    );
                    rec.set_time("frame", TimeCell::from_sequence(rank[i]));
                    rec.log(
                        entity,
                        &VideoStream::from_sample(data).with_keyframe(sample.is_sync),
                    )?;
                }
                Ok(format!(
                    "{} samples ({keyframes} keyframes, {}, {}x{}) from {} track {} on {entity}",
                    track.samples.len(),
                    track.codec_string,
                    track.width,
                    track.height,
                    input.display(),
                    track.track_id
                ))
            });
            bar.finish_and_clear();
            result
        }
    }
}

/// Timestamps above this (about 3 years in ns) are read as wall-clock time since the
/// epoch; below it as a duration from the start of a recording (what `vidlog export
/// --format mcap` writes).
const WALL_CLOCK_NANOS: i64 = 100_000_000_000_000_000;

pub fn import_mcap(args: &ImportArgs) -> anyhow::Result<()> {
    let output = output_path(args)?;
    let input = &args.input;
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let reader =
        McapVideoReader::open(&bytes).with_context(|| format!("reading {}", input.display()))?;
    let channels = reader.video_channels().to_vec();
    anyhow::ensure!(
        !channels.is_empty(),
        "{}: no video channels (foxglove.CompressedVideo or CompressedImage h264); {} other channels skipped",
        input.display(),
        reader.skipped_channels().len()
    );
    let mut entities = std::collections::HashMap::new();
    for channel in &channels {
        let entity = channel
            .entity_path()
            .with_context(|| format!("topic {:?} is not a valid entity path", channel.topic))?;
        entities.insert(channel.id, (entity, channel.codec, None::<bool>));
    }
    with_recording(&output, |rec| {
        for (entity, codec, _) in entities.values() {
            rec.log_static(entity, &VideoStream::new(*codec))?;
        }
        let mut count = 0u64;
        for message in reader.messages()? {
            let message = message.with_context(|| format!("reading {}", input.display()))?;
            let Some((entity, _, wall_clock)) = entities.get_mut(&message.channel) else {
                continue;
            };
            let is_wall_clock = *wall_clock.get_or_insert(message.pts_ns >= WALL_CLOCK_NANOS);
            let cell = if is_wall_clock {
                TimeCell::from_timestamp_nanos(message.pts_ns)
            } else {
                TimeCell::from_duration_nanos(message.pts_ns)
            };
            rec.reset_time();
            rec.set_time("time", cell);
            rec.log_at(
                entity.clone(),
                rec.time(),
                &VideoStream::from_sample(message.data),
            )?;
            count += 1;
        }
        Ok(format!(
            "{count} samples on {} entities from {} ({} channels skipped)",
            entities.len(),
            input.display(),
            reader.skipped_channels().len()
        ))
    })
}
