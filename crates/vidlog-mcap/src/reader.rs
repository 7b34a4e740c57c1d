//! Reads video channels out of an MCAP file held in memory (a byte slice or a mapped file).
//!
//! Recognized channels: `foxglove.CompressedVideo` (protobuf), and the ROS messages of
//! [`RosVideoMessage`]. A channel's codec comes from the `format` of its first message (`h264`,
//! `h265`, `av1`, `vp9`); channels with another schema, a format vidlog does not decode (`vp8`,
//! `jpeg`)
//! or no messages are listed as [`SkippedChannel`]s, and their messages are counted, not yielded.
//!
//! Messages come in log-time order when the file has a summary with chunk indexes (what every
//! finished, chunked MCAP has; ties keep file order, so a channel's decode order survives), and
//! in file order otherwise. Damage is reported as an error, never a panic: bounds are checked
//! against the file and chunk CRCs are verified.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use mcap::sans_io::indexed_reader::{
    IndexedReadEvent, IndexedReader, IndexedReaderOptions, ReadOrder,
};
use mcap::{McapError, Summary};
use vidlog_types::{EntityPath, EntityPathError, VideoCodec};

use crate::ChannelId;
use crate::error::McapVideoError;
use crate::ros::RosVideoMessage;
use crate::schema::{
    DescriptorSet, MESSAGE_ENCODING, SCHEMA_ENCODING, SCHEMA_NAME, check_compressed_video,
};
use crate::video::{CompressedFrame, decode_compressed_video};

/// Largest chunk (compressed or not) the reader accepts beyond the file's own size, so a damaged
/// index cannot make it allocate without bound.
const MAX_DECOMPRESSED_CHUNK: usize = 1 << 30;

/// How a channel's messages encode video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoMessageSchema {
    /// `foxglove.CompressedVideo`, protobuf.
    FoxgloveProtobuf,
    /// A ROS 1 or ROS 2 message.
    Ros(RosVideoMessage),
}

impl VideoMessageSchema {
    fn decode(self, message: &[u8]) -> Result<CompressedFrame<'_>, String> {
        match self {
            Self::FoxgloveProtobuf => decode_compressed_video(message).map_err(|e| e.to_string()),
            Self::Ros(ros) => ros.decode(message).map_err(|e| e.to_string()),
        }
    }
}

impl std::fmt::Display for VideoMessageSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FoxgloveProtobuf => write!(f, "{SCHEMA_NAME} (protobuf)"),
            Self::Ros(ros) => ros.fmt(f),
        }
    }
}

/// A channel of video messages vidlog can import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoChannel {
    /// MCAP channel id (what [`VideoMessage::channel`] refers to).
    pub id: ChannelId,
    /// Topic, e.g. `/camera/front`.
    pub topic: String,
    /// How its messages are encoded.
    pub schema: VideoMessageSchema,
    /// The codec, from the first message's format.
    pub codec: VideoCodec,
    /// The first message's `format` string as written (e.g. `h264`).
    pub format: String,
    /// The first message's frame id (often empty for video).
    pub frame_id: String,
    /// Number of messages, when the file's statistics say.
    pub message_count: Option<u64>,
}

impl VideoChannel {
    /// The entity path for the topic (`/camera/front` becomes `camera/front`).
    pub fn entity_path(&self) -> Result<EntityPath, EntityPathError> {
        EntityPath::parse(&self.topic)
    }
}

/// A channel the reader does not import, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedChannel {
    /// MCAP channel id.
    pub id: ChannelId,
    /// Topic.
    pub topic: String,
    /// Schema name (empty when the channel has none).
    pub schema_name: String,
    /// Message encoding.
    pub message_encoding: String,
    /// Why it is skipped.
    pub reason: String,
    /// Number of messages, when known.
    pub message_count: Option<u64>,
}

/// One video sample read from an MCAP file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoMessage {
    /// The channel (see [`McapVideoReader::video_channels`]).
    pub channel: ChannelId,
    /// Presentation time: the message's `timestamp` (`header.stamp` for ROS).
    pub pts_ns: i64,
    /// The MCAP log time.
    pub log_time_ns: u64,
    /// The access unit / temporal unit.
    pub data: Vec<u8>,
}

/// How messages are found in the file.
enum Layout {
    /// Through the summary's chunk indexes: log-time order.
    Indexed(Box<Summary>),
    /// By scanning the data section: file order.
    Linear,
}

/// Reads the video channels of an MCAP file.
pub struct McapVideoReader<'a> {
    bytes: &'a [u8],
    layout: Layout,
    channels: Vec<VideoChannel>,
    skipped: Vec<SkippedChannel>,
}

impl std::fmt::Debug for McapVideoReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McapVideoReader")
            .field("len", &self.bytes.len())
            .field("indexed", &matches!(self.layout, Layout::Indexed(_)))
            .field("channels", &self.channels)
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// A channel classified from its schema, before its first message is seen.
struct Candidate {
    id: u16,
    topic: String,
    schema_name: String,
    message_encoding: String,
    schema: Result<VideoMessageSchema, String>,
    message_count: Option<u64>,
    first: Option<Result<FirstMessage, String>>,
}

struct FirstMessage {
    format: String,
    frame_id: String,
}

impl<'a> McapVideoReader<'a> {
    /// Opens an MCAP file: reads its summary (or scans it, when it has none), classifies the
    /// channels and reads the first message of each video channel for its codec.
    pub fn open(bytes: &'a [u8]) -> Result<Self, McapVideoError> {
        if !bytes.starts_with(mcap::MAGIC) {
            return Err(McapVideoError::NotMcap {
                found: bytes.iter().take(mcap::MAGIC.len()).copied().collect(),
            });
        }
        if bytes.len() < 2 * mcap::MAGIC.len() || !bytes.ends_with(mcap::MAGIC) {
            return Err(McapVideoError::Truncated { len: bytes.len() });
        }
        check_summary_crc(bytes)?;
        let summary = Summary::read(bytes).map_err(|source| McapVideoError::Read {
            part: "footer and summary section".to_owned(),
            source,
        })?;
        let (layout, candidates) = match summary {
            Some(summary) if is_indexed(&summary) => {
                let mut candidates = summary_candidates(&summary);
                probe_indexed(bytes, &summary, &mut candidates)?;
                (Layout::Indexed(Box::new(summary)), candidates)
            }
            _ => (Layout::Linear, scan_linear(bytes)?),
        };
        let (channels, skipped) = settle(candidates);
        Ok(Self {
            bytes,
            layout,
            channels,
            skipped,
        })
    }

    /// The channels that will be imported, by channel id.
    pub fn video_channels(&self) -> &[VideoChannel] {
        &self.channels
    }

    /// The channels that will not be, with reasons.
    pub fn skipped_channels(&self) -> &[SkippedChannel] {
        &self.skipped
    }

    /// A video channel by id.
    pub fn channel(&self, id: ChannelId) -> Option<&VideoChannel> {
        self.channels
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .and_then(|i| self.channels.get(i))
    }

    /// Whether messages come in log-time order (the file has chunk indexes) rather than in
    /// file order.
    pub fn is_log_time_ordered(&self) -> bool {
        matches!(self.layout, Layout::Indexed(_))
    }

    /// All video messages, in log-time order (see [`McapVideoReader::is_log_time_ordered`]).
    /// Within a channel, messages with equal log times keep their file order.
    pub fn messages(&self) -> Result<VideoMessages<'_>, McapVideoError> {
        let source = match &self.layout {
            Layout::Indexed(summary) => {
                let topics: BTreeSet<String> =
                    self.channels.iter().map(|c| c.topic.clone()).collect();
                let reader = indexed_reader(self.bytes, summary, ReadOrder::LogTime, topics)?;
                Source::Indexed {
                    reader: Box::new(reader),
                    chunks: ChunkTable::new(summary),
                }
            }
            Layout::Linear => Source::Linear(Box::new(linear_stream(self.bytes)?)),
        };
        Ok(VideoMessages {
            reader: self,
            source,
            skipped_messages: 0,
            // Nothing to import: do not read the chunks (an empty topic filter reads them all).
            done: self.channels.is_empty(),
        })
    }
}

/// Iterator over [`VideoMessage`]s; stops after the first error.
pub struct VideoMessages<'r> {
    reader: &'r McapVideoReader<'r>,
    source: Source<'r>,
    skipped_messages: u64,
    done: bool,
}

enum Source<'r> {
    Indexed {
        reader: Box<IndexedReader>,
        chunks: ChunkTable,
    },
    Linear(Box<mcap::MessageStream<'r>>),
}

impl VideoMessages<'_> {
    /// Messages of skipped channels read and passed over so far. Files with chunk indexes do not
    /// read skipped channels at all (this stays 0 unless they share a topic with a video
    /// channel); their sizes are in [`SkippedChannel::message_count`].
    pub fn skipped_messages(&self) -> u64 {
        self.skipped_messages
    }

    fn next_message(&mut self) -> Option<Result<VideoMessage, McapVideoError>> {
        loop {
            let result = match &mut self.source {
                Source::Indexed { reader, chunks } => {
                    let event = match reader.next_event()? {
                        Ok(event) => event,
                        Err(source) => return Some(Err(read_error("chunk data", source))),
                    };
                    match event {
                        IndexedReadEvent::ReadChunkRequest { offset, length } => {
                            if let Err(e) =
                                load_chunk(reader, chunks, self.reader.bytes, offset, length)
                            {
                                return Some(Err(e));
                            }
                            continue;
                        }
                        // `data` borrows the reader: decode (and copy) before the next event.
                        IndexedReadEvent::Message { header, data } => {
                            decode_for(self.reader, header.channel_id, header.log_time, data)
                        }
                    }
                }
                Source::Linear(stream) => {
                    let message = match stream.next()? {
                        Ok(message) => message,
                        Err(source) => return Some(Err(read_error("data section", source))),
                    };
                    decode_for(
                        self.reader,
                        message.channel.id,
                        message.log_time,
                        &message.data,
                    )
                }
            };
            match result {
                Ok(Some(message)) => return Some(Ok(message)),
                Ok(None) => self.skipped_messages += 1,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Decodes one message of `channel_id`, `None` when the channel is not imported.
fn decode_for(
    reader: &McapVideoReader<'_>,
    channel_id: u16,
    log_time_ns: u64,
    data: &[u8],
) -> Result<Option<VideoMessage>, McapVideoError> {
    let Some(channel) = reader.channel(ChannelId(channel_id)) else {
        return Ok(None);
    };
    let frame = channel
        .schema
        .decode(data)
        .map_err(|problem| McapVideoError::BadMessage {
            topic: channel.topic.clone(),
            log_time_ns,
            schema: channel.schema.to_string(),
            problem,
        })?;
    if frame.format != channel.format {
        return Err(McapVideoError::FormatChanged {
            topic: channel.topic.clone(),
            log_time_ns,
            expected: channel.format.clone(),
            found: frame.format.to_owned(),
        });
    }
    Ok(Some(VideoMessage {
        channel: channel.id,
        pts_ns: frame.pts_ns,
        log_time_ns,
        data: frame.data.to_vec(),
    }))
}

impl Iterator for VideoMessages<'_> {
    type Item = Result<VideoMessage, McapVideoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_message();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

fn read_error(part: &str, source: McapError) -> McapVideoError {
    match source {
        McapError::UnsupportedCompression(compression) => McapVideoError::UnsupportedCompression {
            offset: 0,
            compression,
        },
        source => McapVideoError::Read {
            part: part.to_owned(),
            source,
        },
    }
}

/// Checks the summary section against the footer's CRC (the `mcap` crate's summary reader does
/// not), so a damaged index is reported as damage rather than followed.
fn check_summary_crc(bytes: &[u8]) -> Result<(), McapVideoError> {
    let footer = mcap::read::footer(bytes).map_err(|source| McapVideoError::Read {
        part: "footer".to_owned(),
        source,
    })?;
    if footer.summary_start == 0 || footer.summary_crc == 0 {
        return Ok(());
    }
    // The CRC covers the summary section and the footer up to (not including) the CRC itself.
    let end = bytes.len().saturating_sub(mcap::MAGIC.len() + 4) as u64;
    let covered = slice_of(
        bytes,
        footer.summary_start,
        end.saturating_sub(footer.summary_start),
    )?;
    let computed = crc32fast::hash(covered);
    if computed != footer.summary_crc {
        return Err(McapVideoError::SummaryCrc {
            stored: footer.summary_crc,
            computed,
        });
    }
    Ok(())
}

/// Whether the summary can drive an indexed read: it has chunk indexes, or says there are no
/// messages at all. (A file whose messages sit outside chunks has neither.)
fn is_indexed(summary: &Summary) -> bool {
    !summary.chunk_indexes.is_empty()
        || summary.stats.as_ref().is_some_and(|s| s.message_count == 0)
}

fn classify(channel: &mcap::Channel<'_>) -> Result<VideoMessageSchema, String> {
    let Some(schema) = &channel.schema else {
        return Err("the channel has no schema".to_owned());
    };
    if schema.name == SCHEMA_NAME
        && schema.encoding == SCHEMA_ENCODING
        && channel.message_encoding == MESSAGE_ENCODING
    {
        if !schema.data.is_empty() {
            let set = DescriptorSet::decode(&schema.data)
                .map_err(|e| format!("its {SCHEMA_NAME} descriptor set does not decode: {e}"))?;
            check_compressed_video(&set).map_err(|e| {
                format!("its {SCHEMA_NAME} descriptor does not match Foxglove's: {e}")
            })?;
        }
        return Ok(VideoMessageSchema::FoxgloveProtobuf);
    }
    if let Some(ros) =
        RosVideoMessage::from_channel(&schema.name, &schema.encoding, &channel.message_encoding)
    {
        return Ok(VideoMessageSchema::Ros(ros));
    }
    Err(format!(
        "schema {:?} ({} schema, {} messages) is not a video message vidlog reads",
        schema.name, schema.encoding, channel.message_encoding
    ))
}

fn candidate(channel: &mcap::Channel<'_>, message_count: Option<u64>) -> Candidate {
    Candidate {
        id: channel.id,
        topic: channel.topic.clone(),
        schema_name: channel
            .schema
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        message_encoding: channel.message_encoding.clone(),
        schema: classify(channel),
        message_count,
        first: None,
    }
}

fn summary_candidates(summary: &Summary) -> Vec<Candidate> {
    let counts = summary.stats.as_ref().map(|s| &s.channel_message_counts);
    let mut candidates: Vec<Candidate> = summary
        .channels
        .values()
        .map(|channel| {
            // Statistics list every channel; one missing from them has no messages.
            let count = counts.map(|c| c.get(&channel.id).copied().unwrap_or(0));
            candidate(channel, count)
        })
        .collect();
    candidates.sort_by_key(|c| c.id);
    candidates
}

fn first_message(schema: VideoMessageSchema, data: &[u8]) -> Result<FirstMessage, String> {
    let frame = schema.decode(data)?;
    Ok(FirstMessage {
        format: frame.format.to_owned(),
        frame_id: frame.frame_id.to_owned(),
    })
}

/// Reads, in file order, until every video candidate has its first message.
fn probe_indexed(
    bytes: &[u8],
    summary: &Summary,
    candidates: &mut [Candidate],
) -> Result<(), McapVideoError> {
    let mut pending: HashMap<u16, usize> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.schema.is_ok() && c.message_count != Some(0))
        .map(|(i, c)| (c.id, i))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let topics = pending
        .values()
        .filter_map(|&i| candidates.get(i))
        .map(|c| c.topic.clone())
        .collect();
    let mut reader = indexed_reader(bytes, summary, ReadOrder::File, topics)?;
    let chunks = ChunkTable::new(summary);
    drive(&mut reader, &chunks, bytes, |channel_id, data| {
        if let Some(i) = pending.remove(&channel_id)
            && let Some(candidate) = candidates.get_mut(i)
            && let Ok(schema) = candidate.schema
        {
            candidate.first = Some(first_message(schema, data));
        }
        if pending.is_empty() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
}

/// Runs an indexed reader to the end (or until `on_message` breaks), feeding it chunks.
fn drive(
    reader: &mut IndexedReader,
    chunks: &ChunkTable,
    bytes: &[u8],
    mut on_message: impl FnMut(u16, &[u8]) -> ControlFlow<()>,
) -> Result<(), McapVideoError> {
    while let Some(event) = reader.next_event() {
        match event.map_err(|e| read_error("chunk data", e))? {
            IndexedReadEvent::ReadChunkRequest { offset, length } => {
                load_chunk(reader, chunks, bytes, offset, length)?;
            }
            IndexedReadEvent::Message { header, data } => {
                if on_message(header.channel_id, data).is_break() {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn indexed_reader(
    bytes: &[u8],
    summary: &Summary,
    order: ReadOrder,
    topics: BTreeSet<String>,
) -> Result<IndexedReader, McapVideoError> {
    let options = IndexedReaderOptions::new()
        .with_order(order)
        .include_topics(topics)
        .with_record_length_limit(bytes.len().max(MAX_DECOMPRESSED_CHUNK));
    IndexedReader::new_with_options(summary, options)
        .map_err(|source| read_error("chunk indexes", source))
}

/// Where each chunk's data starts, to find its record (compression, CRC) from a read request.
struct ChunkTable {
    by_data_offset: HashMap<u64, ChunkEntry>,
}

struct ChunkEntry {
    chunk_start: u64,
    compression: String,
}

impl ChunkTable {
    fn new(summary: &Summary) -> Self {
        let by_data_offset = summary
            .chunk_indexes
            .iter()
            .filter_map(|index| {
                let data_offset = index.compressed_data_offset().ok()?;
                Some((
                    data_offset,
                    ChunkEntry {
                        chunk_start: index.chunk_start_offset,
                        compression: index.compression.clone(),
                    },
                ))
            })
            .collect();
        Self { by_data_offset }
    }
}

/// Byte offset of `uncompressed_crc` in a chunk record: opcode (1), record length (8),
/// message start and end time (8 + 8), uncompressed size (8).
const CHUNK_CRC_OFFSET: u64 = 1 + 8 + 8 + 8 + 8;

fn slice_of(bytes: &[u8], start: u64, len: u64) -> Result<&[u8], McapVideoError> {
    let out_of_bounds = || McapVideoError::IndexOutOfBounds {
        start,
        end: start.saturating_add(len),
        len: bytes.len(),
    };
    let start_index = usize::try_from(start).map_err(|_| out_of_bounds())?;
    let len_index = usize::try_from(len).map_err(|_| out_of_bounds())?;
    let end_index = start_index
        .checked_add(len_index)
        .ok_or_else(out_of_bounds)?;
    bytes.get(start_index..end_index).ok_or_else(out_of_bounds)
}

/// Serves a chunk read request from the file, checking bounds and (for uncompressed chunks) the
/// CRC.
fn load_chunk(
    reader: &mut IndexedReader,
    chunks: &ChunkTable,
    bytes: &[u8],
    offset: u64,
    length: usize,
) -> Result<(), McapVideoError> {
    let data = slice_of(bytes, offset, length as u64)?;
    let entry = chunks.by_data_offset.get(&offset);
    if let Some(entry) = entry {
        if !entry.compression.is_empty() && !cfg!(feature = "compressed-chunks") {
            return Err(McapVideoError::UnsupportedCompression {
                offset: entry.chunk_start,
                compression: entry.compression.clone(),
            });
        }
        if entry.compression.is_empty() {
            let stored_bytes =
                slice_of(bytes, entry.chunk_start.saturating_add(CHUNK_CRC_OFFSET), 4)?;
            let mut word = [0u8; 4];
            word.copy_from_slice(stored_bytes);
            let stored = u32::from_le_bytes(word);
            // A CRC of zero means the writer did not compute one.
            if stored != 0 {
                let computed = crc32fast::hash(data);
                if computed != stored {
                    return Err(McapVideoError::ChunkCrc {
                        offset: entry.chunk_start,
                        stored,
                        computed,
                    });
                }
            }
        }
    }
    reader
        .insert_chunk_record_data(offset, data)
        .map_err(|source| match (source, entry) {
            (McapError::UnsupportedCompression(compression), Some(entry)) => {
                McapVideoError::UnsupportedCompression {
                    offset: entry.chunk_start,
                    compression,
                }
            }
            (source, _) => read_error(&format!("chunk with data at byte {offset}"), source),
        })
}

fn linear_stream(bytes: &[u8]) -> Result<mcap::MessageStream<'_>, McapVideoError> {
    mcap::MessageStream::new_with_options(bytes, mcap::read::Options::ValidateChunkCrcs.into())
        .map_err(|source| read_error("header", source))
}

/// Scans the whole data section (files without chunk indexes): finds channels, counts messages
/// and keeps each channel's first message.
fn scan_linear(bytes: &[u8]) -> Result<Vec<Candidate>, McapVideoError> {
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut index_of: HashMap<u16, usize> = HashMap::new();
    for message in linear_stream(bytes)? {
        let message = message.map_err(|source| read_error("data section", source))?;
        let channel = &message.channel;
        let i = *index_of.entry(channel.id).or_insert_with(|| {
            candidates.push(candidate(channel, Some(0)));
            candidates.len() - 1
        });
        if let Some(candidate) = candidates.get_mut(i) {
            candidate.message_count = candidate.message_count.map(|n| n + 1);
            if candidate.first.is_none()
                && let Ok(schema) = candidate.schema
            {
                candidate.first = Some(first_message(schema, &message.data));
            }
        }
    }
    candidates.sort_by_key(|c| c.id);
    Ok(candidates)
}

/// The codec a `format` string names: `h264`, `h265`/`hevc`, `av1`, `vp9` (also inside longer ROS
/// format strings such as `h264; compressed`).
pub fn codec_for_format(format: &str) -> Option<VideoCodec> {
    let lower = format.trim().to_ascii_lowercase();
    VideoCodec::parse(&lower).or_else(|| {
        if lower.contains("h264") || lower.contains("avc") {
            Some(VideoCodec::H264)
        } else if lower.contains("h265") || lower.contains("hevc") {
            Some(VideoCodec::H265)
        } else if lower.contains("av1") {
            Some(VideoCodec::Av1)
        } else {
            None
        }
    })
}

/// Splits candidates into imported and skipped channels.
fn settle(candidates: Vec<Candidate>) -> (Vec<VideoChannel>, Vec<SkippedChannel>) {
    let mut channels = Vec::new();
    let mut skipped = Vec::new();
    for c in candidates {
        let outcome = match (&c.schema, c.first) {
            (Err(reason), _) => Err(reason.clone()),
            (Ok(_), None) => Err("the channel has no messages".to_owned()),
            (Ok(_), Some(Err(problem))) => {
                Err(format!("its first message does not decode: {problem}"))
            }
            (Ok(schema), Some(Ok(first))) => match codec_for_format(&first.format) {
                Some(codec) => Ok((*schema, codec, first)),
                None => Err(format!(
                    "format {:?} is not a codec vidlog imports (h264, h265, av1, vp9)",
                    first.format
                )),
            },
        };
        match outcome {
            Ok((schema, codec, first)) => channels.push(VideoChannel {
                id: ChannelId(c.id),
                topic: c.topic,
                schema,
                codec,
                format: first.format,
                frame_id: first.frame_id,
                message_count: c.message_count,
            }),
            Err(reason) => skipped.push(SkippedChannel {
                id: ChannelId(c.id),
                topic: c.topic,
                schema_name: c.schema_name,
                message_encoding: c.message_encoding,
                reason,
                message_count: c.message_count,
            }),
        }
    }
    (channels, skipped)
}
