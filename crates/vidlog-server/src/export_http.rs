//! `GET /api/recordings/{id}/export.mp4?entity=E[&timeline=T][&from=A][&to=B]`: one video
//! entity as a fragmented MP4, streamed as the response body (the viewer's "Download MP4").
//!
//! `from`/`to` are integers in the timeline's unit (ns for duration and timestamp
//! timelines), inclusive, as in `vidlog export`. The plan (samples, timing) is made from the
//! store's index when the request arrives, so a live recording exports what is stored then;
//! the bytes are then read in small batches under short read locks (ingest is never held up
//! by a slow download) by a blocking task that writes into a bounded channel the body
//! drains. Everything that can be refused is refused before the first byte: `404` for an
//! unknown recording or entity, `400` with `{"error": ...}` for a bad parameter, a codec
//! without MP4 support, or a parameter (SPS) change inside the range.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use vidlog_store::ChunkStore;
use vidlog_store::export::{
    ExportError, Mp4Export, ReadStore, file_name, pick_entity, pick_timeline,
};
use vidlog_video::mp4::Mp4Muxer;

use crate::Server;
use crate::recordings::LiveRecording;

/// Body bytes gathered before they are handed to the connection.
const BODY_PIECE: usize = 256 << 10;
/// Pieces in flight between the muxing task and the connection.
const BODY_PIECES_QUEUED: usize = 8;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExportQuery {
    entity: Option<String>,
    timeline: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn refuse_export(error: &ExportError) -> Response {
    let status = if error.is_not_found() {
        StatusCode::NOT_FOUND
    } else if error.is_internal() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    refuse(status, error.to_string())
}

/// An integer `from`/`to`; the refusal's text otherwise.
fn time_param(name: &str, text: Option<&str>) -> Result<Option<i64>, String> {
    text.map(|t| {
        t.parse::<i64>().map_err(|_| {
            format!(
                "{name}={t:?} is not an integer in the timeline's unit (nanoseconds for duration and timestamp timelines)"
            )
        })
    })
    .transpose()
}

impl ReadStore for LiveRecording {
    fn read_store<R>(&self, f: impl FnOnce(&ChunkStore) -> R) -> R {
        f(&self.state.read().store)
    }
}

pub(crate) async fn export_mp4(
    State(server): State<Server>,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Response {
    let Some(recording) = server
        .recordings
        .get(&id)
        .filter(|r| r.overview().is_some())
    else {
        return refuse(StatusCode::NOT_FOUND, format!("no recording {id:?}"));
    };
    let Some(entity) = query.entity.as_deref() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "missing ?entity=PATH (the video entity to export, e.g. camera/front)",
        );
    };
    let (from, to) = match (
        time_param("from", query.from.as_deref()),
        time_param("to", query.to.as_deref()),
    ) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(e), _) | (_, Err(e)) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let planned = tokio::task::block_in_place(|| {
        let state = recording.state.read();
        let store = &state.store;
        let entity = pick_entity(store, Some(entity))?;
        let video = store.video(&entity).ok_or(ExportError::NoVideo)?;
        let (timeline, _) = pick_timeline(video, query.timeline.as_deref(), &entity)?;
        let plan = Mp4Export::plan(store, &entity, &timeline, from, to)?;
        plan.single_segment()?;
        Ok::<_, ExportError>(plan)
    });
    let plan = match planned {
        Ok(plan) => plan,
        Err(e) => return refuse_export(&e),
    };
    let (started_tx, started) = oneshot::channel();
    let (body_tx, body_rx) = mpsc::channel(BODY_PIECES_QUEUED);
    let filename = file_name(&plan.entity);
    tokio::task::spawn_blocking(move || stream_mp4(&plan, &recording, started_tx, body_tx));
    match started.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return refuse_export(&e),
        Err(_) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the export task ended before starting",
            );
        }
    }
    (
        [
            (header::CONTENT_TYPE, "video/mp4".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(BodyPieces(body_rx)),
    )
        .into_response()
}

/// Runs on a blocking thread: starts the muxer (reporting refusals through `started`),
/// then writes every sample into the body channel.
fn stream_mp4(
    plan: &Mp4Export,
    recording: &LiveRecording,
    started: oneshot::Sender<Result<(), ExportError>>,
    body: mpsc::Sender<std::io::Result<Bytes>>,
) {
    let out = BodyWriter {
        piece: Vec::with_capacity(BODY_PIECE),
        tx: body.clone(),
    };
    let muxer = plan.sample_entry(recording, 0).and_then(|entry| {
        Mp4Muxer::new_streaming(out, entry, plan.segment_pts(0), plan.options(0, true)).map_err(
            |source| ExportError::Mp4 {
                entity: plan.entity.to_string(),
                source,
            },
        )
    });
    let muxer = match muxer {
        Ok(muxer) => {
            let _ = started.send(Ok(()));
            muxer
        }
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    if let Err(e) = plan.write_segment(muxer, recording, 0, |_| {}) {
        if body.is_closed() {
            tracing::debug!("export.mp4 of {}: the client left", plan.entity);
            return;
        }
        // Headers are sent: the best we can do is cut the body short (the client sees an
        // incomplete transfer, not a valid-looking truncated file).
        tracing::warn!(
            "recording {}: export.mp4 of {} failed: {e}",
            recording.id,
            plan.entity
        );
        let _ = body.blocking_send(Err(std::io::Error::other(e.to_string())));
    }
}

/// Gathers the muxer's output into pieces and hands them to the body channel, waiting
/// while the client is slow (bounded memory); the client leaving ends the export.
struct BodyWriter {
    piece: Vec<u8>,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
}

impl BodyWriter {
    fn send_piece(&mut self) -> std::io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(BODY_PIECE));
        self.tx
            .blocking_send(Ok(Bytes::from(piece)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))
    }
}

impl Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.piece.extend_from_slice(buf);
        if self.piece.len() >= BODY_PIECE {
            self.send_piece()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_piece()
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        let _ = self.send_piece();
    }
}

/// The body channel as a stream of pieces.
struct BodyPieces(mpsc::Receiver<std::io::Result<Bytes>>);

impl futures_core::Stream for BodyPieces {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
