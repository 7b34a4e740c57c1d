//! One module per subcommand.

pub mod bench;
pub mod bench_decode;
pub mod demo;
pub mod export;
pub mod export_mcap;
pub mod frame;
pub mod import;
pub mod import_container;
pub mod info;
pub mod serve;
pub mod view;

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("size {s:?} is not WIDTHxHEIGHT, e.g. 1920x1080"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("width {w:?} is not a number"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("height {h:?} is not a number"))?;
    if w < 16 || h < 16 || w > 3840 || h > 2160 || !w.is_multiple_of(2) || !h.is_multiple_of(2) {
        return Err(format!(
            "size {w}x{h}: width and height must be even, 16x16 up to 3840x2160"
        ));
    }
    Ok((w, h))
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_owned());
    bar
}
