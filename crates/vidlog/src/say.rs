//! What the binary tells its user on stderr, and the log subscriber for the libraries'
//! `tracing` events. A write that fails (stderr closed, its reader gone) is dropped, never a
//! panic: a server whose terminal went away keeps serving and still finishes its files.
//!
//! `VIDLOG_LOG` sets the log level (`error`, `warn` (default), `info`, `debug`, `trace`).

use std::io::Write;

/// Writes one line to stderr; errors are ignored.
pub fn line(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// `say!("...", args)`: one line to stderr that never panics (see the module documentation).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Installs the stderr log subscriber at the `VIDLOG_LOG` level; a bad value is said once and
/// the default kept.
pub fn init_logging() {
    use tracing_subscriber::filter::LevelFilter;
    let level = match std::env::var("VIDLOG_LOG") {
        Ok(text) => text.parse::<LevelFilter>().unwrap_or_else(|_| {
            say!("vidlog: VIDLOG_LOG={text:?} is not a level (error, warn, info, debug, trace); using warn");
            LevelFilter::WARN
        }),
        Err(_) => LevelFilter::WARN,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .log_internal_errors(false)
        .try_init();
}
