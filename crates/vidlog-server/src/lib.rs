//! vidlog's live server: producers stream recordings in over WebSocket, the server keeps
//! each recording in a [`ChunkStore`](vidlog_store::ChunkStore) and a recording file, fans
//! new chunks out to subscribers, and answers a small HTTP JSON API.
//!
//! The wire protocol is docs/PROTOCOL.md. This crate owns the network side and the live
//! recordings; it does not parse bitstreams (it asks `vidlog-video` through the store) and
//! it does not own the file format (`vidlog-store` does).
//!
//! ```no_run
//! use vidlog_server::{Server, ServerConfig};
//! let server = Server::start(ServerConfig::default())?;
//! println!("listening on {}", server.addr());
//! // ... later:
//! server.shutdown();
//! # Ok::<(), vidlog_server::ServerError>(())
//! ```

mod api;
mod dataframe;
mod export_http;
mod ingest;
pub mod protocol;
mod recordings;
mod server_frames;
mod subscription;
pub mod view;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use recordings::RecordingOverview;
pub use server_frames::jpeg_of;
pub use subscription::{RecvError, Subscription};

use recordings::Recordings;

/// Where and how a server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (default 127.0.0.1).
    pub bind: IpAddr,
    /// Port to listen on (default 9877; 0 picks a free one, see [`RunningServer::addr`]).
    pub port: u16,
    /// Recording files go here as `<recording_id>.vlog` (created if missing).
    pub data_dir: PathBuf,
    /// Bytes of chunks kept in memory across all recordings (default 1 GiB). Above it the
    /// server drops single chunks' bytes from memory (they stay on disk and load back on
    /// demand), finished recordings first, least recently used chunks first.
    pub memory_limit: u64,
    /// Largest WebSocket message (one frame) a producer may send (default 64 MiB).
    pub max_message_size: usize,
    /// At start, open the `.vlog` files already in `data_dir` as recordings that are not
    /// live (default false). A recording split over several files by earlier runs
    /// (`id.vlog`, `id.1.vlog`) shows its first file. A producer that sends that id again
    /// writes a new file, and the recording then shows what arrives from then on (as for
    /// any recording resumed after a server restart).
    pub open_existing: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: protocol::DEFAULT_PORT,
            data_dir: PathBuf::from("vidlog-data"),
            memory_limit: 1 << 30,
            max_message_size: 64 << 20,
            open_existing: false,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot listen on {addr}: {source} (is another server running there? pick another --port)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting the server's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    OpenFile(String),
}

/// The server's shared state: its recordings. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    recordings: Arc<Recordings>,
    config: Arc<ServerConfig>,
    shutdown: watch::Receiver<bool>,
}

impl Server {
    /// Binds `config.bind:config.port` and serves in the background on its own Tokio
    /// runtime (so it can be started from synchronous code and tests). Returns once the
    /// socket is bound. Call it, and [`RunningServer::shutdown`], from synchronous code,
    /// not from inside another Tokio runtime.
    pub fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let wanted = SocketAddr::new(config.bind, config.port);
        let bind_error = |source| ServerError::Bind {
            addr: wanted,
            source,
        };
        let std_listener = std::net::TcpListener::bind(wanted).map_err(bind_error)?;
        std_listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = std_listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vidlog-server")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(bind_error)?
        };
        let (stop, shutdown) = watch::channel(false);
        let server = Server {
            recordings: Arc::new(Recordings::new(
                config.data_dir.clone(),
                config.memory_limit,
            )),
            config: Arc::new(config),
            shutdown,
        };
        if server.config.open_existing {
            server.open_existing_files();
        }
        let app = api::router(server.clone());
        let mut until = server.shutdown.clone();
        let serving = runtime.spawn(async move {
            let stopped = async move {
                let _ = until.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!("vidlog server stopped: {e}");
            }
        });
        tracing::info!("vidlog server listening on {addr}");
        Ok(RunningServer {
            server,
            addr,
            stop,
            runtime: Some(runtime),
            serving: Some(serving),
        })
    }

    /// Follows `recording_id`: first the chunks it has in memory, in arrival order, then
    /// every chunk that arrives after. The recording need not exist yet.
    pub fn subscribe(&self, recording_id: &str) -> Subscription {
        self.recordings.subscribe(recording_id)
    }

    /// Follows one video entity of `recording_id` from decode sample `from_sample` on
    /// (backlog chosen from the index: that entity's static chunks and the chunks holding
    /// those samples), then every chunk stored after (all entities: filter by entity).
    pub fn subscribe_video(
        &self,
        recording_id: &str,
        entity: &vidlog_types::EntityPath,
        from_sample: usize,
    ) -> Subscription {
        self.recordings
            .subscribe_video(recording_id, entity, from_sample)
    }

    /// Every recording the server knows, in id order.
    pub fn recordings(&self) -> Vec<RecordingOverview> {
        self.recordings.overviews()
    }

    /// Serves a finished recording file (read-only, not live) as a recording; returns its
    /// id. Fails when the file cannot be read or a recording with its id is open already.
    pub fn open_file(&self, path: impl AsRef<std::path::Path>) -> Result<String, ServerError> {
        self.recordings
            .open_file(path.as_ref())
            .map_err(|e| ServerError::OpenFile(e.to_string()))
    }

    /// [`ServerConfig::open_existing`]: every `.vlog` file of the data dir, oldest name
    /// first; unreadable ones and later segments of an open recording are logged and skipped.
    fn open_existing_files(&self) {
        let Ok(dir) = std::fs::read_dir(&self.config.data_dir) else {
            return;
        };
        let mut files: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "vlog"))
            .collect();
        files.sort();
        for file in files {
            match self.open_file(&file) {
                Ok(id) => tracing::info!("recording {id}: opened {}", file.display()),
                Err(e) => tracing::warn!("not opened: {e}"),
            }
        }
    }

    /// Bytes of chunks held in memory now, at their encoded size (see
    /// [`ServerConfig::memory_limit`]).
    pub fn memory_in_use(&self) -> u64 {
        self.recordings.memory_in_use()
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
}

/// A server serving in the background. Dropping it shuts it down.
pub struct RunningServer {
    server: Server,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// The address actually bound (the port is real even when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state, for subscribing from other threads.
    pub fn server(&self) -> &Server {
        &self.server
    }

    pub fn subscribe(&self, recording_id: &str) -> Subscription {
        self.server.subscribe(recording_id)
    }

    pub fn recordings(&self) -> Vec<RecordingOverview> {
        self.server.recordings()
    }

    /// See [`Server::open_file`].
    pub fn open_file(&self, path: impl AsRef<std::path::Path>) -> Result<String, ServerError> {
        self.server.open_file(path)
    }

    /// The runtime the server runs on (e.g. to `block_on` a Ctrl-C future).
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }

    /// Closes every connection (producers get a "going away" close and reconnect
    /// elsewhere or later), ends subscriptions, and finishes every recording file.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let _ = self.stop.send(true);
        if let Some(serving) = self.serving.take() {
            let _ = runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), serving).await });
        }
        runtime.shutdown_timeout(Duration::from_secs(2));
        self.server.recordings.finish_all();
        tracing::info!("vidlog server on {} stopped", self.addr);
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}
