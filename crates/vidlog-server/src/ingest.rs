//! Producer connections at `GET /ws/ingest`: the hello, then one frame per binary
//! message, decoded with `vidlog_store`'s codec and stored; an ack after every chunk.
//!
//! Anything malformed (not a frame, a length that disagrees with the message, a bad
//! checksum, a chunk before its schema, a chunk whose arrays do not fit the schema it
//! names, text after the hello ...) ends the connection
//! with an `{"error": ...}` message and a close frame. Everything well-formed before it
//! stays stored; other connections are not affected. Frame handling is synchronous
//! (decode, file write, index) and runs in `block_in_place`.

use std::sync::Arc;
use std::time::Duration;

use arrow_buffer::Buffer;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use bytes::Bytes;
use vidlog_store::codec::{Decoded, MessageDecoder};
use vidlog_store::frame::{FRAME_HEADER_LEN, FrameHeader, MessageKind, checksum};

use crate::Server;
use crate::protocol::{ServerMessage, check_hello};
use crate::recordings::{LiveRecording, Stored};

/// How long a new connection has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a producer's connection is closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IngestError {
    #[error(
        "message {index}: {len} bytes is shorter than a frame header ({FRAME_HEADER_LEN} bytes)"
    )]
    Truncated { index: u64, len: usize },
    #[error("message {index}: {source}")]
    Header {
        index: u64,
        source: vidlog_store::frame::FrameError,
    },
    #[error("message {index}: frame says {declared} payload bytes, the limit is {limit}")]
    TooLarge {
        index: u64,
        declared: u64,
        limit: usize,
    },
    #[error(
        "message {index}: frame says {declared} payload bytes, the message carries {actual} (one frame per message)"
    )]
    LengthMismatch {
        index: u64,
        declared: u64,
        actual: usize,
    },
    #[error(
        "message {index}: payload checksum {actual:#010x} does not match the header's {expected:#010x}"
    )]
    Checksum {
        index: u64,
        expected: u32,
        actual: u32,
    },
    #[error("message {index}: {what} before the RecordingInfo message")]
    NoRecordingYet { index: u64, what: &'static str },
    #[error(
        "message {index}: a second recording ({second:?}) on a connection already sending {first:?}"
    )]
    SecondRecording {
        index: u64,
        first: String,
        second: String,
    },
    #[error("message {index}: footers are not sent over sockets")]
    Footer { index: u64 },
    #[error("message {index}: {source}")]
    Decode {
        index: u64,
        source: vidlog_store::codec::DecodeError,
    },
    #[error("message {index}: {source}")]
    Store {
        index: u64,
        source: crate::recordings::StoreChunkError,
    },
    #[error("text message after the hello: only binary frames are accepted now")]
    Text,
    #[error("{0}")]
    Hello(String),
    #[error("no hello within {HELLO_TIMEOUT:?}")]
    HelloTimeout,
    #[error("websocket: {0}")]
    Transport(String),
}

impl IngestError {
    fn close_code(&self) -> u16 {
        match self {
            IngestError::TooLarge { .. } => close_code::SIZE,
            IngestError::Text => close_code::UNSUPPORTED,
            IngestError::Store { .. } => close_code::ERROR,
            IngestError::HelloTimeout | IngestError::Hello(_) => close_code::POLICY,
            _ => close_code::PROTOCOL,
        }
    }
}

pub(crate) async fn upgrade(State(server): State<Server>, ws: WebSocketUpgrade) -> Response {
    let limit = server.config.max_message_size;
    ws.max_message_size(limit.saturating_add(FRAME_HEADER_LEN))
        .max_frame_size(limit.saturating_add(FRAME_HEADER_LEN))
        .on_upgrade(move |socket| producer_connection(server, socket))
}

async fn producer_connection(server: Server, mut socket: WebSocket) {
    let mut shutdown = server.shutdown.clone();
    let result = tokio::select! {
        r = run(&server, &mut socket) => Some(r),
        _ = shutdown.wait_for(|stop| *stop) => None,
    };
    let Some(result) = result else {
        close(&mut socket, close_code::AWAY, "server shutting down").await;
        return;
    };
    match result {
        Ok(()) => {}
        Err(IngestError::Transport(e)) => tracing::debug!("producer connection ended: {e}"),
        Err(e) => {
            tracing::warn!("producer refused: {e}");
            let text = ServerMessage::Error {
                error: e.to_string(),
            }
            .to_json();
            let _ = socket.send(Message::Text(text.into())).await;
            close(&mut socket, e.close_code(), &e.to_string()).await;
        }
    }
}

/// Sends a close frame with `reason` (cut to fit) and finishes the closing handshake.
pub(crate) async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    // A close reason is at most 123 bytes.
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    // Finish the closing handshake: read (and drop) what the client still sends until its
    // close, so our socket does not close with unread data (a reset would lose our error).
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// The hello, then frames until the producer closes or errs.
async fn run(server: &Server, socket: &mut WebSocket) -> Result<(), IngestError> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, socket.recv())
        .await
        .map_err(|_| IngestError::HelloTimeout)?;
    match first {
        None => return Ok(()),
        Some(Err(e)) => return Err(IngestError::Transport(e.to_string())),
        Some(Ok(Message::Text(text))) => {
            check_hello(text.as_str()).map_err(IngestError::Hello)?;
        }
        Some(Ok(_)) => {
            return Err(IngestError::Hello(
                "the first message must be a text hello".into(),
            ));
        }
    }
    send_text(socket, &ServerMessage::welcome()).await?;
    let mut session = ProducerSession::new(server.clone());
    while let Some(message) = socket.recv().await {
        let message = message.map_err(|e| IngestError::Transport(e.to_string()))?;
        match message {
            Message::Binary(bytes) => {
                let acked = tokio::task::block_in_place(|| session.take(bytes))?;
                if let Some(stored) = acked {
                    send_text(socket, &ServerMessage::Ack { stored }).await?;
                }
            }
            Message::Text(_) => return Err(IngestError::Text),
            Message::Close(_) => return Ok(()),
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    Ok(())
}

async fn send_text(socket: &mut WebSocket, message: &ServerMessage) -> Result<(), IngestError> {
    socket
        .send(Message::Text(message.to_json().into()))
        .await
        .map_err(|e| IngestError::Transport(e.to_string()))
}

/// One producer connection's decoding state.
struct ProducerSession {
    server: Server,
    decoder: MessageDecoder,
    recording: Option<Arc<LiveRecording>>,
    messages: u64,
    chunks: u64,
}

impl ProducerSession {
    fn new(server: Server) -> Self {
        ProducerSession {
            server,
            decoder: MessageDecoder::new(),
            recording: None,
            messages: 0,
            chunks: 0,
        }
    }

    /// Takes one binary message; returns the ack count after a chunk.
    fn take(&mut self, message: Bytes) -> Result<Option<u64>, IngestError> {
        let index = self.messages;
        self.messages += 1;
        let (kind, payload) = check_frame(index, message, self.server.config.max_message_size)?;
        if kind == MessageKind::Footer as u8 {
            return Err(IngestError::Footer { index });
        }
        if kind != MessageKind::RecordingInfo as u8 && self.recording.is_none() {
            return Err(IngestError::NoRecordingYet {
                index,
                what: if kind == MessageKind::Chunk as u8 {
                    "a chunk"
                } else {
                    "a message"
                },
            });
        }
        let decoded = self
            .decoder
            .decode(kind, Buffer::from(payload))
            .map_err(|source| IngestError::Decode { index, source })?;
        match decoded {
            Decoded::RecordingInfo(info) => {
                if let Some(recording) = &self.recording {
                    if recording.id != info.recording_id {
                        return Err(IngestError::SecondRecording {
                            index,
                            first: recording.id.clone(),
                            second: info.recording_id,
                        });
                    }
                    return Ok(None);
                }
                let recording = self
                    .server
                    .recordings
                    .attach_producer(&info)
                    .map_err(|source| IngestError::Store { index, source })?;
                self.recording = Some(recording);
                Ok(None)
            }
            Decoded::Schema { .. } => Ok(None),
            Decoded::Chunk(chunk) => {
                let Some(recording) = &self.recording else {
                    return Err(IngestError::NoRecordingYet {
                        index,
                        what: "a chunk",
                    });
                };
                let stored = self
                    .server
                    .recordings
                    .store_chunk(recording, chunk)
                    .map_err(|source| IngestError::Store { index, source })?;
                if stored == Stored::Duplicate {
                    tracing::debug!("recording {}: resent chunk ignored", recording.id);
                }
                self.chunks += 1;
                Ok(Some(self.chunks))
            }
            Decoded::Footer(_) => Err(IngestError::Footer { index }),
        }
    }
}

impl Drop for ProducerSession {
    fn drop(&mut self) {
        if let Some(recording) = &self.recording {
            recording.producer_left();
        }
    }
}

/// Splits a message into `(kind, payload)` after checking it is exactly one intact frame.
fn check_frame(index: u64, message: Bytes, limit: usize) -> Result<(u8, Bytes), IngestError> {
    let Some(head) = message.first_chunk::<FRAME_HEADER_LEN>() else {
        return Err(IngestError::Truncated {
            index,
            len: message.len(),
        });
    };
    let header =
        FrameHeader::parse(head).map_err(|source| IngestError::Header { index, source })?;
    let declared = u64::from(header.payload_len);
    if declared > limit as u64 {
        return Err(IngestError::TooLarge {
            index,
            declared,
            limit,
        });
    }
    let payload = message.slice(FRAME_HEADER_LEN..);
    if payload.len() as u64 != declared {
        return Err(IngestError::LengthMismatch {
            index,
            declared,
            actual: payload.len(),
        });
    }
    let actual = checksum([payload.as_ref()]);
    if actual != header.crc {
        return Err(IngestError::Checksum {
            index,
            expected: header.crc,
            actual,
        });
    }
    Ok((header.kind, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: MessageKind, payload: &[u8]) -> Bytes {
        let mut v = FrameHeader::new(kind, payload.len() as u32, crc32c::crc32c(payload))
            .to_bytes()
            .to_vec();
        v.extend_from_slice(payload);
        Bytes::from(v)
    }

    #[test]
    fn frames_are_checked() {
        let good = frame(MessageKind::RecordingInfo, b"{}");
        assert!(check_frame(0, good.clone(), 100).is_ok());
        assert!(matches!(
            check_frame(0, good.slice(..10), 100),
            Err(IngestError::Truncated { .. })
        ));
        assert!(matches!(
            check_frame(0, good.slice(..17), 100),
            Err(IngestError::LengthMismatch { .. })
        ));
        let mut bad_crc = good.to_vec();
        bad_crc[16] ^= 1;
        assert!(matches!(
            check_frame(0, Bytes::from(bad_crc), 100),
            Err(IngestError::Checksum { .. })
        ));
        let mut huge = good.to_vec();
        huge[4..8].copy_from_slice(&(1u32 << 30).to_le_bytes());
        let err = check_frame(3, Bytes::from(huge), 100).unwrap_err();
        assert!(matches!(err, IngestError::TooLarge { .. }), "{err}");
        assert!(err.to_string().starts_with("message 3"));
        assert!(matches!(
            check_frame(0, Bytes::from_static(&[0u8; 40]), 100),
            Err(IngestError::Header { .. })
        ));
    }
}
