//! End-to-end tests of the live side of the `vidlog` binary: `vidlog view FILE` serves a
//! recording file read-only (API, viewer info, MP4 download checked with ffprobe), and the
//! SDK's `spawn()` starts `vidlog serve` in the background when nothing listens.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vidlog_sdk::{RecordingStream, SpawnOptions, TimeCell, VideoCodec, VideoStream};
use vidlog_testdata::{Fixture, ffprobe_frames, fixture};
use vidlog_video::bitstream::h264::split_access_units;

const ENTITY: &str = "camera/front";

fn vidlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vidlog"))
        .args(args)
        .output()
        .expect("running vidlog")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

struct HttpAnswer {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

fn http_get(addr: SocketAddr, path: &str) -> HttpAnswer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let headers = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    HttpAnswer {
        status: headers[9..12].parse().expect("status"),
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn json(answer: &HttpAnswer) -> serde_json::Value {
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    serde_json::from_slice(&answer.body).expect("JSON body")
}

/// Ends a child this test started (by its id): Ctrl-C (SIGINT), so it cleans up after
/// itself, then a kill if it is still running after 10 s; and reaps it.
struct Running(Child);

impl Running {
    /// Ctrl-C, then waits (20 s at most) for the exit status.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "vidlog did not stop on Ctrl-C");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return; // already reaped
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn view_serves_a_recording_file_read_only() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("run.vlog");
    let imported = vidlog(&[
        "import",
        path_str(&fixture(Fixture::X264HighBf2)),
        "--entity",
        ENTITY,
        "--fps",
        "30",
        "-o",
        path_str(&rec),
    ]);
    assert!(imported.status.success(), "{imported:?}");
    let before = std::fs::read(&rec).expect("read recording");

    let (child, addr) = start_server(&["view", path_str(&rec)]);

    let list = json(&http_get(addr, "/api/recordings"));
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 1, "{list:?}");
    let id = list[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(list[0]["live"], false);
    assert_eq!(list[0]["video_samples"], 90);
    assert_eq!(list[0]["entities"], serde_json::json!([ENTITY]));

    let info = json(&http_get(
        addr,
        &format!("/api/recordings/{id}/video/info?entity={ENTITY}"),
    ));
    assert_eq!(info["samples"], 90);
    assert_eq!(info["live"], false);
    assert_eq!(
        (&info["width"], &info["height"]),
        (&320.into(), &240.into())
    );
    assert!(
        info["codec_string"]
            .as_str()
            .is_some_and(|c| c.starts_with("avc1.64")),
        "{info}"
    );

    // The viewer's page and the MP4 download come from the same server.
    let page = http_get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.headers.contains("text/html"));
    let mp4 = http_get(
        addr,
        &format!("/api/recordings/{id}/export.mp4?entity={ENTITY}"),
    );
    assert_eq!(mp4.status, 200, "{}", String::from_utf8_lossy(&mp4.body));
    let out = dir.path().join("download.mp4");
    std::fs::write(&out, &mp4.body).expect("write");
    assert_eq!(ffprobe_frames(&out).len(), 90);

    drop(child);
    assert_eq!(
        std::fs::read(&rec).expect("read recording"),
        before,
        "read-only"
    );
}

/// Starts `vidlog ARGS --port 0`; returns the child and the address from its first line.
fn start_server(args: &[&str]) -> (Running, SocketAddr) {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_vidlog"))
            .args(args)
            .args(["--port", "0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting vidlog"),
    );
    let stderr = child.0.stderr.take().expect("stderr");
    let mut stderr = BufReader::new(stderr);
    // Log lines (files it could not open, say) may come before the URL.
    let mut line = String::new();
    while !line.contains("http://") {
        line.clear();
        let read = stderr.read_line(&mut line).expect("reading stderr");
        assert!(read > 0, "vidlog ended without printing its URL");
    }
    // Keep draining its stderr, or a full pipe would block its next log line.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    (child, addr)
}

#[test]
fn serve_lists_the_recordings_already_in_its_data_dir() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("earlier.vlog");
    let imported = vidlog(&[
        "import",
        path_str(&fixture(Fixture::X264HighBf0)),
        "--entity",
        ENTITY,
        "--fps",
        "30",
        "-o",
        path_str(&rec),
    ]);
    assert!(imported.status.success(), "{imported:?}");
    std::fs::write(dir.path().join("broken.vlog"), b"not a recording").expect("write");
    let (_child, addr) = start_server(&["serve", "--data-dir", path_str(dir.path())]);
    let list = json(&http_get(addr, "/api/recordings"));
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 1, "the readable file only: {list:?}");
    assert_eq!(list[0]["live"], false);
    assert_eq!(list[0]["video_samples"], 90);
    assert_eq!(list[0]["files"], serde_json::json!(["earlier.vlog"]));
}

#[test]
fn view_refuses_a_missing_file() {
    let _serial = serial();
    let out = vidlog(&["view", "/nonexistent/run.vlog", "--port", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/run.vlog") && err.contains("not a recording file"),
        "{err}"
    );
}

/// These tests start servers and probe ports; run them one at a time so one test's
/// servers and port probes never meet another's.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

#[test]
fn spawn_starts_a_server_when_none_listens() {
    let _serial = serial();
    // The test binary lives in target/<profile>/deps; the vidlog binary one level up.
    let found = vidlog_sdk::spawn::find_binary().expect("finds the built vidlog");
    assert_eq!(
        canonical(&found),
        canonical(Path::new(env!("CARGO_BIN_EXE_vidlog")))
    );

    // Other tests of this binary start servers on kernel-chosen ports in parallel: pick a
    // port nothing listens on now (a freed port can be handed out again at once).
    let addr: SocketAddr = (0..20)
        .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
        .find(|addr| TcpStream::connect(addr).is_err())
        .expect("a port nothing listens on");
    assert!(TcpStream::connect(addr).is_err(), "nothing listens yet");
    let options = SpawnOptions {
        addr: addr.to_string(),
        ..SpawnOptions::default()
    };
    let rec = RecordingStream::builder("spawn_test")
        .recording_id("spawned")
        .spawn_with(&options)
        .expect("spawns a server and connects");
    let pid = rec.spawned_server().expect("a server was started");
    // Stop it at the end by its id (it outlives this process otherwise, by design).
    struct StopServer(u32);
    impl Drop for StopServer {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-INT", &self.0.to_string()])
                .status();
        }
    }
    let _stop = StopServer(pid);

    let bytes = std::fs::read(fixture(Fixture::X264HighBf0)).expect("fixture");
    let aus = split_access_units(&bytes).expect("access units");
    rec.log_static(ENTITY, &VideoStream::new(VideoCodec::H264))
        .unwrap();
    for (n, au) in aus.iter().enumerate() {
        rec.set_time("video_time", TimeCell::from_duration_secs(n as f64 / 30.0));
        rec.log(ENTITY, &VideoStream::from_sample(au.data.clone()))
            .unwrap();
    }
    rec.flush().expect("the server acknowledged everything");

    let list = json(&http_get(addr, "/api/recordings"));
    let spawned = list
        .as_array()
        .and_then(|l| l.iter().find(|r| r["id"] == "spawned"))
        .unwrap_or_else(|| panic!("no recording \"spawned\" in {list}"));
    assert_eq!(spawned["video_samples"], aus.len());
    assert_eq!(spawned["live"], true);

    // A second spawn finds the running server and starts nothing.
    let again = RecordingStream::builder("spawn_test")
        .recording_id("second")
        .spawn_with(&options)
        .expect("connects to the running server");
    assert_eq!(again.spawned_server(), None);
    drop(again);
    drop(rec);

    drop(_stop);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the spawned server stops on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server whose stderr goes away (its terminal closed, a log pipe's reader gone) keeps
/// serving, takes a producer's stream, and still finishes its recording file on Ctrl-C.
#[test]
fn serve_keeps_working_after_its_stderr_is_closed() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vidlog"))
        .args(["serve", "--port", "0", "--data-dir", path_str(dir.path())])
        .env("VIDLOG_LOG", "info") // log lines while serving, into the closed pipe
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting vidlog serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut said = String::new();
    let addr: SocketAddr = loop {
        let mut line = String::new();
        let read = stderr.read_line(&mut line).expect("reading stderr");
        assert!(read > 0, "vidlog serve ended without its URL: {said}");
        said.push_str(&line);
        if let Some(addr) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .and_then(|a| a.trim_end_matches('/').parse().ok())
        {
            break addr;
        }
    };
    drop(stderr); // the read end closes: every later write to stderr fails with EPIPE
    let mut child = Running(child);

    let demo = vidlog(&[
        "demo",
        "--connect",
        &addr.to_string(),
        "--seconds",
        "1",
        "--fast",
    ]);
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let list = json(&http_get(addr, "/api/recordings"));
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["video_samples"], 30, "{list:?}");

    let status = child.interrupt();
    assert!(status.success(), "a clean stop, not a panic: {status}");
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "vlog"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let info = vidlog(&["info", path_str(&files[0]), "--json"]);
    assert!(info.status.success());
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("JSON");
    assert!(info["recovery"].is_null(), "the file was finished: {info}");
}
