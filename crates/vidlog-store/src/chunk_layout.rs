//! The array layout a chunk's schema implies, which [`decode_chunk`](crate::codec::decode_chunk)
//! checks against the record batch a chunk message carries before decoding it.
//!
//! A chunk's IPC record batch has no entity or column names of its own: they come from the
//! schema its `schema_id` names. A producer that names another schema it sent earlier
//! (another entity's, or the static codec's) would have its columns read as that schema's.
//! Arrow's reader fails on most such mix-ups with its own error; this check catches every
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

/// The entity a schema describes, for messages.
pub(crate) fn schema_entity(schema: &Schema) -> &str {
    schema
        .metadata()
        .get(META_ENTITY_PATH)
        .map_or("?", String::as_str)
}
