//! Micro-batching: rows in, chunks out, flushed by age and by size, with a bound on the
//! bytes in flight (rows batched or queued for the sink but not yet written).
//!
//! Rows of one entity sharing timelines and components collect in a group. A group is
//! flushed when it reaches `flush_bytes`, or when its oldest row is `flush_tick` old.
//! Every flush takes *all* waiting groups, oldest first, so the sink sees rows in the
//! order they were logged across entities (a static codec before the samples after it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use crate::sink::SinkError;
use vidlog_types::arrow_schema::SchemaRef;
use vidlog_types::chunk::{build_chunk, chunk_schema};
use vidlog_types::{BatchKey, Chunk, ChunkId, EntityPath, PendingRow, RowIdGenerator};

/// When to flush and how much to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Flush rows older than this. Env: `VIDLOG_FLUSH_TICK_MS`.
    pub flush_tick: Duration,
    /// Flush a group once it holds this many bytes. Env: `VIDLOG_FLUSH_BYTES`.
    pub flush_bytes: usize,
    /// `log` blocks while more than this many bytes wait to be written.
    /// Env: `VIDLOG_MAX_BYTES_IN_FLIGHT`.
    pub max_bytes_in_flight: usize,
}

impl Default for BatcherConfig {
    /// Suited to live video: 5 ms tick, 1 MiB chunks, 64 MiB in flight.
    fn default() -> Self {
        BatcherConfig {
            flush_tick: Duration::from_millis(5),
            flush_bytes: 1 << 20,
            max_bytes_in_flight: 64 << 20,
        }
    }
}

impl BatcherConfig {
    /// The defaults, overridden by the environment variables named on each field.
    pub fn from_env() -> Result<Self, String> {
        let mut config = BatcherConfig::default();
        let read = |name: &str| -> Result<Option<u64>, String> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| format!("{name}={v:?} is not a whole number")),
                Err(_) => Ok(None),
            }
        };
        if let Some(ms) = read("VIDLOG_FLUSH_TICK_MS")? {
            config.flush_tick = Duration::from_millis(ms);
        }
        if let Some(b) = read("VIDLOG_FLUSH_BYTES")? {
            config.flush_bytes = b as usize;
        }
        if let Some(b) = read("VIDLOG_MAX_BYTES_IN_FLIGHT")? {
            config.max_bytes_in_flight = b as usize;
        }
        Ok(config)
    }
}

struct Group {
    entity: EntityPath,
    schema: SchemaRef,
    rows: Vec<PendingRow>,
    bytes: usize,
    since: Instant,
}

#[derive(Default)]
struct State {
    groups: HashMap<(EntityPath, BatchKey), Group>,
    pending_bytes: usize,
    /// Bytes accepted by `push` and not yet released by the sink.
    in_flight: usize,
    schemas: HashMap<(EntityPath, BatchKey), SchemaRef>,
}

/// What the batcher hands the writer thread, in order.
pub enum Command {
    /// A chunk and the bytes it accounts for (released once written).
    Chunk { chunk: Arc<Chunk>, bytes: usize },
    /// Flush the sink and answer.
    Flush(Sender<Result<(), SinkError>>),
    /// Close the sink, answer, and stop.
    Close(Sender<Result<(), SinkError>>),
}

/// See the module documentation.
pub struct Batcher {
    config: BatcherConfig,
    state: Mutex<State>,
    drained: Condvar,
    chunk_ids: RowIdGenerator,
    out: Sender<Command>,
}

impl Batcher {
    /// Chunks are sent to `out` under the batcher's lock, so their order is the order
    /// of flushes whichever thread flushes.
    pub fn new(config: BatcherConfig, out: Sender<Command>) -> Self {
        Batcher {
            config,
            state: Mutex::new(State::default()),
            drained: Condvar::new(),
            chunk_ids: RowIdGenerator::new(),
            out,
        }
    }

    pub fn config(&self) -> &BatcherConfig {
        &self.config
    }

    /// Adds a row; flushes when its group filled up. Blocks while too many bytes are in
    /// flight.
    pub fn push(&self, entity: EntityPath, row: PendingRow) {
        let bytes = row.heap_size();
        let key = row.batch_key();
        let mut state = self.state.lock();
        while state.in_flight > 0 && state.in_flight + bytes > self.config.max_bytes_in_flight {
            self.drained.wait(&mut state);
        }
        state.in_flight += bytes;
        state.pending_bytes += bytes;
        let map_key = (entity, key);
        let schema = match state.schemas.get(&map_key) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(chunk_schema(&map_key.0, &map_key.1));
                state.schemas.insert(map_key.clone(), s.clone());
                s
            }
        };
        let full = {
            let group = state
                .groups
                .entry(map_key)
                .or_insert_with_key(|(entity, _)| Group {
                    entity: entity.clone(),
                    schema,
                    rows: Vec::new(),
                    bytes: 0,
                    since: Instant::now(),
                });
            group.rows.push(row);
            group.bytes += bytes;
            group.bytes >= self.config.flush_bytes
        };
        if full {
            self.flush_all(&mut state);
        }
    }

    /// Flushes when any group's oldest row is older than the tick (then all groups).
    pub fn flush_due(&self) {
        let mut state = self.state.lock();
        if state
            .groups
            .values()
            .any(|g| g.since.elapsed() >= self.config.flush_tick)
        {
            self.flush_all(&mut state);
        }
    }

    /// Flushes everything waiting, then sends `then` (if any) behind it.
    pub fn flush_everything(&self, then: Option<Command>) {
        let mut state = self.state.lock();
        self.flush_all(&mut state);
        if let Some(command) = then {
            let _ = self.out.send(command);
        }
    }

    fn flush_all(&self, state: &mut State) {
        let mut groups: Vec<Group> = state.groups.drain().map(|(_, g)| g).collect();
        state.pending_bytes = 0;
        groups.sort_by_key(|g| g.since);
        for g in groups {
            match build_chunk(
                ChunkId(self.chunk_ids.next().0),
                &g.entity,
                g.schema,
                &g.rows,
            ) {
                Ok(chunk) => {
                    let command = Command::Chunk {
                        chunk: Arc::new(chunk),
                        bytes: g.bytes,
                    };
                    if self.out.send(command).is_err() {
                        state.in_flight = state.in_flight.saturating_sub(g.bytes);
                    }
                }
                Err(e) => {
                    tracing::error!("dropping {} rows of {}: {e}", g.rows.len(), g.entity);
                    state.in_flight = state.in_flight.saturating_sub(g.bytes);
                }
            }
        }
    }

    /// The sink is done with `bytes`; wakes blocked producers.
    pub fn release(&self, bytes: usize) {
        let mut state = self.state.lock();
        state.in_flight = state.in_flight.saturating_sub(bytes);
        drop(state);
        self.drained.notify_all();
    }

    /// Bytes accepted and not yet written.
    pub fn bytes_in_flight(&self) -> usize {
        self.state.lock().in_flight
    }
}
