//! The `vidlog` command: `demo`, `import`, `info`, `export`, `frame`, `serve`, `view`, `bench`.

mod cmd;
mod say;
mod synth;

use say::say;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vidlog",
    version,
    about = "Log, view and export encoded camera video (H.264, H.265, AV1, VP9)",
    after_help = "Examples:\n  vidlog demo                        a synthetic camera, live in the browser viewer\n  vidlog import clip.h264 --entity camera/front --fps 30 -o run.vlog\n  vidlog info run.vlog --json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Demo(cmd::demo::DemoArgs),
    Import(cmd::import::ImportArgs),
    Info(cmd::info::InfoArgs),
    Export(cmd::export::ExportArgs),
    Frame(cmd::frame::FrameArgs),
    Serve(cmd::serve::ServeArgs),
    View(cmd::view::ViewArgs),
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: clap's message without the usage block after it.
            let rendered = e.render().to_string();
            let reason: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
                .map(|l| l.trim().trim_start_matches("error: "))
                .collect();
            say!("vidlog: error: {} (see vidlog --help)", reason.join(" "));
            return ExitCode::from(2);
        }
    };
    say::init_logging();
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::View(_) | Command::Demo(_)
    ) {
        // Short-lived commands end quietly when their output's reader goes away
        // (`vidlog info run.vlog | head -1`), as other command-line tools do; the server
        // commands keep Rust's default (write errors, which they ignore) and keep serving.
        // SAFETY: setting a signal's disposition to the default before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Frame(args) => cmd::frame::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::View(args) => cmd::view::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes (a cause the message above it already quotes
            // is not repeated).
            let mut line = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                if line.contains(&cause) {
                    continue;
                }
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&cause);
            }
            say!("vidlog: error: {line}");
            ExitCode::FAILURE
        }
    }
}
