//! `RecordingStream`: the handle a program logs through.
//!
//! Cheap to clone and usable from many threads. Each thread has its own current time
//! per stream (`set_time` on one thread does not move another's clock). Rows go to the
//! [`Batcher`]; a writer thread hands chunks to the [`Sink`]; a ticker thread flushes
//! rows that waited a tick. Dropping the last clone flushes and closes the sink.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use parking_lot::Mutex;
use vidlog_store::RecordingInfo;
use vidlog_types::time::unix_nanos_now;
use vidlog_types::{
    AsComponents, EntityPath, EntityPathError, PendingRow, RowIdGenerator, TimeCell, TimePoint,
    TimelineName,
};

use crate::batcher::{Batcher, BatcherConfig, Command};
use crate::net::{NetworkOptions, NetworkSink};
use crate::sink::{FileSink, MemorySink, Sink, SinkError};
use crate::spawn::{SpawnError, SpawnOptions, Spawned, ensure_server};

/// Why a log call or the stream failed.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    #[error(transparent)]
    EntityPath(#[from] EntityPathError),
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
    #[error("batcher configuration: {0}")]
    Config(String),
    #[error("the recording stream is closed")]
    Closed,
    #[error("spawning a server: {0}")]
    Spawn(#[from] SpawnError),
}

static NEXT_STREAM_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD_TIMES: RefCell<HashMap<u64, TimePoint>> = RefCell::new(HashMap::new());
}

/// Configures and opens a [`RecordingStream`].
pub struct RecordingStreamBuilder {
    application_id: String,
    recording_id: Option<String>,
    batcher: Option<BatcherConfig>,
}

impl RecordingStreamBuilder {
    /// Defaults to a fresh random-looking id.
    pub fn recording_id(mut self, id: impl Into<String>) -> Self {
        self.recording_id = Some(id.into());
        self
    }

    /// Overrides the batcher settings (otherwise defaults plus `VIDLOG_FLUSH_*` env).
    pub fn batcher_config(mut self, config: BatcherConfig) -> Self {
        self.batcher = Some(config);
        self
    }

    fn info(&self) -> RecordingInfo {
        let now = unix_nanos_now();
        RecordingInfo {
            application_id: self.application_id.clone(),
            recording_id: self.recording_id.clone().unwrap_or_else(|| {
                let mix = (now as u64) ^ (u64::from(std::process::id()) << 40);
                format!("{mix:016x}")
            }),
            started_unix_nanos: now,
            writer: concat!("vidlog ", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// Logs into a recording file at `path`.
    pub fn save(self, path: impl AsRef<Path>) -> Result<RecordingStream, SdkError> {
        let info = self.info();
        let sink = FileSink::create(path, &info)?;
        self.sink(Arc::new(sink))
    }

    /// Logs into memory; the returned sink gives the chunks and a queryable store.
    pub fn memory(self) -> Result<(RecordingStream, MemorySink), SdkError> {
        let sink = MemorySink::new();
        let stream = self.sink(Arc::new(sink.clone()))?;
        Ok((stream, sink))
    }

    /// Streams to a `vidlog serve` server at `addr` (`host:port`, e.g. `127.0.0.1:9877`).
    ///
    /// Returns once the server accepted the handshake; if it cannot be reached within
    /// [`NetworkOptions::connect_timeout`] (5 s), returns anyway and keeps trying in the
    /// background, buffering. A server that refuses (another protocol version) is an
    /// error. See [`crate::net`].
    pub fn connect(self, addr: &str) -> Result<RecordingStream, SdkError> {
        self.connect_with(addr, NetworkOptions::default())
    }

    /// [`RecordingStreamBuilder::connect`] with explicit network options.
    pub fn connect_with(
        self,
        addr: &str,
        options: NetworkOptions,
    ) -> Result<RecordingStream, SdkError> {
        let config = match self.batcher {
            Some(c) => c,
            None => BatcherConfig::from_env().map_err(SdkError::Config)?,
        };
        let info = self.info();
        let sink = NetworkSink::connect(addr, info.clone(), options)?;
        Ok(RecordingStream::start(info, config, Arc::new(sink)))
    }

    /// Streams to a local server at [`DEFAULT_SPAWN_ADDR`](crate::spawn::DEFAULT_SPAWN_ADDR)
    /// (127.0.0.1:9877), starting `vidlog serve` in the background first when nothing
    /// listens there. See [`crate::spawn`] for where the binary is looked for.
    pub fn spawn(self) -> Result<RecordingStream, SdkError> {
        self.spawn_with(&SpawnOptions::default())
    }

    /// [`RecordingStreamBuilder::spawn`] with another address or binary.
    pub fn spawn_with(self, options: &SpawnOptions) -> Result<RecordingStream, SdkError> {
        let spawned = ensure_server(options)?;
        let stream = self.connect(&options.addr)?;
        if let Spawned::Started { pid } = spawned {
            *stream.inner.spawned_server.lock() = Some(pid);
        }
        Ok(stream)
    }

    /// Logs into any sink.
    pub fn sink(self, sink: Arc<dyn Sink>) -> Result<RecordingStream, SdkError> {
        let config = match self.batcher {
            Some(c) => c,
            None => BatcherConfig::from_env().map_err(SdkError::Config)?,
        };
        let info = self.info();
        Ok(RecordingStream::start(info, config, sink))
    }
}

struct Inner {
    id: u64,
    info: RecordingInfo,
    row_ids: RowIdGenerator,
    batcher: Arc<Batcher>,
    stop_ticker: Sender<()>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    errors: Arc<Mutex<Option<SinkError>>>,
    /// The server `spawn()` started, if it did.
    spawned_server: Mutex<Option<u32>>,
}

/// See the module documentation.
#[derive(Clone)]
pub struct RecordingStream {
    inner: Arc<Inner>,
}

impl RecordingStream {
    pub fn builder(application_id: impl Into<String>) -> RecordingStreamBuilder {
        RecordingStreamBuilder {
            application_id: application_id.into(),
            recording_id: None,
            batcher: None,
        }
    }

    fn start(info: RecordingInfo, config: BatcherConfig, sink: Arc<dyn Sink>) -> Self {
        let (tx, rx) = unbounded::<Command>();
        let batcher = Arc::new(Batcher::new(config, tx));
        let errors = Arc::new(Mutex::new(None));
        let writer = {
            let batcher = batcher.clone();
            let errors = errors.clone();
            std::thread::Builder::new()
                .name("vidlog-writer".into())
                .spawn(move || write_loop(rx, sink, batcher, errors))
                .expect("spawning the vidlog writer thread")
        };
        let (stop_ticker, stopped) = bounded::<()>(1);
        let ticker = {
            let batcher = batcher.clone();
            let tick = config.flush_tick.max(std::time::Duration::from_micros(100));
            std::thread::Builder::new()
                .name("vidlog-ticker".into())
                .spawn(move || {
                    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(tick)
                    {
                        batcher.flush_due();
                    }
                })
                .expect("spawning the vidlog ticker thread")
        };
        RecordingStream {
            inner: Arc::new(Inner {
                id: NEXT_STREAM_ID.fetch_add(1, Ordering::Relaxed),
                info,
                row_ids: RowIdGenerator::new(),
                batcher,
                stop_ticker,
                threads: Mutex::new(vec![writer, ticker]),
                errors,
                spawned_server: Mutex::new(None),
            }),
        }
    }

    pub fn info(&self) -> &RecordingInfo {
        &self.inner.info
    }

    /// The process id of the `vidlog serve` that [`RecordingStreamBuilder::spawn`] started
    /// for this stream (`None` when a server was already listening, or not spawned).
    pub fn spawned_server(&self) -> Option<u32> {
        *self.inner.spawned_server.lock()
    }

    /// Sets this thread's time on `timeline` for the rows it logs next.
    pub fn set_time(&self, timeline: impl Into<TimelineName>, cell: TimeCell) {
        let id = self.inner.id;
        THREAD_TIMES.with(|t| t.borrow_mut().entry(id).or_default().insert(timeline, cell));
    }

    /// Shorthand for a sequence timeline.
    pub fn set_time_sequence(&self, timeline: impl Into<TimelineName>, n: i64) {
        self.set_time(timeline, TimeCell::from_sequence(n));
    }

    /// Shorthand for a duration timeline in seconds.
    pub fn set_duration_secs(&self, timeline: impl Into<TimelineName>, secs: f64) {
        self.set_time(timeline, TimeCell::from_duration_secs(secs));
    }

    /// Stops logging on `timeline` from this thread.
    pub fn disable_timeline(&self, timeline: &str) {
        let id = self.inner.id;
        THREAD_TIMES.with(|t| {
            if let Some(tp) = t.borrow_mut().get_mut(&id) {
                tp.remove(timeline);
            }
        });
    }

    /// Clears this thread's time on every timeline.
    pub fn reset_time(&self) {
        let id = self.inner.id;
        THREAD_TIMES.with(|t| t.borrow_mut().remove(&id));
    }

    /// This thread's current time point.
    pub fn time(&self) -> TimePoint {
        let id = self.inner.id;
        THREAD_TIMES.with(|t| t.borrow().get(&id).cloned().unwrap_or_default())
    }

    /// Logs `what` on `entity` at this thread's current time.
    pub fn log<P>(&self, entity: P, what: &impl AsComponents) -> Result<(), SdkError>
    where
        P: TryInto<EntityPath, Error = EntityPathError>,
    {
        let time = self.time();
        self.log_at(entity.try_into()?, time, what)
    }

    /// Logs `what` as static data: no timeline, the last write wins.
    pub fn log_static<P>(&self, entity: P, what: &impl AsComponents) -> Result<(), SdkError>
    where
        P: TryInto<EntityPath, Error = EntityPathError>,
    {
        self.log_at(entity.try_into()?, TimePoint::new(), what)
    }

    /// Logs at an explicit time point (ignores this thread's time).
    pub fn log_at(
        &self,
        entity: EntityPath,
        time: TimePoint,
        what: &impl AsComponents,
    ) -> Result<(), SdkError> {
        let cells = what.as_components();
        if cells.is_empty() {
            return Ok(());
        }
        if let Some(e) = self.inner.errors.lock().take() {
            return Err(SdkError::Sink(e));
        }
        let row = PendingRow {
            row_id: self.inner.row_ids.next(),
            time,
            cells,
        };
        self.inner.batcher.push(entity, row);
        Ok(())
    }

    /// Sends everything logged so far to the sink and waits until it is written.
    pub fn flush(&self) -> Result<(), SdkError> {
        let (tx, rx) = bounded(1);
        self.inner
            .batcher
            .flush_everything(Some(Command::Flush(tx)));
        rx.recv().map_err(|_| SdkError::Closed)??;
        Ok(())
    }

    /// Bytes logged and not yet written by the sink.
    pub fn bytes_in_flight(&self) -> usize {
        self.inner.batcher.bytes_in_flight()
    }
}

fn write_loop(
    rx: Receiver<Command>,
    sink: Arc<dyn Sink>,
    batcher: Arc<Batcher>,
    errors: Arc<Mutex<Option<SinkError>>>,
) {
    let report = |e: SinkError| {
        tracing::error!("vidlog sink: {e}");
        *errors.lock() = Some(e);
    };
    for command in rx {
        match command {
            Command::Chunk { chunk, bytes } => {
                if let Err(e) = sink.send(chunk) {
                    report(e);
                }
                batcher.release(bytes);
            }
            Command::Flush(reply) => {
                let _ = reply.send(sink.flush());
            }
            Command::Close(reply) => {
                let _ = reply.send(sink.close());
                return;
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.stop_ticker.send(());
        let (tx, rx) = bounded(1);
        self.batcher.flush_everything(Some(Command::Close(tx)));
        if let Ok(Err(e)) = rx.recv() {
            // Not eprintln!: a closed stderr must not panic inside a drop.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "vidlog: closing the recording failed: {e}"
            );
        }
        for handle in self.threads.lock().drain(..) {
            let _ = handle.join();
        }
        let id = self.id;
        let _ = THREAD_TIMES.try_with(|t| t.borrow_mut().remove(&id));
    }
}
