//! The HTTP side: the router (ingest WebSocket plus the JSON API) and the JSON views of
//! recordings. `GET /api/recordings` lists recordings; `GET /api/recordings/{id}` gives
//! one recording's entities, timelines with ranges, and per video entity its codec,
//! sample count and keyframe positions. `GET /api/recordings/{id}/export.mp4` is
//! [`crate::export_http`].

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::Server;
use crate::protocol::INGEST_PATH;
use crate::recordings::RecordingOverview;

pub(crate) fn router(server: Server) -> Router {
    Router::new()
        .route(INGEST_PATH, get(crate::ingest::upgrade))
        .route("/api/recordings", get(list))
        .route("/api/recordings/{id}", get(details))
        .route(
            "/api/recordings/{id}/export.mp4",
            get(crate::export_http::export_mp4),
        )
        .merge(crate::view::router())
        .with_state(server)
}

async fn list(State(server): State<Server>) -> Json<Vec<RecordingOverview>> {
    Json(server.recordings())
}

/// `GET /api/recordings/{id}`.
#[derive(Debug, Serialize)]
pub struct RecordingDetails {
    #[serde(flatten)]
    pub overview: RecordingOverview,
    pub timelines: Vec<TimelineRange>,
    pub entity_details: Vec<EntityDetails>,
}

#[derive(Debug, Serialize)]
pub struct TimelineRange {
    pub name: String,
    pub kind: &'static str,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct EntityDetails {
    pub path: String,
    pub components: Vec<String>,
    pub video: Option<VideoDetails>,
}

#[derive(Debug, Serialize)]
pub struct VideoDetails {
    /// `H.264`, `H.265` or `AV1`, when a static codec was logged.
    pub codec: Option<String>,
    pub samples: usize,
    /// Sample indexes (decode order) of keyframes.
    pub keyframes: Vec<usize>,
}

async fn details(State(server): State<Server>, Path(id): Path<String>) -> Response {
    let Some(recording) = server.recordings.get(&id) else {
        return not_found(&id);
    };
    let Some(overview) = recording.overview() else {
        return not_found(&id);
    };
    let state = recording.state.read();
    let store = &state.store;
    let timelines = store
        .timelines()
        .map(|(name, kind)| {
            let range = store.time_range(None, name.as_str());
            TimelineRange {
                name: name.to_string(),
                kind: kind.name(),
                min: range.map(|r| r.0),
                max: range.map(|r| r.1),
            }
        })
        .collect();
    let entity_details = store
        .entity_paths()
        .map(|entity| EntityDetails {
            path: entity.to_string(),
            components: store
                .components(entity)
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            video: store.video(entity).map(|video| VideoDetails {
                codec: store.codec(entity).map(|c| c.to_string()),
                samples: video.len(),
                keyframes: video.keyframes().to_vec(),
            }),
        })
        .collect();
    Json(RecordingDetails {
        overview,
        timelines,
        entity_details,
    })
    .into_response()
}

fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": format!("no recording {id:?}") })),
    )
        .into_response()
}
