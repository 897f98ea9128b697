//! The tokenizer against open_clip's on a corpus and on every code point, and texts that must
//! not make it panic.

use clip_preprocess::text::Tokenizer;
use clip_test_support::fixture_json;

#[test]
fn tokenizer_matches_open_clip_on_the_corpus() {
    let cases = fixture_json("tokenizer/cases.json");
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 1000, "corpus has {} strings", cases.len());
    let tok = Tokenizer::openai();
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expect: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let ours = tok.encode(text);
        if ours != expect {
            failures.push(format!(
                "{text:?}\n  ours:      {ours:?}\n  open_clip: {expect:?}"
            ));
        }
        // Truncation as the reference: the first 76 tokens then <end_of_text>.
        let mut full = vec![tok.sot()];
        full.extend(&expect);
        full.push(tok.eot());
        let t = tok.tokenize(text, 77, true).unwrap();
        if full.len() > 77 {
            full.truncate(77);
            full[76] = tok.eot();
        }
        assert_eq!(&t.ids[..full.len()], &full[..], "{text:?}");
        assert!(t.ids[full.len()..].iter().all(|&i| i == 0));
    }
    assert!(
        failures.is_empty(),
        "{} of {} strings differ:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn fnv1a64(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[test]
fn tokenizer_matches_open_clip_on_every_code_point() {
    let golden = fixture_json("tokenizer/codepoints.json");
    let block = golden["block"].as_u64().unwrap() as u32;
    let hashes: Vec<&str> = golden["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let tok = Tokenizer::openai();
    let mut failures = Vec::new();
    for (i, expect) in hashes.iter().enumerate() {
        let start = i as u32 * block;
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for cp in start..start + block {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let mut bytes = Vec::new();
            for id in tok.encode(c.encode_utf8(&mut [0; 4])) {
                bytes.extend_from_slice(&id.to_le_bytes());
            }
            bytes.extend_from_slice(&[0xff; 4]);
            h = fnv1a64(&bytes, h);
        }
        if format!("{h:016x}") != *expect {
            failures.push(format!("U+{start:04X}..U+{:04X}", start + block - 1));
        }
    }
    assert!(
        failures.is_empty(),
        "code point blocks differ: {failures:?}"
    );
}

#[test]
fn huge_and_odd_texts_never_panic() {
    let tok = Tokenizer::openai();
    let huge = "a photo of a dog. ".repeat(600_000); // ~10 MB
    let e = tok.tokenize(&huge, 77, false).unwrap_err();
    assert!(e.to_string().contains("context length is 77"), "{e}");
    assert_eq!(tok.tokenize(&huge, 77, true).unwrap().eot_position, 76);
    for text in ["", "\u{0}", "\u{202e}rtl override", "🏳️‍🌈", "עברית", "中文"] {
        tok.tokenize(text, 77, false).unwrap();
    }
}
