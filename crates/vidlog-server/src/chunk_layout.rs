//! Checks that a chunk message carries the arrays of the schema it names, before it is
//! decoded against that schema.
//!
//! A chunk's IPC record batch has no entity or column names of its own: they come from the
//! schema its `schema_id` names. A producer that names another schema it sent earlier
//! (another entity's, or the static codec's) would have its columns read as that schema's.
//! The decoder fails on most such mix-ups with an Arrow error; this check catches every
//! one whose array layout differs (the number of field nodes and buffers the schema
//! implies) and says which schema and entity were named. A chunk whose layout matches the
//! named schema exactly is well-formed data for that schema and entity: nothing in the
//! bytes can tell it apart from an honest one.

use arrow_schema::{DataType, Schema};
use vidlog_types::chunk::META_ENTITY_PATH;

/// `(field nodes, buffers)` an IPC record batch of `schema` carries; `None` for types
/// whose buffer count varies (views, unions), which are not checked.
pub(crate) fn expected_layout(schema: &Schema) -> Option<(usize, usize)> {
    let mut total = (0, 0);
    for field in schema.fields() {
        let (nodes, buffers) = layout(field.data_type())?;
        total.0 += nodes;
        total.1 += buffers;
    }
    Some(total)
}

fn layout(data_type: &DataType) -> Option<(usize, usize)> {
    let with_child = |own: usize, child: &DataType| layout(child).map(|(n, b)| (1 + n, own + b));
    match data_type {
        DataType::Null => Some((1, 0)),
        DataType::Binary | DataType::LargeBinary | DataType::Utf8 | DataType::LargeUtf8 => {
            Some((1, 3))
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::Map(f, _) => {
            with_child(2, f.data_type())
        }
        DataType::FixedSizeList(f, _) => with_child(1, f.data_type()),
        DataType::Struct(fields) => {
            let mut total = (1, 1);
            for f in fields {
                let (n, b) = layout(f.data_type())?;
                total.0 += n;
                total.1 += b;
            }
            Some(total)
        }
        DataType::Dictionary(_, _) => Some((1, 2)),
        t if t.is_primitive() || matches!(t, DataType::Boolean | DataType::FixedSizeBinary(_)) => {
            Some((1, 2))
        }
        _ => None,
    }
}

/// `(field nodes, buffers)` of the record batch in a chunk payload
/// (`chunk_id u64 | schema_id u32 | 0u32 | IPC message`); `None` when the payload is not
/// readable that far (the decoder reports why).
pub(crate) fn carried_layout(payload: &[u8]) -> Option<(usize, usize)> {
    let ipc = payload.get(16..)?;
    if ipc.get(0..4)? != [0xff; 4] {
        return None;
    }
    let meta_len = usize::try_from(i32::from_le_bytes(ipc.get(4..8)?.try_into().ok()?)).ok()?;
    let message = arrow_ipc::root_as_message(ipc.get(8..8usize.checked_add(meta_len)?)?).ok()?;
    let batch = message.header_as_record_batch()?;
    Some((
        batch.nodes().map_or(0, |n| n.len()),
        batch.buffers().map_or(0, |b| b.len()),
    ))
}

/// The entity a schema describes, for messages.
pub(crate) fn schema_entity(schema: &Schema) -> &str {
    schema
        .metadata()
        .get(META_ENTITY_PATH)
        .map_or("?", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vidlog_types::chunk::{build_chunk, chunk_schema};
    use vidlog_types::{
        AsComponents, ChunkId, EntityPath, PendingRow, RowId, TimeCell, TimePoint, VideoCodec,
        VideoStream,
    };

    fn payload_and_schema(what: VideoStream, time: TimePoint) -> (Vec<u8>, Arc<Schema>) {
        let entity = EntityPath::parse("cam").unwrap();
        let row = PendingRow {
            row_id: RowId(1),
            time,
            cells: what.as_components(),
        };
        let schema = Arc::new(chunk_schema(&entity, &row.batch_key()));
        let chunk = build_chunk(ChunkId(1), &entity, schema.clone(), &[row]).unwrap();
        let mut encoder = vidlog_store::codec::MessageEncoder::new();
        let messages = encoder.encode_chunk(&chunk).unwrap();
        let last = messages.last().unwrap();
        let mut payload = last.head.clone();
        for b in &last.body {
            payload.extend_from_slice(b);
        }
        (payload, schema)
    }

    #[test]
    fn layouts_of_sample_and_codec_chunks_differ_and_match_their_schemas() {
        let at = TimePoint::new().with("t", TimeCell::from_duration_nanos(5));
        let (sample, sample_schema) =
            payload_and_schema(VideoStream::from_sample(vec![0, 0, 0, 1, 0x65]), at);
        let (codec, codec_schema) =
            payload_and_schema(VideoStream::new(VideoCodec::H264), TimePoint::new());
        assert_eq!(carried_layout(&sample), expected_layout(&sample_schema));
        assert_eq!(carried_layout(&codec), expected_layout(&codec_schema));
        assert_ne!(carried_layout(&sample), expected_layout(&codec_schema));
        assert_eq!(schema_entity(&sample_schema), "cam");
        assert_eq!(carried_layout(&sample[..20]), None);
    }
}
