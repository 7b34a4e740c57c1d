//! Server-decoded frames: the viewer's fallback for a codec the browser cannot decode
//! (H.265 in Linux Chromium). The server decodes natively (`vidlog_video::decode`) and
//! answers one picture per request.
//!
//! `GET /api/recordings/{id}/video/frame?entity=E&(sample=I|at=PTS)[&timeline=T]
//! [&quality=Q][&format=jpeg|rgba][&session=S]`: the frame presented at PTS (the latest
//! sample with pts <= PTS), or at sample I's pts, as a JPEG (quality 1-100, default
//! [`DEFAULT_QUALITY`]) or as raw RGBA8. Headers: `x-vidlog-pts` (the frame's pts),
//! `x-vidlog-sample` (its decode index), `x-vidlog-concealed` (`1` when the sample could
//! not be decoded and the last good frame stands in), `x-vidlog-width`, `x-vidlog-height`,
//! `x-vidlog-decoder` (the backend) and `x-vidlog-samples-decoded` (samples the session's
//! decoder has been fed so far).
//!
//! Each (recording, entity, timeline, session) keeps one [`VideoPlayer`] between requests,
//! so forward play feeds the running decoder one sample per frame and a short step back is
//! answered from its frame cache. Players read the live store through [`LiveSource`],
//! which holds the recording's lock only while it looks a sample up, never while decoding.
//! Decoding runs on Tokio's blocking pool, at most [`max_decoding`] requests at once.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use vidlog_store::store::video_source::StoreVideoSource;
use vidlog_types::{EntityPath, VideoCodec};
use vidlog_video::decode::{DecodeError, SampleSource, VideoPlayer, backend_for};

use crate::Server;
use crate::recordings::LiveRecording;
use crate::view::{ViewError, ViewQuery, entity, play_timeline, recording, video_of};

/// JPEG quality when the request names none.
pub const DEFAULT_QUALITY: u8 = 85;
/// Players kept at once (over all viewers; each holds its recording); the least recently
/// used goes first.
pub const MAX_PLAYERS: usize = 8;
/// Decoded frames each player keeps around its playhead, in bytes.
pub const PLAYER_CACHE_BYTES: usize = 64 << 20;

/// Requests decoding at once: one per core.
pub fn max_decoding() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The frame route, with its players and decoding limit.
pub(crate) fn router() -> Router<Server> {
    Router::new()
        .route("/api/recordings/{id}/video/frame", get(frame))
        .layer(Extension(Arc::new(FrameService {
            players: Mutex::new(Vec::new()),
            decoding: Arc::new(Semaphore::new(max_decoding())),
        })))
}

/// One stream of a live recording as a [`SampleSource`]: every call takes the recording's
/// read lock for the look-up only. Sample bytes are shared with the store's chunks (or read
/// back from the file when evicted), so the decoder works on them without the lock.
pub struct LiveSource {
    recording: Arc<LiveRecording>,
    entity: EntityPath,
    timeline: String,
}

impl LiveSource {
    fn with<R>(&self, default: R, f: impl FnOnce(&StoreVideoSource<'_>) -> R) -> R {
        let state = self.recording.state.read();
        match StoreVideoSource::new(&state.store, self.entity.clone(), &self.timeline) {
            Ok(source) => f(&source),
            Err(_) => default,
        }
    }
}

impl SampleSource for LiveSource {
    type Bytes = arrow_buffer::Buffer;

    fn name(&self) -> String {
        self.entity.to_string()
    }
    fn codec(&self) -> Option<VideoCodec> {
        self.recording.state.read().store.codec(&self.entity)
    }
    fn len(&self) -> usize {
        self.with(0, |s| s.len())
    }
    fn pts(&self, index: usize) -> Option<i64> {
        self.with(None, |s| s.pts(index))
    }
    fn is_keyframe(&self, index: usize) -> bool {
        self.with(false, |s| s.is_keyframe(index))
    }
    fn presented_at(&self, t: i64) -> Option<(usize, i64)> {
        self.with(None, |s| s.presented_at(t))
    }
    fn keyframe_before(&self, index: usize) -> Option<usize> {
        self.with(None, |s| s.keyframe_before(index))
    }
    fn bytes(&self, index: usize) -> Result<arrow_buffer::Buffer, String> {
        self.with(
            Err(format!(
                "{}: no video on timeline {}",
                self.entity, self.timeline
            )),
            |s| s.bytes(index),
        )
    }
}

type Player = VideoPlayer<LiveSource>;

/// Which player a request uses.
#[derive(Clone, PartialEq, Eq)]
struct PlayerKey {
    recording: String,
    entity: String,
    timeline: String,
    session: String,
}

struct PlayerSlot {
    key: PlayerKey,
    /// The recording the player reads (a recording reopened under the same id is another).
    recording: Arc<LiveRecording>,
    player: Arc<Mutex<Player>>,
    last_used: u64,
}

struct FrameService {
    players: Mutex<Vec<PlayerSlot>>,
    decoding: Arc<Semaphore>,
}

impl FrameService {
    /// The session's player, made (evicting the least recently used) when there is none.
    fn player(
        &self,
        recording: &Arc<LiveRecording>,
        entity: &EntityPath,
        key: PlayerKey,
    ) -> Arc<Mutex<Player>> {
        static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let now = CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut players = self.players.lock();
        if let Some(slot) = players
            .iter_mut()
            .find(|slot| slot.key == key && Arc::ptr_eq(&slot.recording, recording))
        {
            slot.last_used = now;
            return slot.player.clone();
        }
        if players.len() >= MAX_PLAYERS
            && let Some(oldest) = (0..players.len()).min_by_key(|&i| players[i].last_used)
        {
            players.swap_remove(oldest);
        }
        let source = LiveSource {
            recording: recording.clone(),
            entity: entity.clone(),
            timeline: key.timeline.clone(),
        };
        let player = Arc::new(Mutex::new(
            VideoPlayer::new(source).with_cache_bytes(PLAYER_CACHE_BYTES),
        ));
        players.push(PlayerSlot {
            key,
            recording: recording.clone(),
            player: player.clone(),
            last_used: now,
        });
        player
    }
}

/// How the picture is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Jpeg(u8),
    Rgba,
}

fn format_of(query: &ViewQuery) -> Result<Format, ViewError> {
    let quality = match query.quality.as_deref() {
        None => DEFAULT_QUALITY,
        Some(text) => text
            .parse::<u8>()
            .ok()
            .filter(|q| (1..=100).contains(q))
            .ok_or_else(|| {
                ViewError::bad_request(format!("quality={text:?} is not a JPEG quality 1-100"))
            })?,
    };
    match query.format.as_deref() {
        None | Some("jpeg") => Ok(Format::Jpeg(quality)),
        Some("rgba") => Ok(Format::Rgba),
        Some(other) => Err(ViewError::bad_request(format!(
            "format={other:?}: use jpeg (default) or rgba (raw RGBA8, width x height x 4 bytes)"
        ))),
    }
}

/// What the request settled before decoding.
struct Request {
    key: PlayerKey,
    t: i64,
    codec: VideoCodec,
}

fn settle(
    recording: &LiveRecording,
    entity: &EntityPath,
    query: &ViewQuery,
) -> Result<Request, ViewError> {
    let state = recording.state.read();
    let store = &state.store;
    let video = video_of(store, entity)?;
    let timeline = play_timeline(entity, video, query.timeline.as_deref())?;
    let t = match (query.sample.as_deref(), query.at.as_deref()) {
        (Some(text), _) => {
            let index = text.parse::<usize>().map_err(|_| {
                ViewError::bad_request(format!(
                    "sample={text:?} is not a sample index (0, 1, 2 ... in decode order)"
                ))
            })?;
            *timeline.pts.get(index).ok_or_else(|| {
                ViewError::bad_request(format!(
                    "sample={index} is past the end of {entity} ({} samples)",
                    timeline.pts.len()
                ))
            })?
        }
        (None, Some(text)) => text.parse::<i64>().map_err(|_| {
            ViewError::bad_request(format!(
                "at={text:?} is not a time on timeline {} (an integer pts)",
                timeline.name
            ))
        })?,
        (None, None) => {
            return Err(ViewError::bad_request(
                "missing ?sample=I (decode index) or ?at=PTS (the time to show)",
            ));
        }
    };
    let codec = store.codec(entity).ok_or_else(|| {
        ViewError::bad_request(format!(
            "no codec logged for {entity}: log VideoStream::new(codec) as static data"
        ))
    })?;
    Ok(Request {
        key: PlayerKey {
            recording: recording.id.clone(),
            entity: entity.to_string(),
            timeline: timeline.name,
            session: query.session.clone().unwrap_or_default(),
        },
        t,
        codec,
    })
}

fn decode_error(error: DecodeError) -> ViewError {
    let status = match error {
        DecodeError::NoBackend { .. } | DecodeError::Unsupported { .. } => {
            StatusCode::NOT_IMPLEMENTED
        }
        DecodeError::Corrupt(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DecodeError::Backend { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ViewError::with_status(status, error.to_string())
}

/// A decoded picture ready to send.
struct Encoded {
    body: Vec<u8>,
    content_type: &'static str,
    pts: i64,
    sample: usize,
    concealed: bool,
    width: u32,
    height: u32,
    decoder: &'static str,
    samples_decoded: u64,
}

fn decode_and_encode(player: &Mutex<Player>, t: i64, format: Format) -> Result<Encoded, ViewError> {
    let mut player = player.lock();
    let presented = player.frame_at(t).map_err(|error| match error {
        vidlog_video::decode::player::PlayerError::Decoder { source, .. } => decode_error(source),
        other => ViewError::with_status(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    })?;
    let presented = presented.ok_or_else(|| {
        ViewError::not_found(format!(
            "{}: no frame at {t}: the first sample is later",
            player.source().name()
        ))
    })?;
    let decoder = player.backend_name().unwrap_or("?");
    let samples_decoded = player.stats().samples_decoded;
    drop(player);
    let frame = &presented.frame;
    let (body, content_type) = match format {
        Format::Rgba => (frame.to_rgba(), "application/octet-stream"),
        Format::Jpeg(quality) => {
            let too_big = || {
                ViewError::with_status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "{}x{} is too large for JPEG (65535 at most): ask format=rgba",
                        frame.width, frame.height
                    ),
                )
            };
            let width = u16::try_from(frame.width).map_err(|_| too_big())?;
            let height = u16::try_from(frame.height).map_err(|_| too_big())?;
            (encode_jpeg(frame, width, height, quality)?, "image/jpeg")
        }
    };
    Ok(Encoded {
        body,
        content_type,
        pts: presented.sample_pts,
        sample: presented.sample,
        concealed: presented.concealed,
        width: frame.width,
        height: frame.height,
        decoder,
        samples_decoded,
    })
}

/// A frame's planes as the YCbCr rows a JPEG encoder takes: straight from the decoder's YUV,
/// no RGB in between.
struct JpegRows<'a> {
    rows: vidlog_video::decode::JfifRows<'a>,
    width: u16,
    height: u16,
}

impl jpeg_encoder::ImageBuffer for JpegRows<'_> {
    fn get_jpeg_color_type(&self) -> jpeg_encoder::JpegColorType {
        jpeg_encoder::JpegColorType::Ycbcr
    }
    fn width(&self) -> u16 {
        self.width
    }
    fn height(&self) -> u16 {
        self.height
    }
    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let [luma, cb, cr, _] = buffers;
        self.rows.fill_row(usize::from(y), luma, cb, cr);
    }
}

fn encode_jpeg(
    frame: &vidlog_video::decode::Frame,
    width: u16,
    height: u16,
    quality: u8,
) -> Result<Vec<u8>, ViewError> {
    jpeg_of(frame, width, height, quality)
        .map_err(|e| ViewError::internal(format!("encoding the JPEG: {e}")))
}

/// A JPEG (4:2:0, like the video) of `frame` at `quality` (1-100), encoded straight from its
/// YUV planes: what the server sends a viewer for a codec the browser cannot decode.
pub fn jpeg_of(
    frame: &vidlog_video::decode::Frame,
    width: u16,
    height: u16,
    quality: u8,
) -> Result<Vec<u8>, jpeg_encoder::EncodingError> {
    // About a quarter byte per pixel at usual qualities (sizing only: i420() would pack a
    // frame kept in the decoder's buffers).
    let mut jpeg = Vec::with_capacity(usize::from(width) * usize::from(height) / 4);
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder.encode_image(JpegRows {
        rows: frame.jfif(),
        width,
        height,
    })?;
    Ok(jpeg)
}

async fn frame(
    State(server): State<Server>,
    Extension(service): Extension<Arc<FrameService>>,
    Path(id): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Result<Response, ViewError> {
    let recording = recording(&server, &id)?;
    let entity = entity(&query)?;
    let format = format_of(&query)?;
    let request = settle(&recording, &entity, &query)?;
    backend_for(request.codec).map_err(decode_error)?;
    let player = service.player(&recording, &entity, request.key);
    let _permit = service
        .decoding
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ViewError::internal("the server is shutting down"))?;
    let t = request.t;
    let encoded = tokio::task::spawn_blocking(move || decode_and_encode(&player, t, format))
        .await
        .map_err(|e| ViewError::internal(format!("decoding stopped: {e}")))??;
    let mut response = (
        [
            (header::CONTENT_TYPE, encoded.content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        encoded.body,
    )
        .into_response();
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("x-vidlog-pts", encoded.pts.to_string());
    put("x-vidlog-sample", encoded.sample.to_string());
    put(
        "x-vidlog-concealed",
        u8::from(encoded.concealed).to_string(),
    );
    put("x-vidlog-width", encoded.width.to_string());
    put("x-vidlog-height", encoded.height.to_string());
    put("x-vidlog-decoder", encoded.decoder.to_owned());
    put(
        "x-vidlog-samples-decoded",
        encoded.samples_decoded.to_string(),
    );
    Ok(response)
}
