//! `heist data fetch` against a tiny HTTP server on 127.0.0.1 started by the test; no test
//! here needs the internet.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use heist::data::fetch::{self, FetchError};
use heist::data::{self, idx, subset, DataError, FileKind, FileSpec, Origin, Splits};

/// Serves `files` (path → body) to at most `max_requests` connections, answering 404 for
/// other paths, then stops. Returns the base URL, the request counter and the thread.
fn serve(
    files: HashMap<String, Vec<u8>>,
    max_requests: usize,
) -> (String, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(max_requests) {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            // Drain the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            let response = match files.get(&path) {
                Some(body) => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body);
                    r
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    (format!("http://{addr}/files"), count, handle)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heist-fetch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Small valid gzip files with the canonical names, and their specs.
fn fixtures() -> (HashMap<String, Vec<u8>>, [FileSpec; 4]) {
    let emb = subset::load(heist::data::Dataset::Fashion).expect("embedded subset");
    let small = emb.test.truncated(3);
    let raw = [
        idx::encode(&[3, 28, 28], &small.pixels),
        idx::encode(&[3], &small.labels),
        idx::encode(&[3, 28, 28], &small.pixels),
        idx::encode(&[3], &small.labels),
    ];
    let mut files = HashMap::new();
    let mut specs = Vec::new();
    for (bytes, kind) in raw.iter().zip(FileKind::ALL) {
        files.insert(
            format!("/files/{}.gz", kind.base_name()),
            subset::gzip(bytes).expect("gzip"),
        );
        let sha: &'static str = Box::leak(data::sha256_hex(bytes).into_boxed_str());
        specs.push(FileSpec { kind, sha256: sha });
    }
    (files, specs.try_into().expect("four"))
}

#[test]
fn fetches_verifies_stores_and_skips_verified_files() {
    let (files, specs) = fixtures();
    let (url, count, handle) = serve(files, 4);
    let dir = scratch("good");
    let got = fetch::fetch(&url, &dir, &specs, false).expect("fetch succeeds");
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|f| !f.already_present && f.downloaded > 0));
    assert_eq!(count.load(Ordering::SeqCst), 4);
    handle.join().expect("server thread");
    let (train, test) =
        data::load_dir(&dir, Origin::Flag, &specs, Splits::Both).expect("stored files verify");
    assert_eq!(train.len(), 3);
    assert_eq!(test.len(), 3);
    // A second fetch finds them verified and downloads nothing (no server is running).
    let again =
        fetch::fetch("http://127.0.0.1:9/", &dir, &specs, false).expect("no download needed");
    assert!(again.iter().all(|f| f.already_present && f.downloaded == 0));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_corrupted_download_is_rejected_and_not_stored() {
    let (mut files, specs) = fixtures();
    let key = format!("/files/{}.gz", FileKind::TrainLabels.base_name());
    // Replace the body by a valid gzip IDX file with one label changed.
    let mut raw = idx::encode(&[3], &[0, 0, 0]);
    raw[8] = 9;
    files.insert(key, subset::gzip(&raw).expect("gzip"));
    let (url, _count, handle) = serve(files, 2);
    let dir = scratch("corrupt");
    let err = fetch::fetch(&url, &dir, &specs, false).expect_err("checksum mismatch");
    match &err {
        FetchError::Invalid {
            url,
            source: DataError::Checksum { expected, .. },
        } => {
            assert!(url.ends_with("train-labels-idx1-ubyte.gz"), "{url}");
            assert_eq!(expected, specs[1].sha256);
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    handle.join().expect("server thread");
    // The first file verified and stays; the corrupt one was never written.
    assert!(dir.join("train-images-idx3-ubyte.gz").is_file());
    assert!(!dir.join("train-labels-idx1-ubyte.gz").exists());
    assert!(!dir.join(".train-labels-idx1-ubyte.gz.part").exists());
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_missing_file_on_the_mirror_is_an_http_error() {
    let (url, _count, handle) = serve(HashMap::new(), 1);
    let dir = scratch("404");
    let (_, specs) = fixtures();
    let err = fetch::fetch(&url, &dir, &specs, false).expect_err("404");
    assert!(matches!(err, FetchError::Http { .. }), "{err:?}");
    assert!(
        err.to_string().contains("train-images-idx3-ubyte.gz"),
        "{err}"
    );
    handle.join().expect("server thread");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
