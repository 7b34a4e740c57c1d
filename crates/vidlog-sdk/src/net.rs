//! The network sink: streams a recording to a `vidlog serve` server over WebSocket
//! (docs/PROTOCOL.md).
//!
//! [`NetworkSink::send`] only queues; a sender thread owns the connection (a blocking
//! `tungstenite` client over a `TcpStream`: the SDK has no async runtime). Per connection
//! it says hello, sends the `RecordingInfo`, then every queued chunk as frames from a
//! fresh `MessageEncoder` (so schemas are sent again after a reconnect). The server acks
//! chunks once stored; a chunk is forgotten only when acked, so after a reconnect every
//! unacknowledged chunk is sent again (the server ignores the ones it already had).
//!
//! When the server goes away the thread reconnects with exponential backoff, and chunks
//! wait in memory up to [`NetworkOptions::buffer_bytes`]. Above that, whole GOPs are
//! dropped, oldest first, with a warning: a video entity's chunks are dropped up to the
//! next chunk that starts with a keyframe (its `VideoStream:is_keyframe` column, or a probe
//! of its first sample with the codec logged statically), so the stream never resumes on
//! a frame a decoder cannot start from. Static chunks are never dropped.
//!
//! Sample bytes are copied once here (into the WebSocket message: client frames are
//! masked, which needs a copy anyway).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::Deserialize;
use tungstenite::Message;
use tungstenite::protocol::WebSocket;
use vidlog_store::RecordingInfo;
use vidlog_store::codec::{EncodedMessage, MessageEncoder, encode_recording_info};
use vidlog_types::arrow_array::Array;
use vidlog_types::{Chunk, EntityPath, VideoCodec, VideoStream};
use vidlog_video::probe::probe_sample;

use crate::sink::{Sink, SinkError};

/// The protocol version this SDK speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Where servers listen for producers.
pub const INGEST_PATH: &str = "/ws/ingest";

/// How the network sink behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkOptions {
    /// How long `connect` waits for the first handshake before returning anyway (it then
    /// keeps trying in the background).
    pub connect_timeout: Duration,
    /// Bytes of chunks kept while the server does not take them; above it whole GOPs
    /// are dropped, oldest first.
    pub buffer_bytes: usize,
    /// How long `flush` and `close` wait for the server to acknowledge everything.
    pub flush_timeout: Duration,
    /// The longest pause between reconnection attempts (starts at 50 ms, doubles).
    pub max_backoff: Duration,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            connect_timeout: Duration::from_secs(5),
            buffer_bytes: 64 << 20,
            flush_timeout: Duration::from_secs(30),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// Chunks not yet acknowledged by the server, and the connection's state.
#[derive(Default)]
struct Queue {
    /// Oldest first. The first `sent` were sent on the current connection.
    unacked: VecDeque<Arc<Chunk>>,
    sent: usize,
    bytes: usize,
    codecs: HashMap<EntityPath, VideoCodec>,
    /// Entities whose chunks are dropped until one starts with a keyframe.
    needs_keyframe: HashSet<EntityPath>,
    dropped_chunks: u64,
    connected: bool,
    handshakes: u64,
    /// The server refused us (e.g. another protocol version): no more attempts.
    refused: Option<String>,
    last_error: Option<String>,
    stop: bool,
}

struct Shared {
    url: String,
    host_port: String,
    info: RecordingInfo,
    options: NetworkOptions,
    queue: Mutex<Queue>,
    changed: Condvar,
}

/// See the module documentation.
pub struct NetworkSink {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl NetworkSink {
    /// Starts streaming `info`'s recording to `addr` (`host:port` or `ws://host:port`).
    ///
    /// Waits up to `options.connect_timeout` for the first handshake. A server that
    /// refuses the handshake (another protocol version) is an error; a server that cannot
    /// be reached yet is not: the sink keeps trying in the background and buffers.
    pub fn connect(
        addr: &str,
        info: RecordingInfo,
        options: NetworkOptions,
    ) -> Result<Self, SinkError> {
        let host_port = addr
            .trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_owned();
        if host_port.is_empty() || host_port.contains('/') {
            return Err(SinkError(format!(
                "server address {addr:?}: expected host:port, e.g. 127.0.0.1:9877"
            )));
        }
        let shared = Arc::new(Shared {
            url: format!("ws://{host_port}{INGEST_PATH}"),
            host_port,
            info,
            options,
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("vidlog-net".into())
                .spawn(move || connection_loop(&shared))
                .map_err(|e| SinkError(format!("spawning the network thread: {e}")))?
        };
        let sink = NetworkSink {
            shared,
            thread: Mutex::new(Some(thread)),
        };
        let deadline = Instant::now() + options.connect_timeout;
        let mut q = sink.shared.queue.lock();
        while q.handshakes == 0 && q.refused.is_none() {
            if sink.shared.changed.wait_until(&mut q, deadline).timed_out() {
                break;
            }
        }
        if let Some(reason) = q.refused.clone() {
            drop(q);
            sink.stop();
            return Err(SinkError(reason));
        }
        if q.handshakes == 0 {
            tracing::warn!(
                "vidlog: no server at {} yet ({}); buffering and retrying in the background",
                sink.shared.host_port,
                q.last_error.as_deref().unwrap_or("no answer")
            );
        }
        drop(q);
        Ok(sink)
    }

    /// Whether the sink is connected right now.
    pub fn is_connected(&self) -> bool {
        self.shared.queue.lock().connected
    }

    /// Chunks dropped because the buffer was full.
    pub fn dropped_chunks(&self) -> u64 {
        self.shared.queue.lock().dropped_chunks
    }

    /// Successful handshakes so far (1 + reconnects).
    pub fn connections(&self) -> u64 {
        self.shared.queue.lock().handshakes
    }

    /// Waits until the server acknowledged every chunk, or `timeout`.
    fn wait_acked(&self, timeout: Duration) -> Result<(), SinkError> {
        let deadline = Instant::now() + timeout;
        let mut q = self.shared.queue.lock();
        loop {
            if let Some(reason) = &q.refused {
                return Err(SinkError(reason.clone()));
            }
            if q.unacked.is_empty() {
                return Ok(());
            }
            if self.shared.changed.wait_until(&mut q, deadline).timed_out() {
                return Err(SinkError(format!(
                    "server {} did not acknowledge {} chunks within {timeout:?} ({})",
                    self.shared.host_port,
                    q.unacked.len(),
                    if q.connected {
                        "connected".to_owned()
                    } else {
                        format!(
                            "not connected: {}",
                            q.last_error.as_deref().unwrap_or("no answer")
                        )
                    }
                )));
            }
        }
    }

    fn stop(&self) {
        self.shared.queue.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Sink for NetworkSink {
    fn send(&self, chunk: Arc<Chunk>) -> Result<(), SinkError> {
        let mut q = self.shared.queue.lock();
        if let Some(reason) = &q.refused {
            return Err(SinkError(reason.clone()));
        }
        if chunk.is_static()
            && let Some(codec) = chunk.codec()
        {
            q.codecs.insert(chunk.entity().clone(), codec);
        }
        if q.needs_keyframe.contains(chunk.entity()) && !chunk.is_static() {
            if starts_with_keyframe(&chunk, &q.codecs) {
                q.needs_keyframe.remove(chunk.entity());
            } else {
                q.dropped_chunks += 1;
                return Ok(());
            }
        }
        q.bytes += chunk_bytes(&chunk);
        q.unacked.push_back(chunk);
        let bound = self.shared.options.buffer_bytes;
        if q.bytes > bound {
            let dropped = drop_oldest_gops(&mut q, bound);
            if dropped > 0 {
                tracing::warn!(
                    "vidlog: server {} is not keeping up or not there: dropped {dropped} chunks (whole GOPs, oldest first) to stay under {bound} buffered bytes",
                    self.shared.host_port
                );
            }
        }
        drop(q);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Waits until the server acknowledged everything sent so far.
    fn flush(&self) -> Result<(), SinkError> {
        self.wait_acked(self.shared.options.flush_timeout)
    }

    /// Flushes (up to the flush timeout), then closes the connection.
    fn close(&self) -> Result<(), SinkError> {
        let result = self.wait_acked(self.shared.options.flush_timeout);
        self.stop();
        result
    }
}

impl Drop for NetworkSink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn chunk_bytes(chunk: &Chunk) -> usize {
    chunk.heap_size()
}

/// Whether a decoder can start at the chunk's first sample. Unknown (no keyframe column,
/// no codec logged) counts as yes: dropping cannot wait for what it cannot see.
fn starts_with_keyframe(chunk: &Chunk, codecs: &HashMap<EntityPath, VideoCodec>) -> bool {
    if let Some(flags) = chunk.bools(VideoStream::IS_KEYFRAME)
        && !flags.is_empty()
        && flags.is_valid(0)
    {
        return flags.value(0);
    }
    let Some(samples) = chunk.blobs(VideoStream::SAMPLE) else {
        return true;
    };
    let Some(codec) = codecs.get(chunk.entity()) else {
        return true;
    };
    if samples.is_empty() {
        return true;
    }
    probe_sample(*codec, samples.value(0)).is_ok_and(|p| p.is_keyframe)
}

/// Drops unsent temporal chunks, oldest first and whole GOPs at a time, until the
/// queue is within `bound`. Returns how many were dropped.
fn drop_oldest_gops(q: &mut Queue, bound: usize) -> u64 {
    let mut dropped = 0;
    while q.bytes > bound {
        let sent = q.sent;
        let Some(at) = (sent..q.unacked.len()).find(|&i| !q.unacked[i].is_static()) else {
            break;
        };
        let Some(first) = q.unacked.remove(at) else {
            break;
        };
        q.bytes -= chunk_bytes(&first);
        dropped += 1;
        if first.blobs(VideoStream::SAMPLE).is_none() {
            continue;
        }
        // The rest of this GOP: the entity's chunks up to one that starts with a keyframe.
        let entity = first.entity().clone();
        let mut i = at;
        let mut resumed = false;
        while i < q.unacked.len() {
            let chunk = &q.unacked[i];
            if chunk.entity() != &entity || chunk.is_static() {
                i += 1;
                continue;
            }
            if starts_with_keyframe(chunk, &q.codecs) {
                resumed = true;
                break;
            }
            if let Some(gone) = q.unacked.remove(i) {
                q.bytes -= chunk_bytes(&gone);
                dropped += 1;
            }
        }
        if !resumed {
            q.needs_keyframe.insert(entity);
        }
    }
    q.dropped_chunks += dropped;
    dropped
}

/// The server's text messages.
#[derive(Deserialize)]
#[serde(untagged)]
enum Reply {
    Ack { stored: u64 },
    Error { error: String },
    Welcome { ok: bool },
}

/// Why a connection ended.
enum Ended {
    /// The sink is closing.
    Stop,
    /// The server refused us for good.
    Refused(String),
    /// The connection failed; try again.
    Lost(String),
}

fn connection_loop(shared: &Shared) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if shared.queue.lock().stop {
            return;
        }
        let ended = match handshake(shared) {
            Ok(mut ws) => {
                backoff = Duration::from_millis(50);
                let ended = stream_chunks(shared, &mut ws);
                if matches!(ended, Ended::Stop) {
                    let _ = ws.close(None);
                    let _ = ws.flush();
                }
                ended
            }
            Err(ended) => ended,
        };
        let mut q = shared.queue.lock();
        q.connected = false;
        q.sent = 0;
        match ended {
            Ended::Stop => return,
            Ended::Refused(reason) => {
                tracing::error!("vidlog: server {} refused us: {reason}", shared.host_port);
                q.refused = Some(reason);
                drop(q);
                shared.changed.notify_all();
                return;
            }
            Ended::Lost(reason) => {
                tracing::debug!("vidlog: connection to {}: {reason}", shared.host_port);
                q.last_error = Some(reason);
            }
        }
        shared.changed.notify_all();
        let until = Instant::now() + backoff;
        while !q.stop {
            if shared.changed.wait_until(&mut q, until).timed_out() {
                break;
            }
        }
        backoff = (backoff * 2).min(shared.options.max_backoff);
    }
}

type Socket = WebSocket<TcpStream>;

fn lost(e: impl std::fmt::Display) -> Ended {
    Ended::Lost(e.to_string())
}

fn resolve(host_port: &str) -> Result<SocketAddr, Ended> {
    host_port
        .to_socket_addrs()
        .map_err(lost)?
        .next()
        .ok_or_else(|| Ended::Lost(format!("{host_port} resolves to no address")))
}

/// Connects, says hello, and sends the recording info.
fn handshake(shared: &Shared) -> Result<Socket, Ended> {
    let addr = resolve(&shared.host_port)?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(lost)?;
    stream.set_nodelay(true).map_err(lost)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(lost)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(lost)?;
    let (mut ws, _) = tungstenite::client(shared.url.as_str(), stream).map_err(lost)?;
    let hello =
        format!(r#"{{"protocol":"vidlog","version":{PROTOCOL_VERSION},"role":"producer"}}"#);
    ws.send(Message::text(hello)).map_err(lost)?;
    loop {
        match ws.read().map_err(lost)? {
            Message::Text(text) => match serde_json::from_str::<Reply>(text.as_str()) {
                Ok(Reply::Welcome { ok: true }) => break,
                Ok(Reply::Error { error }) => return Err(Ended::Refused(error)),
                _ => return Err(Ended::Refused(format!("unexpected hello reply {text}"))),
            },
            Message::Close(frame) => {
                return Err(Ended::Lost(format!("closed during the hello: {frame:?}")));
            }
            _ => {}
        }
    }
    send_message(&mut ws, &encode_recording_info(&shared.info))?;
    let mut q = shared.queue.lock();
    q.connected = true;
    q.handshakes += 1;
    q.sent = 0;
    drop(q);
    shared.changed.notify_all();
    tracing::info!("vidlog: streaming to {}", shared.url);
    Ok(ws)
}

fn send_message(ws: &mut Socket, message: &EncodedMessage) -> Result<(), Ended> {
    let mut bytes = Vec::with_capacity(16 + message.payload_len());
    message.frame().write_to(&mut bytes).map_err(lost)?;
    ws.send(Message::binary(bytes)).map_err(lost)
}

/// Sends queued chunks and reads acks until the connection ends or the sink stops.
fn stream_chunks(shared: &Shared, ws: &mut Socket) -> Ended {
    let mut encoder = MessageEncoder::new();
    let mut acked_here = 0u64;
    loop {
        let next = {
            let mut q = shared.queue.lock();
            if q.stop {
                return Ended::Stop;
            }
            let next = q.unacked.get(q.sent).cloned();
            if next.is_some() {
                q.sent += 1;
            }
            next
        };
        let wait = match next {
            Some(chunk) => {
                let messages = match encoder.encode_chunk(&chunk) {
                    Ok(m) => m,
                    Err(e) => return Ended::Refused(format!("encoding a chunk: {e}")),
                };
                for message in &messages {
                    if let Err(e) = send_message(ws, message) {
                        return e;
                    }
                }
                None
            }
            None => Some(Duration::from_millis(5)),
        };
        if let Err(e) = read_replies(shared, ws, wait, &mut acked_here) {
            return e;
        }
    }
}

/// Reads what the server sent: waits up to `wait` for the first message (or not at
/// all), then takes whatever else is there without waiting.
fn read_replies(
    shared: &Shared,
    ws: &mut Socket,
    wait: Option<Duration>,
    acked_here: &mut u64,
) -> Result<(), Ended> {
    let mut wait = wait;
    loop {
        match wait {
            Some(d) => {
                ws.get_mut().set_nonblocking(false).map_err(lost)?;
                ws.get_mut().set_read_timeout(Some(d)).map_err(lost)?;
            }
            None => ws.get_mut().set_nonblocking(true).map_err(lost)?,
        }
        let read = ws.read();
        wait = None;
        match read {
            Ok(Message::Text(text)) => match serde_json::from_str::<Reply>(text.as_str()) {
                Ok(Reply::Ack { stored }) => {
                    let mut q = shared.queue.lock();
                    let newly = stored.saturating_sub(*acked_here) as usize;
                    *acked_here = stored.max(*acked_here);
                    for _ in 0..newly.min(q.sent) {
                        if let Some(chunk) = q.unacked.pop_front() {
                            q.bytes -= chunk_bytes(&chunk);
                            q.sent -= 1;
                        }
                    }
                    drop(q);
                    shared.changed.notify_all();
                }
                Ok(Reply::Error { error }) => {
                    let _ = ws.get_mut().set_nonblocking(false);
                    return Err(Ended::Lost(format!("server error: {error}")));
                }
                _ => {}
            },
            Ok(Message::Close(frame)) => {
                let _ = ws.get_mut().set_nonblocking(false);
                return Err(Ended::Lost(format!(
                    "server closed the connection: {frame:?}"
                )));
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                break;
            }
            Err(e) => {
                let _ = ws.get_mut().set_nonblocking(false);
                return Err(lost(e));
            }
        }
    }
    ws.get_mut().set_nonblocking(false).map_err(lost)?;
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(lost)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidlog_types::chunk::{build_chunk, chunk_schema};
    use vidlog_types::{AsComponents, ChunkId, PendingRow, RowId, TimeCell, TimePoint};

    /// A one-row chunk whose sample is `key` or not by its `is_keyframe` column.
    fn video_chunk(entity: &str, id: u64, key: bool) -> Arc<Chunk> {
        let entity = EntityPath::parse(entity).unwrap();
        let cells = VideoStream::from_sample(vec![0u8; 1000])
            .with_keyframe(key)
            .as_components();
        let row = PendingRow {
            row_id: RowId(id),
            time: TimePoint::new().with("frame", TimeCell::from_sequence(id as i64)),
            cells,
        };
        let schema = Arc::new(chunk_schema(&entity, &row.batch_key()));
        Arc::new(build_chunk(ChunkId(id), &entity, schema, &[row]).unwrap())
    }

    #[test]
    fn dropping_takes_whole_gops_and_waits_for_a_keyframe() {
        let mut q = Queue::default();
        // GOPs of 3 on `a`: K P P K P P ...; one chunk of `b` in between.
        for i in 0..9u64 {
            let chunk = video_chunk("a", i, i % 3 == 0);
            q.bytes += chunk_bytes(&chunk);
            q.unacked.push_back(chunk);
            if i == 1 {
                let b = video_chunk("b", 100, true);
                q.bytes += chunk_bytes(&b);
                q.unacked.push_back(b);
            }
        }
        let one = chunk_bytes(&q.unacked[0]);
        let bound = q.bytes - one;
        let dropped = drop_oldest_gops(&mut q, bound);
        assert_eq!(dropped, 3, "the whole first GOP goes");
        assert_eq!(q.unacked[0].entity().to_string(), "b");
        assert_eq!(q.unacked[1].id(), ChunkId(3));
        assert!(q.needs_keyframe.is_empty());
        // Dropping everything of `a` leaves it waiting for a keyframe.
        let dropped = drop_oldest_gops(&mut q, 0);
        assert_eq!(dropped, 7);
        assert!(q.unacked.is_empty() && q.bytes == 0);
        assert!(q.needs_keyframe.contains(&EntityPath::parse("a").unwrap()));
    }
}
