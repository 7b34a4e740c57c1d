//! Latest-at, range and dataframe queries, and sample access for video entities.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_buffer::Buffer;
use arrow_schema::{Field, Schema};
use vidlog_types::chunk::META_ENTITY_PATH;
use vidlog_types::{Chunk, EntityPath, VideoStream};

use super::{ChunkIdx, ChunkStore, EntityStore, StoreError};

/// A row found by a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef {
    pub chunk: ChunkIdx,
    pub row: u32,
    pub row_id: u64,
    /// The row's time on the queried timeline (`None` for static rows).
    pub time: Option<i64>,
}

/// One video sample with its bytes (shared with the chunk, not copied).
#[derive(Debug, Clone)]
pub struct VideoSample {
    /// Decode-order index within the entity.
    pub index: usize,
    pub row_id: u64,
    pub is_keyframe: bool,
    pub bytes: Buffer,
}

impl VideoSample {
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.as_slice()
    }
}

impl ChunkStore {
    fn entity(&self, entity: &EntityPath) -> Result<&EntityStore, StoreError> {
        self.entities
            .get(entity)
            .ok_or_else(|| StoreError::NoEntity(entity.clone()))
    }

    /// The latest row of `component` at time `t` on `timeline`: the row with the largest
    /// time <= t (ties: the last logged). Static rows of the component win over temporal
    /// ones, as in Rerun.
    pub fn latest_at(
        &self,
        entity: &EntityPath,
        timeline: &str,
        t: i64,
        component: &str,
    ) -> Result<Option<RowRef>, StoreError> {
        let e = self.entity(entity)?;
        if let Some((_, (row_id, chunk, row))) =
            e.statics.iter().find(|(n, _)| n.as_str() == component)
        {
            return Ok(Some(RowRef {
                chunk: *chunk,
                row: *row,
                row_id: *row_id,
                time: None,
            }));
        }
        let Some((_, index)) = e.timelines.iter().find(|(n, _)| n.as_str() == timeline) else {
            return Ok(None);
        };
        let mut best: Option<(i64, u64, ChunkIdx, u32)> = None;
        let end = index.chunks.partition_point(|(min, _, _)| *min <= t);
        for &(_, max, idx) in &index.chunks[..end] {
            if best.is_some_and(|(bt, _, _, _)| max < bt) {
                continue;
            }
            let stored = &e.chunks[idx as usize];
            if !stored.summary.has_component(component) {
                continue;
            }
            let Some(values) = stored.summary.timeline(timeline) else {
                continue;
            };
            // Last rank with time <= t in this chunk's time order.
            let rank = partition_point_by(values.len(), |r| {
                values[stored.row_in_order(timeline, r)] <= t
            });
            let Some(mut rank) = rank.checked_sub(1) else {
                continue;
            };
            let time = values[stored.row_in_order(timeline, rank)];
            // Among equal times the order is by row id, so the last of the run wins.
            while rank + 1 < values.len() && values[stored.row_in_order(timeline, rank + 1)] == time
            {
                rank += 1;
            }
            let row = stored.row_in_order(timeline, rank);
            let row_id = stored.summary.row_ids[row];
            if best.is_none_or(|(bt, br, _, _)| (time, row_id) > (bt, br)) {
                best = Some((time, row_id, idx, row as u32));
            }
        }
        Ok(best.map(|(time, row_id, chunk, row)| RowRef {
            chunk,
            row,
            row_id,
            time: Some(time),
        }))
    }

    /// All rows of `component` with `from <= time <= to` on `timeline`, ordered by
    /// (time, row id).
    pub fn range(
        &self,
        entity: &EntityPath,
        timeline: &str,
        from: i64,
        to: i64,
        component: &str,
    ) -> Result<Vec<RowRef>, StoreError> {
        let e = self.entity(entity)?;
        let Some((_, index)) = e.timelines.iter().find(|(n, _)| n.as_str() == timeline) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let end = index.chunks.partition_point(|(min, _, _)| *min <= to);
        for &(_, max, idx) in &index.chunks[..end] {
            if max < from {
                continue;
            }
            let stored = &e.chunks[idx as usize];
            if !stored.summary.has_component(component) {
                continue;
            }
            let Some(values) = stored.summary.timeline(timeline) else {
                continue;
            };
            let start = partition_point_by(values.len(), |r| {
                values[stored.row_in_order(timeline, r)] < from
            });
            for rank in start..values.len() {
                let row = stored.row_in_order(timeline, rank);
                let time = values[row];
                if time > to {
                    break;
                }
                out.push(RowRef {
                    chunk: idx,
                    row: row as u32,
                    row_id: stored.summary.row_ids[row],
                    time: Some(time),
                });
            }
        }
        out.sort_by_key(|r| (r.time, r.row_id));
        Ok(out)
    }

    /// The value of `component` at a row as a one-element array.
    pub fn cell(
        &self,
        entity: &EntityPath,
        at: RowRef,
        component: &str,
    ) -> Result<Option<ArrayRef>, StoreError> {
        let chunk = self.chunk(entity, at.chunk)?;
        Ok(chunk
            .component(component)
            .map(|c| c.slice(at.row as usize, 1)))
    }

    /// Video sample `index` (decode order) of `entity`, bytes shared with its chunk.
    pub fn video_sample(
        &self,
        entity: &EntityPath,
        index: usize,
    ) -> Result<VideoSample, StoreError> {
        let video = self.video(entity).ok_or_else(|| StoreError::Query {
            entity: entity.clone(),
            problem: "has no video samples".into(),
        })?;
        let sample = video.sample(index).ok_or_else(|| StoreError::Query {
            entity: entity.clone(),
            problem: format!(
                "sample {index} does not exist (the stream has {})",
                video.len()
            ),
        })?;
        let chunk = self.chunk(entity, sample.chunk)?;
        let bytes = sample_bytes(&chunk, sample.row as usize).ok_or_else(|| StoreError::Query {
            entity: entity.clone(),
            problem: format!(
                "sample {index}: chunk has no {} column",
                VideoStream::SAMPLE
            ),
        })?;
        Ok(VideoSample {
            index,
            row_id: sample.row_id,
            is_keyframe: sample.is_keyframe(),
            bytes,
        })
    }

    /// Samples `range` (decode order) of `entity`, one at a time, holding at most one
    /// chunk that is not otherwise in memory: bounded memory for any length.
    pub fn video_samples<'a>(
        &'a self,
        entity: &'a EntityPath,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = Result<VideoSample, StoreError>> + 'a {
        let video = self.video(entity);
        let mut current: Option<(ChunkIdx, Arc<Chunk>)> = None;
        range.map(move |index| {
            let sample = video
                .and_then(|v| v.sample(index))
                .ok_or_else(|| StoreError::Query {
                    entity: entity.clone(),
                    problem: format!("sample {index} does not exist"),
                })?;
            let chunk = match &current {
                Some((idx, chunk)) if *idx == sample.chunk => chunk.clone(),
                _ => {
                    let chunk = self.chunk_uncached(entity, sample.chunk)?;
                    current = Some((sample.chunk, chunk.clone()));
                    chunk
                }
            };
            let bytes =
                sample_bytes(&chunk, sample.row as usize).ok_or_else(|| StoreError::Query {
                    entity: entity.clone(),
                    problem: format!(
                        "sample {index}: chunk has no {} column",
                        VideoStream::SAMPLE
                    ),
                })?;
            Ok(VideoSample {
                index,
                row_id: sample.row_id,
                is_keyframe: sample.is_keyframe(),
                bytes,
            })
        })
    }

    /// Rows of `entity` with `from <= time <= to` on `timeline` as one Arrow record batch:
    /// `row_id`, every timeline of those rows, and each component. Sample bytes are
    /// included as `Binary`; `sample_size` and `is_keyframe` columns are added for video.
    pub fn dataframe(
        &self,
        entity: &EntityPath,
        timeline: &str,
        from: i64,
        to: i64,
    ) -> Result<RecordBatch, StoreError> {
        let e = self.entity(entity)?;
        if !e.timelines.keys().any(|n| n.as_str() == timeline) {
            return Err(StoreError::NoTimeline {
                entity: entity.clone(),
                timeline: timeline.to_owned(),
            });
        }
        let component = e
            .chunks
            .iter()
            .find(|c| !c.summary.is_static())
            .and_then(|c| c.summary.components.first().cloned())
            .ok_or_else(|| StoreError::Query {
                entity: entity.clone(),
                problem: "has no temporal rows".into(),
            })?;
        let rows = self.range(entity, timeline, from, to, component.as_str())?;
        let mut pieces: Vec<RecordBatch> = Vec::new();
        let mut schema: Option<Arc<Schema>> = None;
        // Consecutive rows of one chunk are taken together.
        let mut i = 0;
        while i < rows.len() {
            let chunk = self.chunk(entity, rows[i].chunk)?;
            let mut take = vec![rows[i].row];
            let mut j = i + 1;
            while j < rows.len() && rows[j].chunk == rows[i].chunk {
                take.push(rows[j].row);
                j += 1;
            }
            let piece = self.dataframe_piece(entity, &chunk, &take)?;
            match &schema {
                None => schema = Some(piece.schema()),
                Some(s) if **s != *piece.schema() => {
                    return Err(StoreError::Query {
                        entity: entity.clone(),
                        problem: "rows in the range have different columns; query a narrower range"
                            .into(),
                    });
                }
                Some(_) => {}
            }
            pieces.push(piece);
            i = j;
        }
        let Some(schema) = schema else {
            return Ok(RecordBatch::new_empty(Arc::new(Schema::empty())));
        };
        arrow_select::concat::concat_batches(&schema, &pieces).map_err(|e| StoreError::Query {
            entity: entity.clone(),
            problem: e.to_string(),
        })
    }

    fn dataframe_piece(
        &self,
        entity: &EntityPath,
        chunk: &Chunk,
        rows: &[u32],
    ) -> Result<RecordBatch, StoreError> {
        let indices = UInt32Array::from(rows.to_vec());
        let batch = chunk.batch();
        let err = |e: arrow_schema::ArrowError| StoreError::Query {
            entity: entity.clone(),
            problem: e.to_string(),
        };
        let mut fields: Vec<Arc<Field>> = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            fields.push(field.clone());
            columns.push(arrow_select::take::take(column.as_ref(), &indices, None).map_err(err)?);
        }
        if let Some(samples) = chunk.blobs(VideoStream::SAMPLE) {
            let sizes: UInt32Array = rows
                .iter()
                .map(|r| samples.value_length(*r as usize) as u32)
                .collect();
            fields.push(Arc::new(Field::new(
                "sample_size",
                sizes.data_type().clone(),
                false,
            )));
            columns.push(Arc::new(sizes));
            if chunk.component(VideoStream::IS_KEYFRAME).is_none() {
                let video = self.video(entity);
                let flags: arrow_array::BooleanArray = rows
                    .iter()
                    .map(|r| {
                        let row_id = chunk.row_ids()[*r as usize];
                        video.map(|v| {
                            let i = v.samples().partition_point(|s| s.row_id < row_id);
                            v.sample(i)
                                .is_some_and(|s| s.row_id == row_id && s.is_keyframe())
                        })
                    })
                    .collect();
                fields.push(Arc::new(Field::new(
                    VideoStream::IS_KEYFRAME,
                    arrow_schema::DataType::Boolean,
                    true,
                )));
                columns.push(Arc::new(flags));
            }
        }
        let schema = Schema::new_with_metadata(
            fields,
            std::collections::HashMap::from([(
                META_ENTITY_PATH.to_owned(),
                entity.as_str().to_owned(),
            )]),
        );
        RecordBatch::try_new(Arc::new(schema), columns).map_err(err)
    }
}

/// The bytes of sample `row`, sliced from the chunk's value buffer.
pub(crate) fn sample_bytes(chunk: &Chunk, row: usize) -> Option<Buffer> {
    let samples = chunk.blobs(VideoStream::SAMPLE)?;
    if row >= samples.len() {
        return None;
    }
    let offsets = samples.value_offsets();
    let start = offsets[row] as usize;
    let end = offsets[row + 1] as usize;
    Some(samples.values().slice_with_length(start, end - start))
}

/// First index in `0..n` for which `pred` is false (pred must be monotone).
fn partition_point_by(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}
