//! `clip embed`: JSON lines and NumPy output.

use clip_test_support::temp_dir;

use crate::{run, stderr, TestContext, OPENAI};

#[test]
fn embed_jsonl_keeps_input_order_and_normalizes() {
    let context = TestContext::new();
    let out = context.ok(&[
        "embed",
        "--text",
        "a dog",
        "--image",
        "photos/horse.png",
        "--text",
        "a cat",
        "-m",
        OPENAI,
    ]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["text", "image", "text"]);
    assert_eq!(rows[1]["input"], "photos/horse.png");
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["input", "kind", "embedding"]);
    for r in &rows {
        let e: Vec<f64> = r["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(e.len(), 16);
        let norm: f64 = e.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
    let raw = context.ok(&[
        "embed",
        "--image",
        "photos/horse.png",
        "--raw",
        "-m",
        OPENAI,
    ]);
    let raw: serde_json::Value = serde_json::from_str(raw.trim()).unwrap();
    let norm: f64 = raw["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap().powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        (norm - 1.0).abs() > 1e-3,
        "raw features should not be unit length"
    );
}

#[test]
fn embed_npy_writes_a_numpy_array() {
    let context = TestContext::new();
    let tmp = temp_dir();
    let dir = tmp.path();
    let file = dir.join("out.npy");
    let out = context.ok(&[
        "embed",
        "--image",
        "photos/horse.png",
        "--text",
        "a horse",
        "--format",
        "npy",
        "-o",
        file.to_str().unwrap(),
        "-m",
        OPENAI,
    ]);
    let listing: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(listing["shape"], serde_json::json!([2, 16]));
    assert_eq!(listing["rows"][0]["kind"], "image");
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'shape': (2, 16)"),
        "{header}"
    );
    assert_eq!(bytes.len(), 10 + header_len + 2 * 16 * 4);
    let o = run(&mut context.clip(&["embed", "--text", "x", "--format", "npy", "-m", OPENAI]));
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(stderr(&o).contains("--output"), "{}", stderr(&o));
}
