//! SDK → network sink → `vidlog-server`, with real H.264: a subscriber and the server's
//! file get every sample byte-identical and in order; several producers at once; a
//! producer killed mid-stream; a server restarted under a producer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vidlog_sdk::{
    BatcherConfig, EntityPath, NetworkOptions, NetworkSink, RecordingStream, TimeCell, VideoCodec,
    VideoStream,
};
use vidlog_server::{RunningServer, Server, ServerConfig};
use vidlog_store::{Recording, RecordingInfo};
use vidlog_testdata::{Fixture, fixture};
use vidlog_types::arrow_array::Array;
use vidlog_video::bitstream::h264::split_access_units;

fn access_units() -> Vec<Vec<u8>> {
    let bytes = std::fs::read(fixture(Fixture::X264HighBf0)).unwrap();
    split_access_units(&bytes)
        .unwrap()
        .into_iter()
        .map(|au| au.data)
        .collect()
}

fn start_server(dir: &Path, port: u16) -> RunningServer {
    Server::start(ServerConfig {
        port,
        data_dir: dir.to_path_buf(),
        ..ServerConfig::default()
    })
    .unwrap()
}

/// Small chunks, so every test sends many.
fn small_chunks() -> BatcherConfig {
    BatcherConfig {
        flush_bytes: 20_000,
        ..BatcherConfig::default()
    }
}

/// Every sample of `entity` in the given files, in order.
fn file_samples(files: &[PathBuf], entity: &str) -> Vec<Vec<u8>> {
    let entity = EntityPath::parse(entity).unwrap();
    let mut out = Vec::new();
    for file in files {
        let recording = Recording::open(file).unwrap();
        if let Some(report) = recording.recovery() {
            assert!(report.corrupt.is_empty(), "{}: {report}", file.display());
        }
        let Some(video) = recording.store.video(&entity) else {
            continue;
        };
        for n in 0..video.len() {
            out.push(
                recording
                    .store
                    .video_sample(&entity, n)
                    .unwrap()
                    .as_slice()
                    .to_vec(),
            );
        }
    }
    out
}

fn log_all(rec: &RecordingStream, entity: &str, aus: &[Vec<u8>]) {
    rec.log_static(entity, &VideoStream::new(VideoCodec::H264))
        .unwrap();
    for (n, au) in aus.iter().enumerate() {
        rec.set_time("frame", TimeCell::from_sequence(n as i64));
        rec.log(entity, &VideoStream::from_sample(au.clone()))
            .unwrap();
    }
}

#[test]
fn subscriber_and_file_get_every_sample() {
    let aus = access_units();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), 0);
    let mut subscription = server.subscribe("live1");
    let rec = RecordingStream::builder("net_test")
        .recording_id("live1")
        .batcher_config(small_chunks())
        .connect(&server.addr().to_string())
        .unwrap();
    let producer = {
        let rec = rec.clone();
        let aus = aus.clone();
        std::thread::spawn(move || log_all(&rec, "camera/front", &aus))
    };
    let mut received = Vec::new();
    let mut chunks = 0;
    while received.len() < aus.len() {
        let chunk = subscription.recv_timeout(Duration::from_secs(20)).unwrap();
        chunks += 1;
        assert_eq!(chunk.entity().to_string(), "camera/front");
        if let Some(samples) = chunk.blobs(VideoStream::SAMPLE) {
            received.extend((0..samples.len()).map(|i| samples.value(i).to_vec()));
        }
    }
    producer.join().unwrap();
    rec.flush().unwrap();
    assert!(chunks > 3, "expected several chunks, got {chunks}");
    assert_eq!(received.len(), aus.len());
    for (n, (got, want)) in received.iter().zip(&aus).enumerate() {
        assert_eq!(got, want, "sample {n}");
    }
    assert_eq!(subscription.skipped_chunks(), 0);
    let listed = server.recordings();
    let live1 = listed.iter().find(|r| r.id == "live1").unwrap();
    assert!(live1.live);
    assert_eq!(live1.application_id, "net_test");
    assert_eq!(live1.video_samples, aus.len() as u64);
    drop(rec);
    server.shutdown();
    let file = dir.path().join("live1.vlog");
    assert!(Recording::open(&file).unwrap().recovery().is_none());
    assert_eq!(file_samples(&[file], "camera/front"), aus);
}

#[test]
fn two_producers_and_two_threads_at_once() {
    let aus = Arc::new(access_units());
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), 0);
    let addr = server.addr().to_string();
    std::thread::scope(|scope| {
        for id in ["left", "right"] {
            let rec = RecordingStream::builder("net_test")
                .recording_id(id)
                .batcher_config(small_chunks())
                .connect(&addr)
                .unwrap();
            for cam in ["cam/0", "cam/1"] {
                let rec = rec.clone();
                let aus = aus.clone();
                scope.spawn(move || {
                    log_all(&rec, cam, &aus);
                    rec.flush().unwrap();
                });
            }
        }
    });
    server.shutdown();
    for id in ["left", "right"] {
        let file = dir.path().join(format!("{id}.vlog"));
        for cam in ["cam/0", "cam/1"] {
            assert_eq!(
                file_samples(std::slice::from_ref(&file), cam),
                *aus,
                "{id} {cam}"
            );
        }
    }
}

/// Runs in a child process (see `killed_producer_leaves_whole_samples`).
#[test]
#[ignore = "child process of killed_producer_leaves_whole_samples"]
fn child_streams_until_killed() {
    let (Ok(addr), Ok(progress)) = (
        std::env::var("VIDLOG_TEST_SERVER"),
        std::env::var("VIDLOG_TEST_PROGRESS"),
    ) else {
        return;
    };
    let aus = access_units();
    let rec = RecordingStream::builder("child")
        .recording_id("killed")
        .connect(&addr)
        .unwrap();
    rec.log_static("cam", &VideoStream::new(VideoCodec::H264))
        .unwrap();
    for n in 0.. {
        rec.set_time("frame", TimeCell::from_sequence(n as i64));
        rec.log("cam", &VideoStream::from_sample(aus[n % aus.len()].clone()))
            .unwrap();
        if n % 10 == 9 {
            // Acknowledged by the server: the parent may count on it.
            rec.flush().unwrap();
            std::fs::write(&progress, (n + 1).to_string()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn killed_producer_leaves_whole_samples() {
    let aus = access_units();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), 0);
    let progress = dir.path().join("progress");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_streams_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("VIDLOG_TEST_SERVER", server.addr().to_string())
        .env("VIDLOG_TEST_PROGRESS", &progress)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let read_progress = || -> usize {
        std::fs::read_to_string(&progress)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_progress() < 150 {
        assert!(Instant::now() < deadline, "child made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
    let acked = read_progress();
    // The server notices the dead connection and keeps serving.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let killed = server
            .recordings()
            .into_iter()
            .find(|r| r.id == "killed")
            .unwrap();
        if !killed.live {
            assert!(killed.video_samples as usize >= acked);
            break;
        }
        assert!(Instant::now() < deadline, "connection still counted live");
        std::thread::sleep(Duration::from_millis(20));
    }
    let rec = RecordingStream::builder("after")
        .recording_id("after")
        .connect(&server.addr().to_string())
        .unwrap();
    log_all(&rec, "cam", &aus[..10]);
    rec.flush().unwrap();
    drop(rec);
    server.shutdown();
    let samples = file_samples(&[dir.path().join("killed.vlog")], "cam");
    assert!(
        samples.len() >= acked,
        "{} samples stored, {acked} acknowledged",
        samples.len()
    );
    for (n, s) in samples.iter().enumerate() {
        assert_eq!(s, &aus[n % aus.len()], "sample {n}");
    }
    assert_eq!(
        file_samples(&[dir.path().join("after.vlog")], "cam"),
        &aus[..10]
    );
}

#[test]
fn server_restart_under_a_producer_loses_and_repeats_nothing() {
    let aus = access_units();
    let total = aus.len() * 3;
    let dir = tempfile::tempdir().unwrap();
    let first = start_server(dir.path(), 0);
    let addr = first.addr();
    let info = RecordingInfo {
        application_id: "net_test".into(),
        recording_id: "restart".into(),
        started_unix_nanos: 1,
        writer: "test".into(),
    };
    let options = NetworkOptions {
        max_backoff: Duration::from_millis(100),
        ..NetworkOptions::default()
    };
    let sink = Arc::new(NetworkSink::connect(&addr.to_string(), info, options).unwrap());
    let rec = RecordingStream::builder("net_test")
        .batcher_config(small_chunks())
        .sink(sink.clone())
        .unwrap();
    let logged = Arc::new(AtomicUsize::new(0));
    let producer = {
        let rec = rec.clone();
        let aus = aus.clone();
        let logged = logged.clone();
        std::thread::spawn(move || {
            rec.log_static("cam", &VideoStream::new(VideoCodec::H264))
                .unwrap();
            for n in 0..total {
                rec.set_time("frame", TimeCell::from_sequence(n as i64));
                rec.log("cam", &VideoStream::from_sample(aus[n % aus.len()].clone()))
                    .unwrap();
                logged.store(n + 1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    while logged.load(Ordering::SeqCst) < aus.len() {
        std::thread::sleep(Duration::from_millis(5));
    }
    first.shutdown();
    std::thread::sleep(Duration::from_millis(200));
    let second = start_server(dir.path(), addr.port());
    producer.join().unwrap();
    rec.flush().unwrap();
    assert!(sink.connections() >= 2, "the sink reconnected");
    assert_eq!(sink.dropped_chunks(), 0);
    drop(rec);
    second.shutdown();
    let files = [
        dir.path().join("restart.vlog"),
        dir.path().join("restart.1.vlog"),
    ];
    let samples = file_samples(&files, "cam");
    assert_eq!(samples.len(), total, "no sample lost or stored twice");
    for (n, s) in samples.iter().enumerate() {
        assert_eq!(s, &aus[n % aus.len()], "sample {n}");
    }
}

#[test]
fn refused_handshake_is_an_error_and_unreachable_server_is_not() {
    // Nothing listens on this port (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = NetworkOptions {
        connect_timeout: Duration::from_millis(200),
        flush_timeout: Duration::from_millis(300),
        ..NetworkOptions::default()
    };
    let rec = RecordingStream::builder("net_test")
        .connect_with(&format!("127.0.0.1:{port}"), options)
        .unwrap();
    log_all(&rec, "cam", &access_units()[..5]);
    let err = rec.flush().unwrap_err().to_string();
    assert!(err.contains("not connected"), "{err}");
    assert!(
        RecordingStream::builder("x")
            .connect("not an address/with/slashes")
            .is_err()
    );
}
