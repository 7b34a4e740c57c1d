//! The live protocol's control messages (JSON text messages) and constants; see
//! docs/PROTOCOL.md. Binary messages are frames of docs/FORMAT.md and are handled by
//! [`crate::ingest`] with `vidlog_store`'s codec.

use serde::{Deserialize, Serialize};

/// The protocol version this server speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The `protocol` field of a hello.
pub const PROTOCOL_NAME: &str = "vidlog";
/// The port `vidlog serve` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 9877;
/// Producers connect here.
pub const INGEST_PATH: &str = "/ws/ingest";
/// What the server calls itself in its hello reply.
pub const SERVER_NAME: &str = concat!("vidlog ", env!("CARGO_PKG_VERSION"));

/// The first message of a connection (text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: String,
    pub version: u32,
    pub role: String,
}

impl Hello {
    pub fn producer() -> Self {
        Hello {
            protocol: PROTOCOL_NAME.into(),
            version: PROTOCOL_VERSION,
            role: "producer".into(),
        }
    }
}

/// Text messages the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerMessage {
    /// The hello was accepted.
    Welcome {
        ok: bool,
        server: String,
        version: u32,
    },
    /// `stored` chunk messages of this connection are stored (or were already stored):
    /// a producer may forget them.
    Ack { stored: u64 },
    /// Why the server closes the connection; a close frame follows.
    Error { error: String },
}

impl ServerMessage {
    pub fn welcome() -> Self {
        ServerMessage::Welcome {
            ok: true,
            server: SERVER_NAME.into(),
            version: PROTOCOL_VERSION,
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Checks a hello; the error is the message sent back to the client.
pub fn check_hello(text: &str) -> Result<Hello, String> {
    let hello: Hello = serde_json::from_str(text).map_err(|e| {
        format!(
            "expected a hello like {{\"protocol\":\"vidlog\",\"version\":{PROTOCOL_VERSION},\"role\":\"producer\"}}: {e}"
        )
    })?;
    if hello.protocol != PROTOCOL_NAME {
        return Err(format!(
            "protocol {:?} is not {PROTOCOL_NAME:?}",
            hello.protocol
        ));
    }
    if hello.version != PROTOCOL_VERSION {
        return Err(format!(
            "this server speaks vidlog protocol version {PROTOCOL_VERSION}, the client version {}; \
             use a matching vidlog SDK and server",
            hello.version
        ));
    }
    if hello.role != "producer" {
        return Err(format!(
            "role {:?} is not served at {INGEST_PATH} (only \"producer\")",
            hello.role
        ));
    }
    Ok(hello)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_and_replies() {
        let hello = serde_json::to_string(&Hello::producer()).unwrap();
        assert_eq!(check_hello(&hello).unwrap(), Hello::producer());
        let err =
            check_hello(r#"{"protocol":"vidlog","version":7,"role":"producer"}"#).unwrap_err();
        assert!(
            err.contains("version 1") && err.contains("version 7"),
            "{err}"
        );
        assert!(check_hello("garbage").is_err());
        assert_eq!(
            ServerMessage::Ack { stored: 3 }.to_json(),
            r#"{"stored":3}"#
        );
        let welcome: ServerMessage =
            serde_json::from_str(&ServerMessage::welcome().to_json()).unwrap();
        assert_eq!(welcome, ServerMessage::welcome());
    }
}
