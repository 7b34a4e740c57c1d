//! The viewer's dataframe view: one page of a video entity's rows as JSON, read from the
//! store's video index (no sample bytes are touched), so a table of any length pages in
//! constant time per row.
//!
//! `GET /api/recordings/{id}/dataframe?entity=E[&timeline=T][&offset=N][&limit=M]` →
//! `{"entity", "total", "offset", "columns": [{"name", "kind"}], "rows": [[...]]}`. Rows are
//! the entity's samples in decode order: `index`, the value on each timeline every sample
//! carries (the chosen or default play timeline first), `size` (bytes), `keyframe`,
//! `codec`, and `row_id` (a decimal string: ns wall clock at logging, beyond a JavaScript
//! number's exact range). `limit` defaults to 100, at most [`MAX_ROWS_PER_PAGE`].

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;
use serde_json::Value;

use crate::Server;
use crate::view::{ViewError, ViewQuery, entity, index_param, play_timeline, recording, video_of};

/// Most rows one page holds.
pub const MAX_ROWS_PER_PAGE: usize = 1000;
const DEFAULT_ROWS_PER_PAGE: usize = 100;

/// A column of the table: its name and what it holds.
#[derive(Debug, Serialize)]
pub struct Column {
    pub name: String,
    /// `index`, `duration`/`timestamp`/`sequence` (a timeline), `bytes`, `bool`, `text`.
    pub kind: &'static str,
}

/// One page of the table.
#[derive(Debug, Serialize)]
pub struct DataframePage {
    pub entity: String,
    /// Rows in the whole table.
    pub total: usize,
    /// Index of the first row of `rows`.
    pub offset: usize,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

pub(crate) async fn dataframe(
    State(server): State<Server>,
    Path(id): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Result<Json<DataframePage>, ViewError> {
    let recording = recording(&server, &id)?;
    let entity = entity(&query)?;
    let offset = index_param("offset", query.offset.as_deref())?.unwrap_or(0);
    let limit = index_param("limit", query.limit.as_deref())?.unwrap_or(DEFAULT_ROWS_PER_PAGE);
    if limit == 0 || limit > MAX_ROWS_PER_PAGE {
        return Err(ViewError::bad_request(format!(
            "limit={limit}: ask for 1 to {MAX_ROWS_PER_PAGE} rows per page"
        )));
    }
    tokio::task::block_in_place(|| {
        let state = recording.state.read();
        let store = &state.store;
        let video = video_of(store, &entity)?;
        let first = play_timeline(&entity, video, query.timeline.as_deref())?.name;
        let mut timelines: Vec<(String, &'static str, &[i64])> = video
            .timelines()
            .filter_map(|(name, kind)| {
                let pts = video.pts(name.as_str())?;
                Some((name.to_string(), kind.name(), pts))
            })
            .collect();
        timelines.sort_by_key(|(name, _, _)| (*name != first, name.clone()));
        let total = video.len();
        if offset > total {
            return Err(ViewError::bad_request(format!(
                "offset={offset} is past the end of {entity} ({total} rows)"
            )));
        }
        let codec = store.codec(&entity).map(|c| c.to_string());
        let mut columns = vec![Column {
            name: "index".into(),
            kind: "index",
        }];
        for (name, kind, _) in &timelines {
            columns.push(Column {
                name: name.clone(),
                kind,
            });
        }
        for (name, kind) in [
            ("size", "bytes"),
            ("keyframe", "bool"),
            ("codec", "text"),
            ("row_id", "text"),
        ] {
            columns.push(Column {
                name: name.into(),
                kind,
            });
        }
        let end = offset.saturating_add(limit).min(total);
        let rows = (offset..end)
            .filter_map(|i| {
                let sample = video.sample(i)?;
                let mut row = Vec::with_capacity(columns.len());
                row.push(Value::from(i));
                for (_, _, pts) in &timelines {
                    row.push(pts.get(i).map_or(Value::Null, |&t| Value::from(t)));
                }
                row.push(Value::from(sample.size));
                row.push(Value::from(sample.is_keyframe()));
                row.push(codec.clone().map_or(Value::Null, Value::from));
                row.push(Value::from(sample.row_id.to_string()));
                Some(row)
            })
            .collect();
        Ok(Json(DataframePage {
            entity: entity.to_string(),
            total,
            offset,
            columns,
            rows,
        }))
    })
}
