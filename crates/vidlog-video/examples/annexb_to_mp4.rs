//! Annex B H.264 file in, MP4 out, without re-encoding.
//!
//! ```text
//! cargo run -p vidlog-video --example annexb_to_mp4 -- in.h264 out.mp4 [--fps 30] [--fragmented]
//! ```
//!
//! Splits the stream into access units, gives each its presentation time from the picture
//! order count (`presentation_index / fps`, rounded to ns: what a logger would have logged), and
//! streams the samples through [`Mp4Muxer`]. B-frames come out with composition offsets and an
//! edit list.

use std::io::BufWriter;

use vidlog_types::VideoCodec;
use vidlog_video::bitstream::h264::{presentation_order, split_access_units};
use vidlog_video::mp4::{Mp4Muxer, Mp4Options, SampleEntry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        eprintln!("usage: annexb_to_mp4 IN.h264 OUT.mp4 [--fps N] [--fragmented]");
        std::process::exit(2);
    };
    let mut fps = 30.0f64;
    let mut fragmented = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--fps" => fps = args.next().ok_or("--fps needs a value")?.parse()?,
            "--fragmented" => fragmented = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }

    let stream = std::fs::read(&input)?;
    let units = split_access_units(&stream)?;
    let first = units.first().ok_or("no access units in the input")?;
    let order = presentation_order(
        &units
            .iter()
            .map(|u| (u.poc, u.poc_reset))
            .collect::<Vec<_>>(),
    );
    let pts: Vec<i64> = order
        .iter()
        .map(|&i| (i as f64 * 1e9 / fps).round() as i64)
        .collect();

    let entry = SampleEntry::from_keyframe(VideoCodec::H264, &first.data)?;
    println!("{} access units, {}", units.len(), entry.codec_string());
    let file = BufWriter::new(std::fs::File::create(&output)?);
    let options = Mp4Options {
        fragmented,
        ..Mp4Options::default()
    };
    let mut muxer = Mp4Muxer::new(file, entry, &pts, options)?;
    for unit in &units {
        muxer.push(&unit.data, unit.is_keyframe)?;
    }
    let summary = muxer.finish()?;
    println!(
        "wrote {output}: {} samples, timescale {}, {:.3} s, {} bytes, {} fragments",
        summary.samples,
        summary.timescale,
        summary.duration_ns as f64 / 1e9,
        summary.bytes,
        summary.fragments
    );
    Ok(())
}
