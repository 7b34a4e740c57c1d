//! `MessageDecoder::decode` on hostile payloads (what a socket may deliver) returns errors,
//! never panics: random bytes of every kind, and valid messages with bytes flipped,
//! truncated or extended.

mod common;

use std::sync::Arc;

use common::*;
use vidlog_store::ChunkStore;
use vidlog_store::codec::{Decoded, EncodedMessage, MessageDecoder, MessageEncoder};
use vidlog_types::arrow_buffer::Buffer;
use vidlog_types::{Chunk, VideoCodec};

fn payload(m: &EncodedMessage) -> Vec<u8> {
    let mut v = m.head.clone();
    for b in &m.body {
        v.extend_from_slice(b);
    }
    v
}

/// Valid messages: info, then schema + chunk pairs of several shapes.
fn valid_messages() -> Vec<(u8, Vec<u8>)> {
    let e = entity("camera/front");
    let mut rng = XorShift::new(1);
    let video: Vec<_> = (0..4)
        .map(|i| video_row(10 + i, i as i64 * 100, i as i64, &rng.bytes(30)))
        .collect();
    let chunks: Vec<Chunk> = vec![
        codec_chunk(1, &e, 1, VideoCodec::H264),
        chunk(2, &e, &video),
        chunk(
            3,
            &entity("points"),
            &[scalar_row(20, "frame", Some(3), &[("Scalar:value", 7)])],
        ),
    ];
    let mut encoder = MessageEncoder::new();
    let info = vidlog_store::codec::encode_recording_info(&info());
    let mut out = vec![(info.kind as u8, payload(&info))];
    for c in &chunks {
        for m in encoder.encode_chunk(c).unwrap() {
            out.push((m.kind as u8, payload(&m)));
        }
    }
    out
}

/// A decoder that has seen every valid schema, so chunk payloads get past the schema lookup.
fn primed(messages: &[(u8, Vec<u8>)]) -> MessageDecoder {
    let mut d = MessageDecoder::new();
    for (kind, p) in messages {
        if *kind == 2 {
            assert!(matches!(
                d.decode(*kind, Buffer::from_vec(p.clone())),
                Ok(Decoded::Schema { .. })
            ));
        }
    }
    d
}

#[test]
fn valid_messages_decode() {
    let messages = valid_messages();
    let mut d = MessageDecoder::new();
    let mut chunks = 0;
    for (kind, p) in &messages {
        if let Decoded::Chunk(_) = d.decode(*kind, Buffer::from_vec(p.clone())).unwrap() {
            chunks += 1;
        }
    }
    assert_eq!(chunks, 3);
}

#[test]
fn random_payloads_never_panic() {
    let messages = valid_messages();
    let mut rng = XorShift::new(0xbad);
    let mut decoder = primed(&messages);
    for _ in 0..20_000 {
        let kind = rng.below(7) as u8;
        let len = match rng.below(4) {
            0 => rng.below(32),
            1 => rng.below(300),
            _ => rng.below(2000),
        } as usize;
        let mut p = rng.bytes(len);
        // Often give chunk payloads a plausible head: a known schema id and an IPC marker.
        if kind == 3 && p.len() >= 24 && rng.below(2) == 0 {
            p[8..12].copy_from_slice(&(rng.below(4) as u32).to_le_bytes());
            p[12..16].fill(0);
            p[16..20].fill(0xff);
        }
        let _ = decoder.decode(kind, Buffer::from_vec(p));
    }
}

#[test]
fn mutated_messages_never_panic() {
    let messages = valid_messages();
    // VIDLOG_FUZZ_SEED / VIDLOG_FUZZ_ROUNDS run it longer by hand.
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut rng = XorShift::new(env("VIDLOG_FUZZ_SEED", 3));
    for round in 0..env("VIDLOG_FUZZ_ROUNDS", 20_000) {
        let mut decoder = primed(&messages);
        let (kind, original) = &messages[1 + rng.below(messages.len() as u64 - 1) as usize];
        let mut p = original.clone();
        match rng.below(4) {
            0 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(p.len() as u64) as usize;
                    p[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let i = rng.below(p.len() as u64) as usize;
                p[i] = rng.next_u64() as u8;
            }
            2 => p.truncate(rng.below(p.len() as u64) as usize),
            _ => {
                // Overwrite an aligned 4- or 8-byte word (lengths, offsets, counts).
                let i = (rng.below(p.len() as u64 / 4) * 4) as usize;
                let word: [u8; 4] = match rng.below(4) {
                    0 => [0xff; 4],
                    1 => 0x7fff_ffffu32.to_le_bytes(),
                    2 => (rng.below(1 << 20) as u32).to_le_bytes(),
                    _ => 0x8000_0000u32.to_le_bytes(),
                };
                let end = (i + 4).min(p.len());
                p[i..end].copy_from_slice(&word[..end - i]);
            }
        }
        // What a server does with a message: decode, store, query.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Ok(Decoded::Chunk(c)) = decoder.decode(*kind, Buffer::from_vec(p.clone())) {
                let e = c.entity().clone();
                let mut store = ChunkStore::new();
                store.insert(Arc::new(c));
                let _ = store.latest_at(&e, "frame", 2, "VideoStream:sample");
                let _ = store.dataframe(&e, "frame", 0, 10);
                if let Some(n) = store.video(&e).map(|v| v.len()) {
                    for i in 0..n {
                        let _ = store.video_sample(&e, i);
                    }
                }
            }
        }));
        if result.is_err() {
            panic!(
                "round {round}: decoding a mutated kind-{kind} message panicked; payload {p:02x?}"
            );
        }
    }
}
