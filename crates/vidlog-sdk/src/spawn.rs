//! Starting a local `vidlog serve` for [`RecordingStreamBuilder::spawn`]
//! (crate::RecordingStreamBuilder::spawn): when nothing listens on the address, the
//! `vidlog` binary is started in the background (in its own process group, so it outlives
//! the program and its Ctrl-C, like a viewer window would), and the SDK waits until it
//! listens.
//!
//! The binary is looked for in this order: the `VIDLOG_BIN` environment variable, next to
//! the running executable (and its parent directory when that is cargo's `deps/`), then
//! every directory of `PATH`.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where `spawn()` looks for or starts a server.
pub const DEFAULT_SPAWN_ADDR: &str = "127.0.0.1:9877";

/// How [`ensure_server`] starts a server.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// `host:port` to connect to; a server started here listens on it.
    pub addr: String,
    /// The `vidlog` binary; `None`: looked up (see the module documentation).
    pub binary: Option<PathBuf>,
    /// How long to wait for a started server to listen.
    pub startup_timeout: Duration,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions {
            addr: DEFAULT_SPAWN_ADDR.into(),
            binary: None,
            startup_timeout: Duration::from_secs(10),
        }
    }
}

/// What [`ensure_server`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spawned {
    /// A server already listened on the address.
    AlreadyRunning,
    /// A `vidlog serve` was started: its process id.
    Started { pid: u32 },
}

/// Why no server could be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("server address {addr:?}: {reason}")]
    Address { addr: String, reason: String },
    #[error(
        "cannot find the vidlog binary to start a server: VIDLOG_BIN is {env}, it is not next to \
         {exe}, and no directory of PATH has it; install it (cargo install --path crates/vidlog) \
         or set VIDLOG_BIN=/path/to/vidlog"
    )]
    NoBinary { env: String, exe: String },
    #[error("starting {binary}: {source}")]
    Start {
        binary: String,
        source: std::io::Error,
    },
    #[error("{binary} serve exited ({status}) before listening on {addr}: {log}")]
    Exited {
        binary: String,
        addr: SocketAddr,
        status: String,
        log: String,
    },
    #[error("{binary} serve did not listen on {addr} within {waited:?}: {log}")]
    Timeout {
        binary: String,
        addr: SocketAddr,
        waited: Duration,
        log: String,
    },
}

fn resolve(addr: &str) -> Result<SocketAddr, SpawnError> {
    let host_port = addr.trim_start_matches("ws://").trim_end_matches('/');
    host_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut all| all.next().ok_or_else(|| "resolves to nothing".into()))
        .map_err(|reason| SpawnError::Address {
            addr: addr.to_owned(),
            reason: format!("{reason} (expected host:port, e.g. {DEFAULT_SPAWN_ADDR})"),
        })
}

fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// The `vidlog` binary: `VIDLOG_BIN`, next to the running executable, then `PATH`.
pub fn find_binary() -> Result<PathBuf, SpawnError> {
    let name = format!("vidlog{}", std::env::consts::EXE_SUFFIX);
    let env = std::env::var_os("VIDLOG_BIN");
    if let Some(path) = env.as_ref().filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
    }
    let exe = std::env::current_exe().ok();
    if let Some(dir) = exe.as_deref().and_then(Path::parent) {
        let mut dirs = vec![dir.to_path_buf()];
        if dir.file_name().is_some_and(|n| n == "deps")
            && let Some(up) = dir.parent()
        {
            dirs.push(up.to_path_buf());
        }
        if let Some(found) = dirs.iter().map(|d| d.join(&name)).find(|p| p.is_file()) {
            return Ok(found);
        }
    }
    if let Some(path) = std::env::var_os("PATH")
        && let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
    {
        return Ok(found);
    }
    Err(SpawnError::NoBinary {
        env: match env {
            Some(p) if !p.is_empty() => format!("{:?}, which is not a file", p),
            _ => "not set".into(),
        },
        exe: exe.map_or_else(
            || "the running executable".into(),
            |e| e.display().to_string(),
        ),
    })
}

/// Makes sure a server listens on `options.addr`: returns at once when one does, else
/// starts `vidlog serve --bind HOST --port PORT` and waits until it listens. The started
/// server keeps running after this program ends (stop it like any `vidlog serve`).
pub fn ensure_server(options: &SpawnOptions) -> Result<Spawned, SpawnError> {
    let addr = resolve(&options.addr)?;
    if listening(addr) {
        return Ok(Spawned::AlreadyRunning);
    }
    let binary = match &options.binary {
        Some(b) => b.clone(),
        None => find_binary()?,
    };
    let shown = binary.display().to_string();
    // The server's output goes to a log file: it outlives this program's terminal use.
    let log_path = std::env::temp_dir().join(format!("vidlog-serve-{}.log", addr.port()));
    let log = std::fs::File::create(&log_path).ok();
    let mut command = Command::new(&binary);
    command
        .args(["serve", "--bind", &addr.ip().to_string()])
        .args(["--port", &addr.port().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(match log {
            Some(file) => Stdio::from(file),
            None => Stdio::null(),
        });
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(|source| SpawnError::Start {
        binary: shown.clone(),
        source,
    })?;
    let log_text = || {
        std::fs::read_to_string(&log_path)
            .map(|t| t.trim().lines().last().unwrap_or("no output").to_owned())
            .unwrap_or_else(|_| "no output".into())
    };
    let started = Instant::now();
    loop {
        // Another program may have started a server first: then ours exits (port taken)
        // and theirs is used.
        if listening(addr) {
            tracing::info!(
                "vidlog: started {shown} serve on {addr} (pid {}, log {})",
                child.id(),
                log_path.display()
            );
            return Ok(Spawned::Started { pid: child.id() });
        }
        if let Ok(Some(status)) = child.try_wait() {
            if listening(addr) {
                return Ok(Spawned::AlreadyRunning);
            }
            return Err(SpawnError::Exited {
                binary: shown,
                addr,
                status: status.to_string(),
                log: log_text(),
            });
        }
        if started.elapsed() > options.startup_timeout {
            return Err(SpawnError::Timeout {
                binary: shown,
                addr,
                waited: options.startup_timeout,
                log: log_text(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_addresses_are_named() {
        let e = ensure_server(&SpawnOptions {
            addr: "no-port".into(),
            ..SpawnOptions::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("\"no-port\""), "{e}");
    }

    #[test]
    fn a_binary_that_cannot_start_is_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let e = ensure_server(&SpawnOptions {
            addr: format!("127.0.0.1:{port}"),
            binary: Some(PathBuf::from("/nonexistent/vidlog")),
            ..SpawnOptions::default()
        })
        .unwrap_err();
        assert!(
            matches!(e, SpawnError::Start { .. }) && e.to_string().contains("/nonexistent/vidlog"),
            "{e}"
        );
    }
}
