//! The browser viewer's side of the server: the viewer's files (`web/`, compiled into the
//! binary, so it works offline), the video endpoints it decodes from, and the live feed.
//!
//! - `GET /`, `/app.js`, `/stream.js`, `/table.js`, `/wire.js`: the viewer.
//! - `GET /api/recordings/{id}/video/info?entity=E[&timeline=T]`: the WebCodecs codec
//!   string, the picture size and the stream's index (pts per sample in decode order,
//!   keyframe indexes) as JSON ([`VideoInfo`]).
//! - `GET /api/recordings/{id}/video/samples?entity=E&from=I[&to=J][&timeline=T]`: samples
//!   `I..J` (decode order) in the binary sample layout ([`encode_sample`]).
//! - `GET /ws/view?recording=ID&entity=E[&timeline=T]` (WebSocket): every sample of `E`
//!   as it is stored, one binary message each in the same layout, starting at the latest
//!   keyframe the entity has when the viewer joins.
//! - `GET /api/recordings/{id}/dataframe?...`: the entity's rows as a table page
//!   ([`crate::dataframe`]).
//! - `GET /api/recordings/{id}/video/frame?entity=E&sample=I...`: one frame decoded by the
//!   server, for codecs the browser cannot decode ([`crate::server_frames`]).
//!
//! Each sample carries its row id: the producer's wall clock (ns since the Unix epoch) when
//! it was logged, so a viewer on the same machine measures live latency at paint.
//!
//! Entity paths contain `/`, so they travel as the `entity` query parameter. The timeline
//! defaults to the entity's first `duration` timeline (then `timestamp`, then `sequence`)
//! that every sample carries. It does not decode video (the browser does, with WebCodecs;
//! `server_frames` is the fallback) and does not parse bitstreams (`vidlog_video::probe`
//! gives the codec string). See the "Viewer" section of docs/PROTOCOL.md.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use vidlog_store::{ChunkStore, VideoIndex};
use vidlog_types::arrow_array::Array;
use vidlog_types::{Chunk, EntityPath, TimeKind, VideoStream};

use crate::Server;
use crate::recordings::LiveRecording;

/// Viewers follow a video entity here.
pub const VIEW_PATH: &str = "/ws/view";
/// Bytes before each sample's bytes:
/// `u32 len | u8 is_keyframe | 3 pad | i64 pts | u64 index | u64 row_id`.
pub const SAMPLE_HEADER_LEN: usize = 32;
/// Most samples one `samples` request returns.
pub const MAX_SAMPLES_PER_REQUEST: usize = 1000;
/// Most sample bytes one `samples` request returns (at least one sample is always sent).
pub const MAX_BYTES_PER_REQUEST: usize = 32 << 20;

/// A file of the viewer, embedded at compile time.
struct WebFile {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

static WEB_FILES: &[WebFile] = &[
    WebFile {
        path: "/",
        content_type: HTML,
        body: include_bytes!("../../../web/index.html"),
    },
    WebFile {
        path: "/index.html",
        content_type: HTML,
        body: include_bytes!("../../../web/index.html"),
    },
    WebFile {
        path: "/app.js",
        content_type: JS,
        body: include_bytes!("../../../web/app.js"),
    },
    WebFile {
        path: "/wire.js",
        content_type: JS,
        body: include_bytes!("../../../web/wire.js"),
    },
    WebFile {
        path: "/stream.js",
        content_type: JS,
        body: include_bytes!("../../../web/stream.js"),
    },
    WebFile {
        path: "/table.js",
        content_type: JS,
        body: include_bytes!("../../../web/table.js"),
    },
];

/// The viewer's routes, merged into the API router.
pub(crate) fn router() -> Router<Server> {
    let mut router = Router::new()
        .route("/api/recordings/{id}/video/info", get(info))
        .route("/api/recordings/{id}/video/samples", get(samples))
        .route(
            "/api/recordings/{id}/dataframe",
            get(crate::dataframe::dataframe),
        )
        .route(VIEW_PATH, get(live))
        .merge(crate::server_frames::router());
    for file in WEB_FILES {
        router = router.route(file.path, get(move || async move { serve_file(file) }));
    }
    router
}

fn serve_file(file: &'static WebFile) -> Response {
    (
        [
            (header::CONTENT_TYPE, file.content_type),
            // Embedded in the binary: a new binary may serve new files at the same path.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        file.body,
    )
        .into_response()
}

/// An error answer: `{"error": "..."}` with a status.
#[derive(Debug)]
pub(crate) struct ViewError {
    status: StatusCode,
    message: String,
}

impl ViewError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ViewError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ViewError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
    pub(crate) fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        ViewError {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ViewError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for ViewError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// Query parameters of the viewer's endpoints (all optional here, checked by hand so
/// every refusal says what was expected).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ViewQuery {
    recording: Option<String>,
    entity: Option<String>,
    pub(crate) timeline: Option<String>,
    from: Option<String>,
    to: Option<String>,
    pub(crate) offset: Option<String>,
    pub(crate) limit: Option<String>,
    /// `video/frame` ([`crate::server_frames`]).
    pub(crate) at: Option<String>,
    pub(crate) sample: Option<String>,
    pub(crate) quality: Option<String>,
    pub(crate) format: Option<String>,
    pub(crate) session: Option<String>,
}

pub(crate) fn recording(server: &Server, id: &str) -> Result<Arc<LiveRecording>, ViewError> {
    server
        .recordings
        .get(id)
        .filter(|r| r.overview().is_some())
        .ok_or_else(|| ViewError::not_found(format!("no recording {id:?}")))
}

pub(crate) fn entity(query: &ViewQuery) -> Result<EntityPath, ViewError> {
    let text = query.entity.as_deref().ok_or_else(|| {
        ViewError::bad_request("missing ?entity=PATH (the video entity, e.g. camera/front)")
    })?;
    EntityPath::parse(text).map_err(|e| ViewError::bad_request(format!("entity {text:?}: {e}")))
}

pub(crate) fn index_param(name: &str, text: Option<&str>) -> Result<Option<usize>, ViewError> {
    text.map(|t| {
        t.parse::<usize>().map_err(|_| {
            ViewError::bad_request(format!(
                "{name}={t:?} is not a sample index (0, 1, 2 ... in decode order)"
            ))
        })
    })
    .transpose()
}

pub(crate) fn video_of<'a>(
    store: &'a ChunkStore,
    entity: &EntityPath,
) -> Result<&'a VideoIndex, ViewError> {
    store
        .video(entity)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ViewError::not_found(format!(
                "{entity} has no video samples (yet); video entities: [{}]",
                store
                    .video_entities()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// The timeline a viewer plays on, with each sample's pts on it (decode order).
pub(crate) struct PlayTimeline<'a> {
    pub(crate) name: String,
    kind: TimeKind,
    pub(crate) pts: &'a [i64],
}

/// `wanted`, or the default: the first `duration`, then `timestamp`, then `sequence`
/// timeline (by name) that every sample of the entity carries.
pub(crate) fn play_timeline<'a>(
    entity: &EntityPath,
    video: &'a VideoIndex,
    wanted: Option<&str>,
) -> Result<PlayTimeline<'a>, ViewError> {
    let rank = |kind: TimeKind| match kind {
        TimeKind::Duration => 0,
        TimeKind::Timestamp => 1,
        TimeKind::Sequence => 2,
    };
    let mut usable: Vec<(String, TimeKind)> = video
        .timelines()
        .filter(|(name, _)| video.pts(name.as_str()).is_some())
        .map(|(name, kind)| (name.to_string(), kind))
        .collect();
    usable.sort_by(|a, b| (rank(a.1), &a.0).cmp(&(rank(b.1), &b.0)));
    let names = || {
        usable
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match wanted {
        Some(wanted) => usable
            .iter()
            .find(|(name, _)| name == wanted)
            .ok_or_else(|| {
                ViewError::bad_request(format!(
                    "{entity}: no timeline {wanted:?} on every sample; timelines: [{}]",
                    names()
                ))
            })?,
        None => usable.first().ok_or_else(|| {
            ViewError::bad_request(format!(
                "{entity}: no timeline is on every sample, so there is no pts to play by"
            ))
        })?,
    };
    Ok(PlayTimeline {
        name: chosen.0.clone(),
        kind: chosen.1,
        pts: video.pts(&chosen.0).unwrap_or(&[]),
    })
}

/// `GET /api/recordings/{id}/video/info`.
#[derive(Debug, Serialize)]
pub struct VideoInfo {
    pub entity: String,
    /// `H.264`, `H.265` or `AV1`, when a static codec was logged.
    pub codec: Option<String>,
    /// WebCodecs codec string from the first keyframe's parameter sets (`avc1.42C01E`).
    pub codec_string: Option<String>,
    /// Why there is no codec string, when there is none.
    pub codec_problem: Option<String>,
    /// Display size from the parameter sets.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Frame rate signalled in the bitstream, if any.
    pub frame_rate: Option<f64>,
    /// The timeline `pts` is on, and its kind (`duration`, `timestamp`, `sequence`).
    pub timeline: String,
    pub timeline_kind: &'static str,
    pub samples: usize,
    /// Sample indexes (decode order) of keyframes, ascending.
    pub keyframes: Vec<usize>,
    /// Presentation time of each sample in decode order (ns for duration/timestamp).
    pub pts: Vec<i64>,
    /// A producer is connected: more samples may arrive (follow `/ws/view`).
    pub live: bool,
    /// The latest `VideoStream:draw_order` of the entity, if one was logged: higher
    /// draws on top when a viewer composites several entities.
    pub draw_order: Option<f32>,
}

async fn info(
    State(server): State<Server>,
    Path(id): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Result<Json<VideoInfo>, ViewError> {
    let recording = recording(&server, &id)?;
    let entity = entity(&query)?;
    let live = recording.overview().is_some_and(|o| o.live);
    tokio::task::block_in_place(|| {
        let state = recording.state.read();
        let store = &state.store;
        let video = video_of(store, &entity)?;
        let timeline = play_timeline(&entity, video, query.timeline.as_deref())?;
        let codec = store.codec(&entity);
        let described = match (codec, video.keyframes().first()) {
            (None, _) => Err(format!(
                "no codec logged for {entity}: log VideoStream::new(codec) as static data"
            )),
            (Some(_), None) => Err(format!("{entity} has no keyframe yet")),
            (Some(codec), Some(&k)) => match store.video_samples(&entity, k..k + 1).next() {
                Some(Ok(sample)) => vidlog_video::probe::stream_info(codec, sample.as_slice())
                    .map_err(|e| format!("{entity} sample {k}: {e}")),
                Some(Err(e)) => Err(format!("{entity} sample {k}: {e}")),
                None => Err(format!("{entity} sample {k} is missing")),
            },
        };
        let (stream, codec_problem) = match described {
            Ok(stream) => (Some(stream), None),
            Err(problem) => (None, Some(problem)),
        };
        let draw_order = draw_order(store, &entity, &timeline.name);
        Ok(Json(VideoInfo {
            entity: entity.to_string(),
            codec: codec.map(|c| c.to_string()),
            codec_string: stream.as_ref().map(|s| s.codec_string.clone()),
            codec_problem,
            width: stream.as_ref().map(|s| s.width),
            height: stream.as_ref().map(|s| s.height),
            frame_rate: stream
                .as_ref()
                .and_then(|s| s.frame_rate)
                .filter(|r| r.is_finite()),
            timeline: timeline.name,
            timeline_kind: timeline.kind.name(),
            samples: video.len(),
            keyframes: video.keyframes().to_vec(),
            pts: timeline.pts.to_vec(),
            live,
            draw_order,
        }))
    })
}

/// The latest draw order logged for `entity` (static, else the last on `timeline`).
fn draw_order(store: &ChunkStore, entity: &EntityPath, timeline: &str) -> Option<f32> {
    let at = store
        .latest_at(entity, timeline, i64::MAX, VideoStream::DRAW_ORDER)
        .ok()??;
    let cell = store.cell(entity, at, VideoStream::DRAW_ORDER).ok()??;
    let values = cell
        .as_any()
        .downcast_ref::<vidlog_types::arrow_array::Float32Array>()?;
    (values.len() == 1 && !values.is_null(0)).then(|| values.value(0))
}

/// One sample as the viewer gets it.
pub struct SampleRecord<'a> {
    /// Decode index in the entity's stream.
    pub index: usize,
    pub is_keyframe: bool,
    /// Presentation time on the play timeline.
    pub pts: i64,
    /// The row's id: the producer's wall clock in ns when the sample was logged.
    pub row_id: u64,
    pub bytes: &'a [u8],
}

/// Appends one sample in the viewer's binary layout (all little-endian):
/// `u32 len | u8 is_keyframe | 3 zero bytes | i64 pts | u64 index | u64 row_id | len bytes`.
pub fn encode_sample(out: &mut Vec<u8>, sample: &SampleRecord) {
    // Samples are at most u32::MAX bytes: the store indexes their sizes as u32.
    out.extend_from_slice(&(sample.bytes.len() as u32).to_le_bytes());
    out.push(u8::from(sample.is_keyframe));
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&sample.pts.to_le_bytes());
    out.extend_from_slice(&(sample.index as u64).to_le_bytes());
    out.extend_from_slice(&sample.row_id.to_le_bytes());
    out.extend_from_slice(sample.bytes);
}

/// `GET /api/recordings/{id}/video/samples`: see the module documentation. `to` is
/// exclusive and defaults to the end; the answer may hold fewer samples than asked
/// ([`MAX_SAMPLES_PER_REQUEST`], [`MAX_BYTES_PER_REQUEST`]): ask again from the next index.
async fn samples(
    State(server): State<Server>,
    Path(id): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Result<Response, ViewError> {
    let recording = recording(&server, &id)?;
    let entity = entity(&query)?;
    let from = index_param("from", query.from.as_deref())?
        .ok_or_else(|| ViewError::bad_request("missing ?from=I (the first sample index)"))?;
    let to = index_param("to", query.to.as_deref())?;
    tokio::task::block_in_place(|| {
        let state = recording.state.read();
        let store = &state.store;
        let video = video_of(store, &entity)?;
        let timeline = play_timeline(&entity, video, query.timeline.as_deref())?;
        let len = video.len();
        if from > len {
            return Err(ViewError::bad_request(format!(
                "from={from} is past the end of {entity} ({len} samples)"
            )));
        }
        let to = to.unwrap_or(len).min(len);
        if to < from {
            return Err(ViewError::bad_request(format!(
                "to={to} is before from={from} (to is exclusive)"
            )));
        }
        let to = to.min(from.saturating_add(MAX_SAMPLES_PER_REQUEST));
        let mut body = Vec::new();
        for sample in store.video_samples(&entity, from..to) {
            let sample = sample.map_err(|e| ViewError::internal(e.to_string()))?;
            let bytes = sample.as_slice();
            if !body.is_empty()
                && body.len() + SAMPLE_HEADER_LEN + bytes.len() > MAX_BYTES_PER_REQUEST
            {
                break;
            }
            let pts = timeline.pts.get(sample.index).copied().unwrap_or(0);
            encode_sample(
                &mut body,
                &SampleRecord {
                    index: sample.index,
                    is_keyframe: sample.is_keyframe,
                    pts,
                    row_id: sample.row_id,
                    bytes,
                },
            );
        }
        Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response())
    })
}

/// `GET /ws/view`: parameters are checked before the upgrade (400/404 with a reason).
async fn live(
    State(server): State<Server>,
    Query(query): Query<ViewQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ViewError> {
    let id = query
        .recording
        .clone()
        .ok_or_else(|| ViewError::bad_request("missing ?recording=ID"))?;
    let recording = recording(&server, &id)?;
    let entity = entity(&query)?;
    if let Some(wanted) = query.timeline.as_deref() {
        // Checked now when the entity has samples, else when the first ones arrive.
        let state = recording.state.read();
        if let Some(video) = state.store.video(&entity).filter(|v| !v.is_empty()) {
            play_timeline(&entity, video, Some(wanted))?;
        }
    }
    let timeline = query.timeline;
    Ok(ws.on_upgrade(move |socket| follow(server, recording, entity, timeline, socket)))
}

/// Why a viewer's feed ended.
enum FeedEnd {
    /// The viewer closed or the connection broke.
    Gone,
    /// The server is shutting down.
    ShuttingDown,
    /// Something the viewer asked for cannot be served; the close frame says why.
    Refused(String),
}

async fn follow(
    server: Server,
    recording: Arc<LiveRecording>,
    entity: EntityPath,
    timeline: Option<String>,
    mut socket: WebSocket,
) {
    let mut shutdown = server.shutdown.clone();
    let end = tokio::select! {
        end = feed(&server, &recording, &entity, timeline, &mut socket) => end,
        _ = shutdown.wait_for(|stop| *stop) => FeedEnd::ShuttingDown,
    };
    match end {
        FeedEnd::Gone => {}
        FeedEnd::ShuttingDown => {
            crate::ingest::close(&mut socket, close_code::AWAY, "server shutting down").await
        }
        FeedEnd::Refused(reason) => {
            tracing::debug!("viewer of {entity} refused: {reason}");
            crate::ingest::close(&mut socket, close_code::POLICY, &reason).await;
        }
    }
}

/// What the feed has settled so far.
struct Feed {
    /// Samples before this decode index are not sent (the latest keyframe at join).
    start: usize,
    /// The timeline asked for (checked once samples exist), or the one picked.
    timeline: Option<String>,
    checked: bool,
    warned_missing_timeline: bool,
}

async fn feed(
    server: &Server,
    recording: &LiveRecording,
    entity: &EntityPath,
    timeline: Option<String>,
    socket: &mut WebSocket,
) -> FeedEnd {
    // A viewer that joins mid-stream starts at the latest keyframe there is now; the
    // subscription's backlog comes from the index (so from the file when evicted).
    let start = recording
        .state
        .read()
        .store
        .video(entity)
        .and_then(|v| v.keyframes().last().copied())
        .unwrap_or(0);
    let mut subscription = server.subscribe_video(&recording.id, entity, start);
    let mut feed = Feed {
        start,
        timeline,
        checked: false,
        warned_missing_timeline: false,
    };
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return FeedEnd::Gone,
                // The viewer has nothing to say yet; pings are answered by the WebSocket layer.
                Some(Ok(_)) => {}
            },
            chunk = subscription.recv() => {
                let Some(chunk) = chunk else {
                    return FeedEnd::ShuttingDown;
                };
                if chunk.entity() != entity || chunk.blobs(VideoStream::SAMPLE).is_none() {
                    continue;
                }
                let messages = match tokio::task::block_in_place(|| {
                    feed.messages(recording, entity, &chunk)
                }) {
                    Ok(messages) => messages,
                    Err(reason) => return FeedEnd::Refused(reason),
                };
                for message in messages {
                    if socket.send(Message::Binary(message)).await.is_err() {
                        return FeedEnd::Gone;
                    }
                }
            }
        }
    }
}

impl Feed {
    /// One message per sample of `chunk` at or after `start`: bytes and pts from the
    /// chunk's columns, the decode index and keyframe flag from the store's video index.
    fn messages(
        &mut self,
        recording: &LiveRecording,
        entity: &EntityPath,
        chunk: &Chunk,
    ) -> Result<Vec<Bytes>, String> {
        let state = recording.state.read();
        let Some(video) = state.store.video(entity) else {
            return Ok(Vec::new());
        };
        if !self.checked {
            let picked =
                play_timeline(entity, video, self.timeline.as_deref()).map_err(|e| e.message)?;
            self.timeline = Some(picked.name);
            self.checked = true;
        }
        let name = self.timeline.as_deref().unwrap_or_default();
        let (Some(column), Some(blobs)) = (chunk.timeline(name), chunk.blobs(VideoStream::SAMPLE))
        else {
            if !self.warned_missing_timeline {
                tracing::warn!(
                    "viewer of {entity}: a chunk without timeline {name:?} is not sent (its samples have no pts there)"
                );
                self.warned_missing_timeline = true;
            }
            return Ok(Vec::new());
        };
        let samples = video.samples();
        let mut out = Vec::new();
        for (row, &row_id) in chunk.row_ids().iter().enumerate() {
            if row >= blobs.len() || blobs.is_null(row) {
                continue;
            }
            let Ok(index) = samples.binary_search_by_key(&row_id, |s| s.row_id) else {
                continue;
            };
            if index < self.start {
                continue;
            }
            let bytes = blobs.value(row);
            let mut message = Vec::with_capacity(SAMPLE_HEADER_LEN + bytes.len());
            let pts = column.values.get(row).copied().unwrap_or(0);
            encode_sample(
                &mut message,
                &SampleRecord {
                    index,
                    is_keyframe: samples[index].is_keyframe(),
                    pts,
                    row_id,
                    bytes,
                },
            );
            out.push(Bytes::from(message));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_layout() {
        let mut out = Vec::new();
        let row_id = 1_763_000_000_123_456_789u64;
        encode_sample(
            &mut out,
            &SampleRecord {
                index: 7,
                is_keyframe: true,
                pts: -2,
                row_id,
                bytes: &[0, 0, 0, 1, 0x65],
            },
        );
        assert_eq!(out.len(), SAMPLE_HEADER_LEN + 5);
        assert_eq!(&out[0..4], &5u32.to_le_bytes());
        assert_eq!(out[4], 1);
        assert_eq!(&out[5..8], &[0, 0, 0]);
        assert_eq!(&out[8..16], &(-2i64).to_le_bytes());
        assert_eq!(&out[16..24], &7u64.to_le_bytes());
        assert_eq!(&out[24..32], &row_id.to_le_bytes());
        assert_eq!(&out[32..], &[0, 0, 0, 1, 0x65]);
    }

    #[test]
    fn web_files_are_embedded() {
        let index = WEB_FILES.iter().find(|f| f.path == "/").map(|f| f.body);
        let index = std::str::from_utf8(index.unwrap_or_default()).unwrap_or_default();
        assert!(index.contains("app.js"), "index.html loads app.js");
        assert!(!index.contains("://"), "no CDN or other remote URL");
    }
}
