//! `vidlog export --format mcap`: every video entity (or the one asked for) as a
//! `foxglove.CompressedVideo` channel, samples in decode order, timestamp = presentation
//! time, log time from a timestamp timeline when the stream has one.

use std::fs::File;
use std::io::BufWriter;

use anyhow::Context;
use vidlog_mcap::McapVideoWriter;
use vidlog_store::Recording;
use vidlog_types::{EntityPath, TimeKind};

use super::export::{ExportArgs, pick_entity, pick_timeline};

pub fn run(recording: &Recording, args: &ExportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.output.as_os_str() != "-",
        "MCAP export needs a file: pass -o FILE.mcap"
    );
    anyhow::ensure!(
        args.from.is_none() && args.to.is_none() && !args.fragmented,
        "--from, --to and --fragmented apply to MP4 export"
    );
    let store = &recording.store;
    let entities: Vec<EntityPath> = match &args.entity {
        Some(_) => vec![pick_entity(store, args.entity.as_deref())?],
        None => store.video_entities().cloned().collect(),
    };
    anyhow::ensure!(!entities.is_empty(), "the recording has no video entity");
    let file = File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut writer = McapVideoWriter::new(BufWriter::with_capacity(1 << 20, file))?;
    let mut total = 0usize;
    for entity in &entities {
        let video = store
            .video(entity)
            .context("video entity without an index")?;
        let codec = store
            .codec(entity)
            .with_context(|| format!("{entity}: no codec logged, so it cannot be exported"))?;
        let (timeline, _) = pick_timeline(video, args.timeline.as_deref(), entity)?;
        let pts = video
            .pts(&timeline)
            .with_context(|| format!("{entity}: some samples have no time on {timeline:?}"))?;
        // Wall-clock log times when the stream has a timestamp timeline besides its PTS.
        let log_times = video
            .timelines()
            .filter(|(name, kind)| *kind == TimeKind::Timestamp && name.as_str() != timeline)
            .map(|(name, _)| name.to_string())
            .min()
            .and_then(|name| video.pts(&name));
        let channel = writer.add_video_channel(entity.as_str(), codec)?;
        let mut last_log = 0u64;
        for sample in store.video_samples(entity, 0..video.len()) {
            let sample = sample?;
            let i = sample.index;
            match log_times {
                Some(times) => {
                    last_log = last_log.max(u64::try_from(times[i]).unwrap_or(0));
                    writer.write_sample(channel, last_log, pts[i], sample.as_slice())?;
                }
                None => writer.write_sample_at_pts(channel, pts[i], sample.as_slice())?,
            }
        }
        total += video.len();
    }
    writer.finish()?;
    eprintln!(
        "vidlog export: {total} samples of {} video entities -> {}",
        entities.len(),
        args.output.display()
    );
    Ok(())
}
