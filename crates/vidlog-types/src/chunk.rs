//! Chunks: rows of one entity as an Arrow `RecordBatch` plus what the columns mean.
//!
//! Column layout (the schema conventions every file and socket carries):
//! - `row_id`: `UInt64`, field metadata `vidlog:kind = row_id`; rows are kept in row-id
//!   order, which for video is decode order.
//! - one `Int64` column per timeline, named after it, with `vidlog:kind = time` and
//!   `vidlog:time_kind = sequence | duration | timestamp`; no nulls. A chunk without
//!   timeline columns is static.
//! - one column per component, named `Archetype:field`, `vidlog:kind = component`.
//! - schema metadata `vidlog:entity_path`.
//!
//! Rows logged with different timelines or components go to different chunks, so a
//! chunk has no holes. This module builds chunks from rows and validates chunks read
//! back from bytes; it does no I/O.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float32Array, Int64Array, RecordBatch, StringArray,
    UInt32Array, UInt64Array,
};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::component::{ComponentCell, ComponentName, ComponentValue};
use crate::entity::EntityPath;
use crate::time::{RowId, TimeKind, TimePoint, Timeline, TimelineName};

pub const META_KIND: &str = "vidlog:kind";
pub const META_TIME_KIND: &str = "vidlog:time_kind";
pub const META_ENTITY_PATH: &str = "vidlog:entity_path";
pub const ROW_ID_COLUMN: &str = "row_id";

/// Identifies a chunk within a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub u64);

/// Why a record batch is not a valid chunk.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk schema has no `{META_ENTITY_PATH}` metadata")]
    MissingEntityPath,
    #[error("chunk schema: {0}")]
    BadEntityPath(#[from] crate::entity::EntityPathError),
    #[error("chunk of {entity}: column {column:?} {problem}")]
    BadColumn {
        entity: EntityPath,
        column: String,
        problem: String,
    },
    #[error("chunk of {entity}: no `row_id` column")]
    MissingRowIds { entity: EntityPath },
    #[error("rows of one chunk must share timelines and components; row {row} differs")]
    MixedRows { row: usize },
    #[error("component {component}: row {row} has a {found:?} value, the column is {expected:?}")]
    MixedTypes {
        component: ComponentName,
        row: usize,
        expected: DataType,
        found: DataType,
    },
    #[error("a chunk needs at least one row")]
    Empty,
}

/// A timeline column of a chunk.
#[derive(Debug, Clone)]
pub struct TimeColumn {
    pub timeline: Timeline,
    pub values: ScalarBuffer<i64>,
    /// True when values never decrease from row to row (the usual case).
    pub is_sorted: bool,
}

impl TimeColumn {
    /// Smallest and largest value.
    pub fn range(&self) -> (i64, i64) {
        if self.is_sorted {
            (self.values[0], self.values[self.values.len() - 1])
        } else {
            let min = self.values.iter().copied().min().unwrap_or(0);
            let max = self.values.iter().copied().max().unwrap_or(0);
            (min, max)
        }
    }
}

/// Rows of one entity.
#[derive(Debug, Clone)]
pub struct Chunk {
    id: ChunkId,
    entity: EntityPath,
    batch: RecordBatch,
    row_ids: ScalarBuffer<u64>,
    timelines: Vec<TimeColumn>,
    components: Vec<(ComponentName, usize)>,
}

impl Chunk {
    pub fn id(&self) -> ChunkId {
        self.id
    }
    pub fn entity(&self) -> &EntityPath {
        &self.entity
    }
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }
    pub fn schema(&self) -> SchemaRef {
        self.batch.schema()
    }
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }
    pub fn is_static(&self) -> bool {
        self.timelines.is_empty()
    }
    pub fn row_ids(&self) -> &[u64] {
        &self.row_ids
    }
    pub fn timelines(&self) -> &[TimeColumn] {
        &self.timelines
    }
    pub fn timeline(&self, name: &str) -> Option<&TimeColumn> {
        self.timelines
            .iter()
            .find(|t| t.timeline.name.as_str() == name)
    }
    pub fn component_names(&self) -> impl Iterator<Item = &ComponentName> {
        self.components.iter().map(|(n, _)| n)
    }
    pub fn component(&self, name: &str) -> Option<&ArrayRef> {
        self.components
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, i)| self.batch.column(*i))
    }
    /// A `Binary` component column (e.g. `VideoStream:sample`).
    pub fn blobs(&self, name: &str) -> Option<&BinaryArray> {
        self.component(name)?.as_any().downcast_ref::<BinaryArray>()
    }
    pub fn u32s(&self, name: &str) -> Option<&UInt32Array> {
        self.component(name)?.as_any().downcast_ref::<UInt32Array>()
    }
    /// The codec of a `VideoStream` logged in this chunk (its last row wins).
    pub fn codec(&self) -> Option<crate::VideoCodec> {
        let codecs = self.u32s(crate::VideoStream::CODEC)?;
        crate::VideoCodec::from_fourcc(codecs.value(codecs.len().checked_sub(1)?))
    }
    pub fn bools(&self, name: &str) -> Option<&BooleanArray> {
        self.component(name)?
            .as_any()
            .downcast_ref::<BooleanArray>()
    }
    /// Bytes held by the chunk's arrays.
    pub fn heap_size(&self) -> usize {
        self.batch.get_array_memory_size()
    }

    /// Validates a record batch against the schema conventions above.
    pub fn from_record_batch(id: ChunkId, batch: RecordBatch) -> Result<Self, ChunkError> {
        let schema = batch.schema();
        let entity = schema
            .metadata()
            .get(META_ENTITY_PATH)
            .ok_or(ChunkError::MissingEntityPath)?;
        let entity = EntityPath::parse(entity)?;
        if batch.num_rows() == 0 {
            return Err(ChunkError::Empty);
        }
        let bad = |column: &str, problem: &str| ChunkError::BadColumn {
            entity: entity.clone(),
            column: column.to_owned(),
            problem: problem.to_owned(),
        };
        let mut row_ids = None;
        let mut timelines = Vec::new();
        let mut components = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            let column = batch.column(i);
            let kind = field.metadata().get(META_KIND).map(String::as_str);
            match kind {
                Some("row_id") => {
                    let ids = column
                        .as_any()
                        .downcast_ref::<UInt64Array>()
                        .ok_or_else(|| bad(field.name(), "must be UInt64"))?;
                    if ids.null_count() > 0 {
                        return Err(bad(field.name(), "has nulls"));
                    }
                    row_ids = Some(ids.values().clone());
                }
                Some("time") => {
                    let time_kind = field
                        .metadata()
                        .get(META_TIME_KIND)
                        .and_then(|k| TimeKind::parse(k))
                        .ok_or_else(|| bad(field.name(), "has no valid vidlog:time_kind"))?;
                    let values = column
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .ok_or_else(|| bad(field.name(), "must be Int64"))?;
                    if values.null_count() > 0 {
                        return Err(bad(field.name(), "has nulls"));
                    }
                    let values = values.values().clone();
                    let is_sorted = values.windows(2).all(|w| w[0] <= w[1]);
                    timelines.push(TimeColumn {
                        timeline: Timeline::new(field.name().as_str(), time_kind),
                        values,
                        is_sorted,
                    });
                }
                Some("component") => {
                    components.push((ComponentName::new(field.name()), i));
                }
                _ => return Err(bad(field.name(), "has no vidlog:kind metadata")),
            }
        }
        let row_ids = row_ids.ok_or(ChunkError::MissingRowIds {
            entity: entity.clone(),
        })?;
        Ok(Chunk {
            id,
            entity,
            batch,
            row_ids,
            timelines,
            components,
        })
    }
}

/// A logged row waiting to be batched.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub row_id: RowId,
    pub time: TimePoint,
    pub cells: Vec<ComponentCell>,
}

impl PendingRow {
    /// Bytes this row adds to a chunk.
    pub fn heap_size(&self) -> usize {
        8 + 8 * self.time.len()
            + self
                .cells
                .iter()
                .map(|c| c.value.heap_size())
                .sum::<usize>()
    }

    /// Rows with equal keys can share a chunk.
    pub fn batch_key(&self) -> BatchKey {
        BatchKey {
            timelines: self.time.iter().map(|(n, c)| (n.clone(), c.kind)).collect(),
            components: self
                .cells
                .iter()
                .map(|c| (c.name.clone(), c.value.data_type()))
                .collect(),
        }
    }
}

/// What rows of one chunk share: timelines (with kinds) and components (with types).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchKey {
    pub timelines: Vec<(TimelineName, TimeKind)>,
    pub components: Vec<(ComponentName, DataType)>,
}

/// Builds the Arrow schema for `entity` and `key`; equal inputs give equal schemas.
pub fn chunk_schema(entity: &EntityPath, key: &BatchKey) -> Schema {
    let meta = |kind: &str| HashMap::from([(META_KIND.to_owned(), kind.to_owned())]);
    let mut fields = Vec::with_capacity(1 + key.timelines.len() + key.components.len());
    fields.push(Field::new(ROW_ID_COLUMN, DataType::UInt64, false).with_metadata(meta("row_id")));
    for (name, kind) in &key.timelines {
        let mut m = meta("time");
        m.insert(META_TIME_KIND.to_owned(), kind.name().to_owned());
        fields.push(Field::new(name.as_str(), DataType::Int64, false).with_metadata(m));
    }
    for (name, data_type) in &key.components {
        fields.push(
            Field::new(name.as_str(), data_type.clone(), false).with_metadata(meta("component")),
        );
    }
    Schema::new_with_metadata(
        fields,
        HashMap::from([(META_ENTITY_PATH.to_owned(), entity.as_str().to_owned())]),
    )
}

/// Turns rows that share a [`BatchKey`] into a chunk. Sample bytes are copied once into
/// the chunk's value buffer (not at all for a one-row chunk).
pub fn build_chunk(
    id: ChunkId,
    entity: &EntityPath,
    schema: SchemaRef,
    rows: &[PendingRow],
) -> Result<Chunk, ChunkError> {
    let first = rows.first().ok_or(ChunkError::Empty)?;
    let key = first.batch_key();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    columns.push(Arc::new(UInt64Array::from_iter_values(
        rows.iter().map(|r| r.row_id.0),
    )));
    for (t, (name, _)) in key.timelines.iter().enumerate() {
        let mut values = Vec::with_capacity(rows.len());
        for (row_index, row) in rows.iter().enumerate() {
            match row.time.iter().nth(t) {
                Some((n, cell)) if n == name => values.push(cell.value),
                _ => return Err(ChunkError::MixedRows { row: row_index }),
            }
        }
        columns.push(Arc::new(Int64Array::from(values)));
    }
    for (c, (name, data_type)) in key.components.iter().enumerate() {
        let mut cells = Vec::with_capacity(rows.len());
        for (row_index, row) in rows.iter().enumerate() {
            match row.cells.get(c) {
                Some(cell) if &cell.name == name => {
                    if &cell.value.data_type() != data_type {
                        return Err(ChunkError::MixedTypes {
                            component: name.clone(),
                            row: row_index,
                            expected: data_type.clone(),
                            found: cell.value.data_type(),
                        });
                    }
                    cells.push(&cell.value)
                }
                _ => return Err(ChunkError::MixedRows { row: row_index }),
            }
        }
        columns.push(component_array(data_type, &cells));
    }
    let batch = RecordBatch::try_new(schema, columns).map_err(|e| ChunkError::BadColumn {
        entity: entity.clone(),
        column: String::new(),
        problem: e.to_string(),
    })?;
    Chunk::from_record_batch(id, batch)
}

/// One Arrow array from same-typed values (types were checked by the caller).
fn component_array(data_type: &DataType, cells: &[&ComponentValue]) -> ArrayRef {
    macro_rules! collect {
        ($variant:ident, $array:ty) => {
            Arc::new(<$array>::from_iter_values(cells.iter().map(|v| match v {
                ComponentValue::$variant(x) => x.clone(),
                _ => Default::default(),
            })))
        };
    }
    match data_type {
        DataType::Binary => Arc::new(blob_array(cells)),
        DataType::UInt32 => collect!(U32, UInt32Array),
        DataType::Int64 => collect!(I64, Int64Array),
        DataType::Float32 => collect!(F32, Float32Array),
        DataType::Boolean => Arc::new(BooleanArray::from_iter(cells.iter().map(|v| match v {
            ComponentValue::Bool(b) => Some(*b),
            _ => Some(false),
        }))),
        _ => Arc::new(StringArray::from_iter_values(cells.iter().map(
            |v| match v {
                ComponentValue::Utf8(s) => s.to_string(),
                _ => String::new(),
            },
        ))),
    }
}

/// Concatenates blobs into one `BinaryArray`; a single blob is used in place.
fn blob_array(cells: &[&ComponentValue]) -> BinaryArray {
    let blobs: Vec<&Buffer> = cells
        .iter()
        .map(|v| match v {
            ComponentValue::Blob(b) => &b.0,
            _ => unreachable_blob(),
        })
        .collect();
    let total: usize = blobs.iter().map(|b| b.len()).sum();
    let offsets = OffsetBuffer::<i32>::from_lengths(blobs.iter().map(|b| b.len()));
    let values = if let [only] = blobs.as_slice() {
        (*only).clone()
    } else {
        let mut values = Vec::with_capacity(total);
        for b in &blobs {
            values.extend_from_slice(b.as_slice());
        }
        Buffer::from_vec(values)
    };
    BinaryArray::new(offsets, values, None)
}

fn unreachable_blob() -> &'static Buffer {
    static EMPTY: std::sync::OnceLock<Buffer> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Buffer::from_vec(Vec::<u8>::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archetypes::VideoStream;
    use crate::component::AsComponents;
    use crate::time::TimeCell;

    fn row(id: u64, t: i64, bytes: &[u8]) -> PendingRow {
        PendingRow {
            row_id: RowId(id),
            time: TimePoint::new()
                .with("time", TimeCell::from_duration_nanos(t))
                .with("frame", TimeCell::from_sequence(id as i64)),
            cells: VideoStream::from_sample(bytes.to_vec()).as_components(),
        }
    }

    #[test]
    fn build_and_validate() {
        let entity = EntityPath::parse("camera/front").unwrap();
        let rows = vec![row(1, 40, b"abc"), row(2, 10, b""), row(3, 20, b"defg")];
        let schema = Arc::new(chunk_schema(&entity, &rows[0].batch_key()));
        let chunk = build_chunk(ChunkId(9), &entity, schema, &rows).unwrap();
        assert_eq!(chunk.num_rows(), 3);
        assert_eq!(chunk.row_ids(), &[1, 2, 3]);
        let time = chunk.timeline("time").unwrap();
        assert_eq!(time.timeline.kind, TimeKind::Duration);
        assert!(!time.is_sorted);
        assert_eq!(time.range(), (10, 40));
        assert!(chunk.timeline("frame").unwrap().is_sorted);
        let samples = chunk.blobs(VideoStream::SAMPLE).unwrap();
        assert_eq!(samples.value(0), b"abc");
        assert_eq!(samples.value(1), b"");
        assert_eq!(samples.value(2), b"defg");
        assert!(!chunk.is_static());
    }

    #[test]
    fn one_row_chunk_shares_the_sample_buffer() {
        let entity = EntityPath::parse("cam").unwrap();
        let bytes = vec![7u8; 1000];
        let ptr = bytes.as_ptr();
        let rows = vec![row(1, 0, b"")];
        let mut rows = rows;
        rows[0].cells = VideoStream::from_sample(bytes).as_components();
        let schema = Arc::new(chunk_schema(&entity, &rows[0].batch_key()));
        let chunk = build_chunk(ChunkId(1), &entity, schema, &rows).unwrap();
        assert_eq!(
            chunk.blobs(VideoStream::SAMPLE).unwrap().value(0).as_ptr(),
            ptr
        );
    }

    #[test]
    fn mixed_rows_are_refused() {
        let entity = EntityPath::parse("cam").unwrap();
        let mut rows = vec![row(1, 0, b"a"), row(2, 1, b"b")];
        rows[1].time = TimePoint::new().with("other", TimeCell::from_sequence(1));
        let schema = Arc::new(chunk_schema(&entity, &rows[0].batch_key()));
        assert!(matches!(
            build_chunk(ChunkId(1), &entity, schema, &rows),
            Err(ChunkError::MixedRows { row: 1 })
        ));
    }

    #[test]
    fn static_chunk_has_no_timelines() {
        let entity = EntityPath::parse("cam").unwrap();
        let rows = vec![PendingRow {
            row_id: RowId(1),
            time: TimePoint::new(),
            cells: VideoStream::new(crate::VideoCodec::H264).as_components(),
        }];
        let schema = Arc::new(chunk_schema(&entity, &rows[0].batch_key()));
        let chunk = build_chunk(ChunkId(1), &entity, schema, &rows).unwrap();
        assert!(chunk.is_static());
        assert_eq!(
            chunk.u32s(VideoStream::CODEC).unwrap().value(0),
            crate::VideoCodec::H264.fourcc()
        );
    }
}
