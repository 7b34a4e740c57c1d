//! Writes video samples to an MCAP file as `foxglove.CompressedVideo` protobuf messages, one
//! channel per entity (topic `/` + entity path).
//!
//! Owns the channel bookkeeping (codec, last log time, sample count per channel) and the
//! protobuf encoding of each sample. The `mcap` crate does the file format: chunks (uncompressed:
//! video is already compressed), message indexes and the summary section. Memory stays bounded:
//! chunks are streamed to the output, and one sample-sized buffer is reused.

use std::collections::{BTreeMap, HashMap};
use std::io::{Seek, Write};

use vidlog_types::{EntityPath, VideoCodec};

use crate::ChannelId;
use crate::error::McapVideoError;
use crate::proto::ProtoWriter;
use crate::schema::{MESSAGE_ENCODING, SCHEMA_ENCODING, SCHEMA_NAME, compressed_video_schema_data};
use crate::video::encode_compressed_video;

/// Target size of an MCAP chunk before it is closed and indexed: small enough that a reader
/// seeking in time loads little, large enough that the index stays small.
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;

/// Writes one MCAP file of video channels. Call [`McapVideoWriter::finish`] at the end; a writer
/// dropped without it still tries to write the summary, but cannot report a failure.
pub struct McapVideoWriter<W: Write + Seek> {
    mcap: mcap::Writer<W>,
    schema_id: Option<u16>,
    channels: BTreeMap<u16, ChannelState>,
    by_entity: HashMap<EntityPath, ChannelId>,
    message: ProtoWriter,
}

struct ChannelState {
    topic: String,
    codec: VideoCodec,
    last_log_time: Option<u64>,
    samples: u64,
}

impl<W: Write + Seek> McapVideoWriter<W> {
    /// Starts an MCAP file on `output` (writes the magic and header).
    pub fn new(output: W) -> Result<Self, McapVideoError> {
        Self::with_chunk_size(output, DEFAULT_CHUNK_SIZE)
    }

    /// Like [`McapVideoWriter::new`] with a chunk size target in bytes.
    pub fn with_chunk_size(output: W, chunk_size: u64) -> Result<Self, McapVideoError> {
        let options = mcap::WriteOptions::new()
            .compression(None)
            .chunk_size(Some(chunk_size))
            .library(concat!("vidlog-mcap/", env!("CARGO_PKG_VERSION")));
        let mcap = mcap::Writer::with_options(output, options).map_err(|source| {
            McapVideoError::Write {
                action: "write the MCAP header".to_owned(),
                source,
            }
        })?;
        Ok(Self {
            mcap,
            schema_id: None,
            channels: BTreeMap::new(),
            by_entity: HashMap::new(),
            message: ProtoWriter::new(),
        })
    }

    /// Adds a `foxglove.CompressedVideo` channel for `entity` (topic `/camera/front` for
    /// `camera/front`). Adding the same entity again with the same codec returns the same id.
    pub fn add_video_channel(
        &mut self,
        entity: &str,
        codec: VideoCodec,
    ) -> Result<ChannelId, McapVideoError> {
        let path = EntityPath::parse(entity).map_err(|source| McapVideoError::EntityPath {
            entity: entity.to_owned(),
            source,
        })?;
        if let Some(&id) = self.by_entity.get(&path) {
            let existing = self.channels.get(&id.0).map(|c| c.codec);
            return match existing {
                Some(existing) if existing != codec => Err(McapVideoError::CodecConflict {
                    entity: path.to_string(),
                    existing,
                    requested: codec,
                }),
                _ => Ok(id),
            };
        }
        let schema_id = match self.schema_id {
            Some(id) => id,
            None => {
                let id = self
                    .mcap
                    .add_schema(
                        SCHEMA_NAME,
                        SCHEMA_ENCODING,
                        &compressed_video_schema_data(),
                    )
                    .map_err(|source| McapVideoError::Write {
                        action: format!("add the {SCHEMA_NAME} schema"),
                        source,
                    })?;
                self.schema_id = Some(id);
                id
            }
        };
        let topic = format!("/{path}");
        let id = self
            .mcap
            .add_channel(schema_id, &topic, MESSAGE_ENCODING, &BTreeMap::new())
            .map_err(|source| McapVideoError::Write {
                action: format!("add channel {topic}"),
                source,
            })?;
        self.channels.insert(
            id,
            ChannelState {
                topic,
                codec,
                last_log_time: None,
                samples: 0,
            },
        );
        self.by_entity.insert(path, ChannelId(id));
        Ok(ChannelId(id))
    }

    /// Writes one sample (an access unit or temporal unit) in decode order.
    ///
    /// `pts_ns` becomes the message's `timestamp`; `log_time_ns` its MCAP log and publish time.
    /// Log times must not decrease within a channel (readers order by log time, and decode
    /// order must survive that); with B-frames the PTS does decrease, so pass a decode or
    /// arrival time, or use [`McapVideoWriter::write_sample_at_pts`].
    pub fn write_sample(
        &mut self,
        channel: ChannelId,
        log_time_ns: u64,
        pts_ns: i64,
        data: &[u8],
    ) -> Result<(), McapVideoError> {
        let Some(state) = self.channels.get_mut(&channel.0) else {
            return Err(McapVideoError::UnknownChannel(channel));
        };
        if let Some(previous) = state.last_log_time
            && log_time_ns < previous
        {
            return Err(McapVideoError::LogTimeBackwards {
                topic: state.topic.clone(),
                sample: state.samples,
                previous,
                given: log_time_ns,
            });
        }
        encode_compressed_video(&mut self.message, pts_ns, "", data, state.codec.name());
        let header = mcap::records::MessageHeader {
            channel_id: channel.0,
            // MCAP sequence numbers are 32-bit and may wrap.
            sequence: state.samples as u32,
            log_time: log_time_ns,
            publish_time: log_time_ns,
        };
        self.mcap
            .write_to_known_channel(&header, self.message.as_bytes())
            .map_err(|source| McapVideoError::Write {
                action: format!("write sample {} of {}", state.samples, state.topic),
                source,
            })?;
        state.last_log_time = Some(log_time_ns);
        state.samples += 1;
        Ok(())
    }

    /// Writes one sample with the log time taken from the PTS, for callers that have nothing
    /// better. Where the PTS goes backwards (B-frames) or below zero, the log time stays at the
    /// previous sample's (or 0), so readers ordering by log time keep decode order.
    pub fn write_sample_at_pts(
        &mut self,
        channel: ChannelId,
        pts_ns: i64,
        data: &[u8],
    ) -> Result<(), McapVideoError> {
        let Some(state) = self.channels.get(&channel.0) else {
            return Err(McapVideoError::UnknownChannel(channel));
        };
        let from_pts = u64::try_from(pts_ns).unwrap_or(0);
        let log_time = state
            .last_log_time
            .map_or(from_pts, |last| last.max(from_pts));
        self.write_sample(channel, log_time, pts_ns, data)
    }

    /// Number of samples written to `channel` so far.
    pub fn sample_count(&self, channel: ChannelId) -> Option<u64> {
        self.channels.get(&channel.0).map(|c| c.samples)
    }

    /// Closes the last chunk, writes the summary section (schemas, channels, statistics, chunk
    /// indexes) and the footer, and returns the output.
    pub fn finish(mut self) -> Result<W, McapVideoError> {
        self.mcap.finish().map_err(|source| McapVideoError::Write {
            action: "write the summary section and footer".to_owned(),
            source,
        })?;
        Ok(self.mcap.into_inner())
    }
}
