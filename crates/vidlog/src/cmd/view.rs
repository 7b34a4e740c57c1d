//! `vidlog view run.vlog`: serves one finished recording file, read-only, with the browser
//! viewer (which opens on it: it is the only recording). Nothing is written; the file is
//! read on demand, so any size opens at once.

use crate::say::say;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use vidlog_server::{Server, ServerConfig};

#[derive(clap::Args)]
#[command(
    about = "Serve a recording file with the browser viewer (read-only)",
    after_help = "Examples:\n  vidlog view run.vlog\n  vidlog view run.vlog --port 9900\n\n\
                  Prints the viewer's URL (and opens a browser when there is a display); Ctrl-C \
                  to stop. `vidlog export` writes MP4 from the same file; the viewer's \
                  \"Download MP4\" does too."
)]
pub struct ViewArgs {
    /// The recording file.
    pub recording: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 9877)]
    pub port: u16,
}

pub fn run(args: ViewArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.recording.is_file(),
        "{} is not a recording file (make one with `vidlog demo -o run.vlog` or `vidlog import`)",
        args.recording.display()
    );
    // Nothing is recorded, but a server needs a data dir: an empty temporary one, removed
    // at the end.
    let data_dir = std::env::temp_dir().join(format!("vidlog-view-{}", std::process::id()));
    let config = ServerConfig {
        bind: args.bind,
        port: args.port,
        data_dir: data_dir.clone(),
        ..ServerConfig::default()
    };
    let running = Server::start(config).context("starting the viewer's server")?;
    let id = running
        .open_file(&args.recording)
        .with_context(|| format!("opening {}", args.recording.display()))?;
    let url = format!("http://{}/", running.addr());
    say!(
        "vidlog view: {} (recording {id}) at {url}  (Ctrl-C to stop)",
        args.recording.display()
    );
    super::serve::open_browser(&url);
    let handle = running.handle().context("the server's runtime is gone")?;
    let waited = handle.block_on(tokio::signal::ctrl_c());
    running.shutdown();
    let _ = std::fs::remove_dir_all(&data_dir);
    waited.context("waiting for Ctrl-C")
}
