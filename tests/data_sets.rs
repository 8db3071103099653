//! Named data sets end to end: `tweedie data fetch` against a local HTTP server started by the test (a
//! good file, a wrong checksum, a 404, a connection closed mid-transfer), `data list` / `data verify`,
//! and MNIST-format IDX files written by the test trained on through `--data-dir`.

mod common;

use common::{fails_with, ok};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

/// The red-wine file's content, from the gzip copy the repository ships.
fn red_wine() -> Vec<u8> {
    let gz =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/winequality-red.csv.gz")).unwrap();
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut text).unwrap();
    text
}

/// Serves `connections` requests on loopback, then stops. Routes by the first path segment: `good`
/// (the file), `bad` (the file with one byte changed), `cut` (half the file, then the connection closes
/// although the header announced all of it); anything else is a 404.
fn serve(connections: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let body = red_wine();
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            respond(stream.unwrap(), &body);
        }
    });
    (base, handle)
}

fn respond(mut stream: TcpStream, body: &[u8]) {
    let mut request = String::new();
    BufReader::new(&stream).read_line(&mut request).unwrap();
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let route = path.trim_start_matches('/').split('/').next().unwrap_or("").to_string();
    let header = |status: &str, length: usize| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
    };
    let mut changed = body.to_vec();
    let last = changed.len() - 2;
    changed[last] = b'9';
    let reply: Vec<u8> = match route.as_str() {
        "good" => [header("200 OK", body.len()).as_bytes(), body].concat(),
        "bad" => [header("200 OK", body.len()).as_bytes(), &changed].concat(),
        "cut" => [header("200 OK", body.len()).as_bytes(), &body[..body.len() / 2]].concat(),
        _ => [header("404 Not Found", 9).as_bytes(), b"not found"].concat(),
    };
    let _ = stream.write_all(&reply);
    let _ = stream.flush();
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    entries
        .flatten()
        .flat_map(|e| if e.path().is_dir() { files_under(&e.path()) } else { vec![e.path()] })
        .collect()
}

#[test]
fn fetch_verifies_and_leaves_nothing_behind_on_failure() {
    let (base, server) = serve(4);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let d = data_dir.to_str().unwrap();
    for (route, needles) in [
        ("missing", &["missing/winequality-red.csv", "404"][..]),
        (
            "bad",
            &["bad/winequality-red.csv", "4a402cf041b025d4566d954c3b9ba8635a3a8a01e039005d97d6a710278cf05e"]
                [..],
        ),
        ("cut", &["cut/winequality-red.csv", "download failed"][..]),
    ] {
        let from = format!("{base}/{route}");
        fails_with(&["data", "fetch", "uci-redwine", "--data-dir", d, "--from", &from], needles);
        assert_eq!(files_under(&data_dir), Vec::<PathBuf>::new(), "{route}: nothing may be left behind");
        assert!(!data_dir.join("uci-redwine").exists(), "{route}: the folder the fetch created is removed");
    }
    let said = ok(&["data", "fetch", "uci-redwine", "--data-dir", d, "--from", &format!("{base}/good")]);
    assert!(said.contains("downloaded and verified"), "{said}");
    let fetched = data_dir.join("uci-redwine/winequality-red.csv");
    assert_eq!(std::fs::read(&fetched).unwrap(), red_wine());
    assert_eq!(files_under(&data_dir), vec![fetched.clone()], "only the verified file");
    server.join().unwrap();
    let list = ok(&["data", "list", "--data-dir", d, "--json"]);
    let wine: serde_json::Value = list
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["name"] == "uci-redwine")
        .unwrap();
    assert_eq!(
        (wine["found"].as_str(), wine["verified"].as_bool()),
        (fetched.parent().unwrap().to_str(), Some(true))
    );
    assert!(ok(&["data", "verify", "uci-redwine", "--data-dir", d]).contains("ok   uci-redwine"));
    // A file changed after the fetch fails verification, naming it.
    let mut text = red_wine();
    text[100] = b'7';
    std::fs::write(&fetched, &text).unwrap();
    fails_with(&["data", "verify", "uci-redwine", "--data-dir", d], &["1 file(s) failed verification"]);
    fails_with(&["data", "fetch", "cifar"], &["cifar", "mnist, fashion-mnist"]);
}

/// Writes an IDX file (gzip-compressed when the name ends in .gz).
fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0, 0, 8, dims.len() as u8];
    dims.iter().for_each(|d| bytes.extend_from_slice(&d.to_be_bytes()));
    bytes.extend_from_slice(data);
    if path.extension().is_some_and(|e| e == "gz") {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        bytes = enc.finish().unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

/// `n` 28 x 28 images of a bright square at a position depending on the label, and the labels.
fn images(n: usize) -> (Vec<u8>, Vec<u8>) {
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let mut pixels = vec![0u8; n * 784];
    for (i, &label) in labels.iter().enumerate() {
        let (r0, c0) = (4 + 2 * label as usize, 6 + (i % 7));
        for r in r0..r0 + 6 {
            for c in c0..c0 + 6 {
                pixels[i * 784 + r * 28 + c] = 200 + (i % 50) as u8;
            }
        }
    }
    (pixels, labels)
}

/// An MNIST folder of `train` and `test` images under the published names.
fn write_mnist(folder: &Path, train: usize, test: usize) {
    std::fs::create_dir_all(folder).unwrap();
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let (pixels, labels) = images(n);
        write_idx(&folder.join(format!("{prefix}-images-idx3-ubyte.gz")), &[n as u32, 28, 28], &pixels);
        write_idx(&folder.join(format!("{prefix}-labels-idx1-ubyte.gz")), &[n as u32], &labels);
    }
}

#[test]
fn mnist_format_files_in_the_data_dir_train_and_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    write_mnist(&data_dir.join("mnist"), 300, 60);
    let (d, out) = (data_dir.to_str().unwrap(), dir.path().join("m.safetensors"));
    let o = out.to_str().unwrap();
    let train = [
        "train",
        "--target",
        "mnist",
        "--data-dir",
        d,
        "--s2",
        "diag",
        "--sigma",
        "0.5",
        "--steps",
        "20",
        "--batch",
        "32",
        "--width",
        "32",
        "--subset",
        "random:200",
        "--out",
        o,
        "--json",
    ];
    let summary: serde_json::Value = serde_json::from_str(ok(&train).trim()).unwrap();
    assert_eq!(
        (summary["dim"].as_u64(), summary["target"].as_str()),
        (Some(784), Some("mnist")),
        "{summary}"
    );
    let report: serde_json::Value =
        serde_json::from_str(ok(&["eval", "--model", o, "--data-dir", d, "--json"]).trim()).unwrap();
    assert_eq!(report["held_out_points"], 60, "the test split is held out: {report}");
    for key in ["held_out_loss", "held_out_dsm_loss", "psnr_denoised"] {
        assert!(report[key].as_f64().is_some_and(f64::is_finite), "{key} in {report}");
    }
    assert!((report["psnr_noisy"].as_f64().unwrap() - 6.0206).abs() < 1e-3, "sigma 0.5 on [0, 1]: {report}");
    assert!(report.get("test_esm_loss").is_none(), "exact score matching is skipped at D = 784: {report}");
    // `score` takes a data set's split as its input.
    let scores = dir.path().join("s1.npy");
    let said = ok(&[
        "score",
        "--model",
        o,
        "--input",
        "mnist:test",
        "--data-dir",
        d,
        "--out",
        scores.to_str().unwrap(),
    ]);
    assert!(said.contains("\"points\":60") && said.contains("\"dim\":784"), "{said}");
    // The checkpoint records the name, not the folder, and the pixel scaling.
    let meta = safetensors_metadata(&out);
    assert_eq!(
        (meta["target"].as_str(), meta["data.scaling"].as_str().map(|s| s.contains("[0, 1]"))),
        (Some("mnist"), Some(true))
    );
    // Without --data-dir the set is not found: one line naming where it looked and how to get it.
    fails_with(
        &["eval", "--model", o],
        &["data set mnist not found", "tweedie-tests-no-data-here/mnist", "tweedie data fetch mnist"],
    );
    // Bad files: one line naming the file.
    let bad = dir.path().join("bad");
    write_mnist(&bad, 20, 10);
    std::fs::copy(bad.join("train-labels-idx1-ubyte.gz"), bad.join("train-images-idx3-ubyte.gz")).unwrap();
    let target = format!("mnist={}", bad.display());
    fails_with(
        &["train", "--target", &target, "--steps", "1", "--out", o],
        &["train-images-idx3-ubyte.gz", "an IDX file of images"],
    );
    std::fs::write(bad.join("train-images-idx3-ubyte.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    fails_with(&["train", "--target", &target, "--steps", "1", "--out", o], &["train-images-idx3-ubyte.gz"]);
    write_idx(&bad.join("train-images-idx3-ubyte.gz"), &[20, 28, 28], &[0u8; 100]);
    fails_with(
        &["train", "--target", &target, "--steps", "1", "--out", o],
        &["100 data bytes", "exactly 15680"],
    );
    write_idx(&bad.join("train-images-idx3-ubyte.gz"), &[21, 28, 28], &vec![0u8; 21 * 784]);
    fails_with(
        &["train", "--target", &target, "--steps", "1", "--out", o],
        &["20 labels", "one label per image"],
    );
    fails_with(&["train", "--target", "mnist:valid", "--out", o], &["mnist:valid", "train or test"]);
    fails_with(&["train", "--target", "digits", "--subset", "5000", "--out", o], &["subset = 5000", "1500"]);
}

/// The metadata of a safetensors file, read with the safetensors crate alone.
fn safetensors_metadata(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    serde_json::to_value(meta.metadata().clone().unwrap_or_default()).unwrap()
}
