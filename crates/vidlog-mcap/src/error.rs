//! Errors of MCAP export and import: what went wrong, where, and what to do about it.

use vidlog_types::{EntityPathError, VideoCodec};

use crate::ChannelId;

/// An MCAP export or import failure.
#[derive(Debug, thiserror::Error)]
pub enum McapVideoError {
    /// The `mcap` crate failed while writing (usually an I/O error of the output).
    #[error("writing MCAP: cannot {action}: {source}")]
    Write {
        /// What was being written, e.g. `add channel /camera/front`.
        action: String,
        /// The underlying error.
        #[source]
        source: mcap::McapError,
    },

    /// An entity path that cannot name a channel.
    #[error("cannot export {entity:?} to MCAP: {source}")]
    EntityPath {
        /// The path as given.
        entity: String,
        /// Why it is not an entity path.
        #[source]
        source: EntityPathError,
    },

    /// The same entity added twice with different codecs.
    #[error(
        "entity {entity} already has an MCAP video channel with codec {existing}, cannot add it \
         again as {requested}; one entity holds one video stream"
    )]
    CodecConflict {
        /// The entity.
        entity: String,
        /// Its codec so far.
        existing: VideoCodec,
        /// The codec asked for now.
        requested: VideoCodec,
    },

    /// A channel id that this writer did not hand out.
    #[error(
        "MCAP channel {0} was not added by this writer; pass the id add_video_channel returned"
    )]
    UnknownChannel(ChannelId),

    /// A log time earlier than the previous sample's on the same channel.
    #[error(
        "sample {sample} of {topic}: log time {given} ns is before the previous sample's \
         {previous} ns. Samples are written in decode order and readers order MCAP messages by \
         log time, so log times must not go backwards within a channel: pass a decode or \
         arrival time, or use write_sample_at_pts"
    )]
    LogTimeBackwards {
        /// The channel's topic.
        topic: String,
        /// Index of the sample in the channel (0-based).
        sample: u64,
        /// The previous sample's log time.
        previous: u64,
        /// The rejected log time.
        given: u64,
    },

    /// The input is not an MCAP file.
    #[error(
        "not an MCAP file: it does not start with the MCAP magic bytes (89 4d 43 41 50 30 0d 0a); \
         found {found:02x?}"
    )]
    NotMcap {
        /// The first bytes of the input.
        found: Vec<u8>,
    },

    /// The input ends before the MCAP footer: a writer that did not finish, or a cut copy.
    #[error(
        "the MCAP file ({len} bytes) is truncated: it does not end with the footer and magic \
         bytes, so its writer did not finish or the copy is incomplete. `mcap recover` (the \
         Foxglove MCAP CLI) can rebuild a readable file from what is there"
    )]
    Truncated {
        /// File size.
        len: usize,
    },

    /// The `mcap` crate rejected part of the file.
    #[error(
        "the MCAP file is damaged: reading its {part} failed: {source}. If it was cut short or \
         its writer crashed, `mcap recover` (the Foxglove MCAP CLI) may rebuild it"
    )]
    Read {
        /// Which part of the file, e.g. `summary section` or `chunk at byte 1234`.
        part: String,
        /// The underlying error.
        #[source]
        source: mcap::McapError,
    },

    /// A chunk whose compression this build cannot undo.
    #[error(
        "the MCAP chunk at byte {offset} is compressed with {compression:?}, which this build does \
         not read; rebuild with the `vidlog-mcap/compressed-chunks` feature (zstd and lz4), or \
         rewrite the file uncompressed with `mcap compress --compression none`"
    )]
    UnsupportedCompression {
        /// File offset of the chunk.
        offset: u64,
        /// The chunk's compression string.
        compression: String,
    },

    /// An index pointing outside the file.
    #[error(
        "the MCAP summary points at bytes {start}..{end}, past the end of the {len}-byte file; \
         the file is truncated or its index is damaged"
    )]
    IndexOutOfBounds {
        /// Start of the indexed range.
        start: u64,
        /// End of the indexed range.
        end: u64,
        /// File size.
        len: usize,
    },

    /// A chunk whose data does not match its CRC.
    #[error(
        "the MCAP chunk at byte {offset} fails its CRC check (stored {stored:08x}, computed \
         {computed:08x}): the file is damaged"
    )]
    ChunkCrc {
        /// File offset of the chunk record.
        offset: u64,
        /// CRC stored in the chunk.
        stored: u32,
        /// CRC of the data.
        computed: u32,
    },

    /// A summary section whose bytes do not match the footer's CRC.
    #[error(
        "the MCAP summary section fails its CRC check (stored {stored:08x}, computed \
         {computed:08x}): the index is damaged; `mcap recover` (the Foxglove MCAP CLI) can \
         rebuild it from the data"
    )]
    SummaryCrc {
        /// CRC stored in the footer.
        stored: u32,
        /// CRC of the summary bytes.
        computed: u32,
    },

    /// A message that does not decode as its schema says.
    #[error("message on {topic} at log time {log_time_ns} ns is not a valid {schema}: {problem}")]
    BadMessage {
        /// The channel's topic.
        topic: String,
        /// The message's log time.
        log_time_ns: u64,
        /// The schema it claims, e.g. `foxglove.CompressedVideo (protobuf)`.
        schema: String,
        /// What is wrong.
        problem: String,
    },

    /// A channel whose messages change video format.
    #[error(
        "message on {topic} at log time {log_time_ns} ns has format {found:?}, but the channel \
         started as {expected:?}; vidlog keeps one codec per entity, so split the stream into \
         separate topics"
    )]
    FormatChanged {
        /// The channel's topic.
        topic: String,
        /// The message's log time.
        log_time_ns: u64,
        /// The channel's first format.
        expected: String,
        /// This message's format.
        found: String,
    },
}
