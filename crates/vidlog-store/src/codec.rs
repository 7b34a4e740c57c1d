//! The one message encoding that files and sockets share.
//!
//! Payload layouts (after the [`crate::frame`] header):
//! - `RecordingInfo`: UTF-8 JSON ([`RecordingInfo`]).
//! - `Schema`: `schema_id u32 LE | 0u32 | Arrow IPC schema message` (stream format).
//! - `Chunk`: `chunk_id u64 LE | schema_id u32 LE | 0u32 | Arrow IPC record-batch message`.
//!
//! A schema is sent once per stream, before the first chunk that uses it. Chunk bodies
//! are the Arrow buffers themselves (no compression: video is already compressed), handed
//! to the writer as slices so sample bytes are not copied on the way to the kernel.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions, StreamEncoder};
use arrow_schema::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use vidlog_types::{Chunk, ChunkId, EntityPath};

use crate::chunk_layout;
use crate::frame::{MessageKind, OutFrame};

/// Who made a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingInfo {
    pub application_id: String,
    pub recording_id: String,
    /// Wall clock when the recording started, nanoseconds since the Unix epoch.
    pub started_unix_nanos: i64,
    /// The vidlog version that wrote it.
    pub writer: String,
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{what} payload is {len} bytes, too short")]
    Short { what: &'static str, len: usize },
    #[error("recording info is not valid JSON: {0}")]
    Info(serde_json::Error),
    #[error("schema {schema_id}: {reason}")]
    Schema { schema_id: u32, reason: String },
    #[error("chunk {chunk_id:#x} refers to schema {schema_id}, which was not sent before it")]
    UnknownSchema { chunk_id: u64, schema_id: u32 },
    #[error("chunk {chunk_id:#x}: {reason}")]
    Chunk { chunk_id: u64, reason: String },
    #[error(
        "chunk {chunk_id:#x} names schema {schema_id} (entity {entity}, \
         {expected_nodes} arrays in {expected_buffers} buffers) but carries {carried_nodes} \
         arrays in {carried_buffers} buffers: a chunk must name the schema it was encoded with"
    )]
    SchemaMismatch {
        chunk_id: u64,
        schema_id: u32,
        entity: String,
        expected_nodes: usize,
        expected_buffers: usize,
        carried_nodes: usize,
        carried_buffers: usize,
    },
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
}

/// An encoded message ready for [`OutFrame`]: a small head plus Arrow buffers.
pub struct EncodedMessage {
    pub kind: MessageKind,
    pub head: Vec<u8>,
    pub body: Vec<Buffer>,
}

impl EncodedMessage {
    pub fn frame(&self) -> OutFrame<'_> {
        let mut parts = Vec::with_capacity(1 + self.body.len());
        parts.push(self.head.as_slice());
        parts.extend(self.body.iter().map(|b| b.as_slice()));
        OutFrame {
            kind: self.kind,
            parts,
        }
    }
    pub fn payload_len(&self) -> usize {
        self.head.len() + self.body.iter().map(|b| b.len()).sum::<usize>()
    }
}

pub fn encode_recording_info(info: &RecordingInfo) -> EncodedMessage {
    EncodedMessage {
        kind: MessageKind::RecordingInfo,
        head: serde_json::to_vec(info).unwrap_or_default(),
        body: Vec::new(),
    }
}

fn ipc_options() -> IpcWriteOptions {
    // 8-byte alignment (not arrow-rs' default 64) keeps per-chunk padding small.
    IpcWriteOptions::try_new(8, false, arrow_ipc::MetadataVersion::V5).unwrap_or_default()
}

struct SchemaSlot {
    schema: SchemaRef,
    id: u32,
    encoder: StreamEncoder,
    /// Length of the schema message at the front of the encoder's first output.
    schema_len: usize,
    sent: bool,
}

/// Turns chunks into messages, assigning schema ids. One per output stream.
#[derive(Default)]
pub struct MessageEncoder {
    slots: HashMap<EntityPath, Vec<SchemaSlot>>,
    next_schema_id: u32,
}

impl MessageEncoder {
    pub fn new() -> Self {
        MessageEncoder::default()
    }

    /// Encodes `chunk`; the schema message comes first when the schema is new.
    pub fn encode_chunk(&mut self, chunk: &Chunk) -> Result<Vec<EncodedMessage>, String> {
        let schema = chunk.schema();
        let slots = self.slots.entry(chunk.entity().clone()).or_default();
        let index = match slots
            .iter()
            .position(|s| Arc::ptr_eq(&s.schema, &schema) || *s.schema == *schema)
        {
            Some(i) => i,
            None => {
                let id = self.next_schema_id;
                self.next_schema_id += 1;
                slots.push(SchemaSlot {
                    encoder: StreamEncoder::try_new_with_options(&schema, ipc_options())
                        .map_err(|e| e.to_string())?,
                    schema_len: schema_message_len(&schema),
                    schema: schema.clone(),
                    id,
                    sent: false,
                });
                slots.len() - 1
            }
        };
        let slot = &mut slots[index];
        let buffers = slot
            .encoder
            .encode(chunk.batch())
            .map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(2);
        let batch_buffers = if slot.sent {
            buffers
        } else {
            slot.sent = true;
            let (schema_part, rest) = split_buffers(buffers, slot.schema_len);
            let mut head = Vec::with_capacity(8);
            head.extend_from_slice(&slot.id.to_le_bytes());
            head.extend_from_slice(&0u32.to_le_bytes());
            out.push(EncodedMessage {
                kind: MessageKind::Schema,
                head,
                body: schema_part,
            });
            rest
        };
        let mut head = Vec::with_capacity(16);
        head.extend_from_slice(&chunk.id().0.to_le_bytes());
        head.extend_from_slice(&slot.id.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        out.push(EncodedMessage {
            kind: MessageKind::Chunk,
            head,
            body: batch_buffers,
        });
        Ok(out)
    }
}

/// Length of `schema`'s IPC stream message (continuation, length, padded flatbuffer).
fn schema_message_len(schema: &Schema) -> usize {
    let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        schema,
        &mut DictionaryTracker::new(false),
        &ipc_options(),
    );
    (encoded.ipc_message.len() + 8).div_ceil(8) * 8
}

/// Splits buffers at byte `at` without copying.
fn split_buffers(buffers: Vec<Buffer>, at: usize) -> (Vec<Buffer>, Vec<Buffer>) {
    let mut front = Vec::new();
    let mut back = Vec::new();
    let mut seen = 0;
    for b in buffers {
        let len = b.len();
        if seen >= at {
            back.push(b);
        } else if seen + len <= at {
            front.push(b);
        } else {
            let cut = at - seen;
            front.push(b.slice_with_length(0, cut));
            back.push(b.slice(cut));
        }
        seen += len;
    }
    (front, back)
}

/// A decoded message.
pub enum Decoded {
    RecordingInfo(RecordingInfo),
    Schema { schema_id: u32 },
    Chunk(Chunk),
    Footer(Buffer),
}

/// Decodes messages of one stream, remembering its schemas.
#[derive(Default)]
pub struct MessageDecoder {
    schemas: HashMap<u32, SchemaRef>,
}

impl MessageDecoder {
    pub fn new() -> Self {
        MessageDecoder::default()
    }

    pub fn schema(&self, id: u32) -> Option<&SchemaRef> {
        self.schemas.get(&id)
    }

    /// Decodes a checksummed payload of `kind`.
    pub fn decode(&mut self, kind: u8, payload: Buffer) -> Result<Decoded, DecodeError> {
        match MessageKind::from_u8(kind) {
            Some(MessageKind::RecordingInfo) => serde_json::from_slice(&payload)
                .map(Decoded::RecordingInfo)
                .map_err(DecodeError::Info),
            Some(MessageKind::Schema) => {
                let (schema_id, schema) = decode_schema(&payload)?;
                self.schemas.insert(schema_id, Arc::new(schema));
                Ok(Decoded::Schema { schema_id })
            }
            Some(MessageKind::Chunk) => {
                let (chunk_id, schema_id) = chunk_head(&payload)?;
                let schema =
                    self.schemas
                        .get(&schema_id)
                        .cloned()
                        .ok_or(DecodeError::UnknownSchema {
                            chunk_id,
                            schema_id,
                        })?;
                decode_chunk(&payload, schema).map(Decoded::Chunk)
            }
            Some(MessageKind::Footer) => Ok(Decoded::Footer(payload)),
            None => Err(DecodeError::UnknownKind(kind)),
        }
    }
}

/// `(schema_id, schema)` of a schema payload.
pub fn decode_schema(payload: &[u8]) -> Result<(u32, Schema), DecodeError> {
    if payload.len() < 16 {
        return Err(DecodeError::Short {
            what: "schema",
            len: payload.len(),
        });
    }
    let schema_id = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
    let schema = arrow_ipc::convert::try_schema_from_ipc_buffer(&payload[8..]).map_err(|e| {
        DecodeError::Schema {
            schema_id,
            reason: e.to_string(),
        }
    })?;
    Ok((schema_id, schema))
}

/// `(chunk_id, schema_id)` of a chunk payload.
pub fn chunk_head(payload: &[u8]) -> Result<(u64, u32), DecodeError> {
    if payload.len() < 24 {
        return Err(DecodeError::Short {
            what: "chunk",
            len: payload.len(),
        });
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&payload[0..8]);
    let schema_id = u32::from_le_bytes([payload[8], payload[9], payload[10], payload[11]]);
    Ok((u64::from_le_bytes(id), schema_id))
}

/// Decodes a chunk payload against its schema. Body buffers are sliced, not copied.
pub fn decode_chunk(payload: &Buffer, schema: SchemaRef) -> Result<Chunk, DecodeError> {
    let (chunk_id, schema_id) = chunk_head(payload)?;
    let fail = |reason: String| DecodeError::Chunk { chunk_id, reason };
    let ipc = &payload[16..];
    if ipc[0..4] != [0xff; 4] {
        return Err(fail("Arrow IPC continuation marker missing".into()));
    }
    let meta_len = i32::from_le_bytes([ipc[4], ipc[5], ipc[6], ipc[7]]);
    let meta_len = usize::try_from(meta_len)
        .ok()
        .filter(|l| 8 + l <= ipc.len())
        .ok_or_else(|| fail(format!("IPC metadata length {meta_len} out of bounds")))?;
    let message = arrow_ipc::root_as_message(&ipc[8..8 + meta_len])
        .map_err(|e| fail(format!("IPC metadata: {e}")))?;
    let batch = message
        .header_as_record_batch()
        .ok_or_else(|| fail("IPC message is not a record batch".into()))?;
    // A chunk naming another schema of the same stream would be read as that schema's columns.
    let carried = (
        batch.nodes().map_or(0, |n| n.len()),
        batch.buffers().map_or(0, |b| b.len()),
    );
    if let Some(expected) = chunk_layout::expected_layout(&schema)
        && expected != carried
    {
        return Err(DecodeError::SchemaMismatch {
            chunk_id,
            schema_id,
            entity: chunk_layout::schema_entity(&schema).to_owned(),
            expected_nodes: expected.0,
            expected_buffers: expected.1,
            carried_nodes: carried.0,
            carried_buffers: carried.1,
        });
    }
    let body_start = 16 + 8 + meta_len;
    let body_len = usize::try_from(message.bodyLength())
        .ok()
        .filter(|l| body_start + l <= payload.len())
        .ok_or_else(|| {
            fail(format!(
                "IPC body length {} out of bounds",
                message.bodyLength()
            ))
        })?;
    // arrow-ipc slices these without checking (it panics on a bad offset): check them here.
    for (i, b) in batch.buffers().into_iter().flatten().enumerate() {
        let fits = u64::try_from(b.offset())
            .ok()
            .zip(u64::try_from(b.length()).ok())
            .and_then(|(offset, len)| offset.checked_add(len))
            .is_some_and(|end| end <= body_len as u64);
        if !fits {
            return Err(fail(format!(
                "IPC buffer {i} (offset {}, length {}) lies outside the {body_len}-byte body",
                b.offset(),
                b.length()
            )));
        }
    }
    let body = payload.slice_with_length(body_start, body_len);
    // arrow-ipc still panics on some malformed buffers (e.g. an offsets buffer whose length
    // is not a multiple of 4, in validation): payloads come from sockets, so contain it.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arrow_ipc::reader::read_record_batch(
            &body,
            batch,
            schema,
            &HashMap::new(),
            None,
            &message.version(),
        )
    }));
    let batch: RecordBatch = match read {
        Ok(batch) => batch.map_err(|e| fail(e.to_string()))?,
        Err(_) => return Err(fail("malformed Arrow IPC buffers".into())),
    };
    Chunk::from_record_batch(ChunkId(chunk_id), batch).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidlog_types::chunk::{build_chunk, chunk_schema};
    use vidlog_types::{AsComponents, PendingRow, RowId, TimeCell, TimePoint, VideoStream};

    pub(crate) fn sample_chunk(id: u64, n: usize) -> Chunk {
        let entity = EntityPath::parse("camera/front").unwrap();
        let rows: Vec<PendingRow> = (0..n)
            .map(|i| PendingRow {
                row_id: RowId(100 + i as u64),
                time: TimePoint::new().with("time", TimeCell::from_duration_nanos(i as i64 * 1000)),
                cells: VideoStream::from_sample(vec![i as u8; 10 + i]).as_components(),
            })
            .collect();
        let schema = Arc::new(chunk_schema(&entity, &rows[0].batch_key()));
        build_chunk(ChunkId(id), &entity, schema, &rows).unwrap()
    }

    fn payload(m: &EncodedMessage) -> Buffer {
        let mut v = m.head.clone();
        for b in &m.body {
            v.extend_from_slice(b);
        }
        Buffer::from_vec(v)
    }

    #[test]
    fn a_chunk_decoded_against_another_layout_names_both() {
        let sample = sample_chunk(7, 2);
        let mut enc = MessageEncoder::new();
        let messages = enc.encode_chunk(&sample).unwrap();
        let chunk_payload = payload(messages.last().unwrap());
        let codec_row = PendingRow {
            row_id: RowId(1),
            time: TimePoint::new(),
            cells: VideoStream::new(vidlog_types::VideoCodec::H264).as_components(),
        };
        let entity = EntityPath::parse("camera/front").unwrap();
        let codec_schema = Arc::new(chunk_schema(&entity, &codec_row.batch_key()));
        let error = decode_chunk(&chunk_payload, codec_schema).unwrap_err();
        assert!(
            matches!(error, DecodeError::SchemaMismatch { chunk_id: 7, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("entity camera/front"), "{error}");
        assert!(decode_chunk(&chunk_payload, sample.schema()).is_ok());
    }

    #[test]
    fn chunk_round_trip_sends_schema_once() {
        let mut enc = MessageEncoder::new();
        let mut dec = MessageDecoder::new();
        for (i, n) in [(1u64, 3usize), (2, 1), (3, 5)] {
            let chunk = sample_chunk(i, n);
            let msgs = enc.encode_chunk(&chunk).unwrap();
            assert_eq!(msgs.len(), if i == 1 { 2 } else { 1 });
            let mut got = None;
            for m in &msgs {
                if let Decoded::Chunk(c) = dec.decode(m.kind as u8, payload(m)).unwrap() {
                    got = Some(c);
                }
            }
            let got = got.unwrap();
            assert_eq!(got.id(), chunk.id());
            assert_eq!(got.batch(), chunk.batch());
        }
    }

    #[test]
    fn chunk_without_schema_is_refused() {
        let mut enc = MessageEncoder::new();
        let msgs = enc.encode_chunk(&sample_chunk(1, 2)).unwrap();
        let mut dec = MessageDecoder::new();
        let err = dec
            .decode(MessageKind::Chunk as u8, payload(&msgs[1]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("schema 0"), "{err}");
    }
}
