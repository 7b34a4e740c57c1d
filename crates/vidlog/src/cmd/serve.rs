//! `vidlog serve`: the live server. Producers connect (SDK `connect()`), every recording is
//! kept in memory for subscribers and written to `<data-dir>/<recording_id>.vlog`; the
//! `.vlog` files already in the data dir are listed (not live) too.

use crate::say::say;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use vidlog_server::{Server, ServerConfig};

#[derive(clap::Args)]
#[command(
    about = "Run the live server: producers stream recordings in, each is also written to a file",
    after_help = "Examples:\n  vidlog serve\n  vidlog serve --port 9900 --data-dir recordings/ --memory-limit 2GiB\n\n\
                  Producers connect with RecordingStream::builder(app).connect(\"127.0.0.1:9877\").\n\
                  The wire protocol is docs/PROTOCOL.md."
)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 9877)]
    port: u16,
    /// Where recording files go (default: a new temporary directory, printed).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Bytes of recordings kept in memory (e.g. 512MiB, 2GiB); older data stays on disk.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    memory_limit: u64,
}

/// `1024`, `64KiB`, `512MiB`, `2GiB` (also KB/MB/GB as powers of 1000).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let units: [(&str, u64); 7] = [
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("KB", 1_000),
        ("MB", 1_000_000),
        ("GB", 1_000_000_000),
        ("B", 1),
    ];
    let (number, scale) = units
        .iter()
        .find_map(|(suffix, scale)| t.strip_suffix(suffix).map(|n| (n.trim(), *scale)))
        .unwrap_or((t, 1));
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a size like 512MiB or 2GiB"))
}

/// Starts a server on 127.0.0.1:`port` with a temporary data dir for `vidlog demo`,
/// prints the viewer's URL, opens a browser when there is a display, and sets `stop` on
/// Ctrl-C.
pub fn start_live(
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<vidlog_server::RunningServer> {
    let data_dir = std::env::temp_dir().join(format!("vidlog-demo-{}", std::process::id()));
    let config = ServerConfig {
        port,
        data_dir: data_dir.clone(),
        ..ServerConfig::default()
    };
    let running = Server::start(config).context("starting the demo's server")?;
    let url = format!("http://{}/", running.addr());
    say!("vidlog demo: viewer at {url}  (Ctrl-C to stop)");
    say!(
        "vidlog demo: the recording is also written to {}",
        data_dir.display()
    );
    let handle = running.handle().context("the server's runtime is gone")?;
    handle.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    open_browser(&url);
    Ok(running)
}

/// Opens `url` in a browser when there is a display (best effort: the URL is printed
/// anyway, no browser is not an error).
pub fn open_browser(url: &str) {
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if has_display {
        let _ = std::process::Command::new("xdg-open")
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("vidlog-serve-{}", std::process::id())),
    };
    let config = ServerConfig {
        bind: args.bind,
        port: args.port,
        data_dir: data_dir.clone(),
        memory_limit: args.memory_limit,
        open_existing: true,
        ..ServerConfig::default()
    };
    let running = Server::start(config).context("starting the server")?;
    let addr = running.addr();
    say!("vidlog serve: listening on http://{addr} (producers: ws://{addr}/ws/ingest)");
    say!(
        "vidlog serve: recordings are written to {}",
        data_dir.display()
    );
    let existing = running.recordings().len();
    if existing > 0 {
        say!("vidlog serve: {existing} recording(s) already in it are listed too");
    }
    say!("vidlog serve: Ctrl-C to stop");
    let handle = running.handle().context("the server's runtime is gone")?;
    handle
        .block_on(tokio::signal::ctrl_c())
        .context("waiting for Ctrl-C")?;
    say!("vidlog serve: stopping; finishing recording files");
    running.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("3MB"), Ok(3_000_000));
        assert!(parse_bytes("lots").is_err());
    }
}
