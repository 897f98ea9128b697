//! Parity with the Python reference (Pillow + torchvision preprocessing, open_clip's tokenizer)
//! on the committed fixtures, and the bad-input checklist of `shared/guide/reliability.md` for
//! decoding. Goldens come from `fixtures/generate.py`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clip_preprocess::image::transform::{normalize, resize_and_crop};
use clip_preprocess::image::{self, DecodeLimits, PreprocessConfig, Resize, Rgb8};
use clip_preprocess::text::Tokenizer;
use clip_preprocess::ImageError;

// ---------------------------------------------------------------------------------------------
// Allocation tracking: peak bytes allocated by the current thread (tests run on many threads).

struct Tracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| {
            let v = l.get() + layout.size() as isize;
            l.set(v);
            let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
        });
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get() - layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Runs `f` and returns its result with the peak extra bytes it allocated on this thread.
fn peak_alloc<T>(f: impl FnOnce() -> T) -> (T, isize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

// ---------------------------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn read_json(rel: &str) -> serde_json::Value {
    let path = fixtures().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run fixtures/generate.py",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

struct Goldens {
    data: Vec<u8>,
}

impl Goldens {
    fn load() -> Goldens {
        let path = fixtures().join("preprocess/goldens.safetensors");
        Goldens {
            data: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }
    fn tensor(&self, key: &str) -> (Vec<usize>, Vec<u8>) {
        let st = safetensors::SafeTensors::deserialize(&self.data).unwrap();
        let t = st.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        (t.shape().to_vec(), t.data().to_vec())
    }
}

fn config(manifest: &serde_json::Value, name: &str) -> PreprocessConfig {
    let c = &manifest["configs"][name];
    let triple = |v: &serde_json::Value| -> [f32; 3] {
        let a: Vec<f32> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        [a[0], a[1], a[2]]
    };
    let crop = c["crop"].as_u64().unwrap() as u32;
    PreprocessConfig {
        resize: Some(Resize::ShortestEdge(
            c["shortest_edge"].as_u64().unwrap() as u32
        )),
        crop: Some((crop, crop)),
        normalize: Some((triple(&c["mean"]), triple(&c["std"]))),
        ..PreprocessConfig::openai(crop)
    }
}

fn decode_fixture(rel: &str) -> image::DecodedImage {
    image::open(&fixtures().join(rel), &DecodeLimits::default())
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[derive(Debug, Default)]
struct Diff {
    max: u8,
    off_by_more_than_one: usize,
    differing: usize,
    total: usize,
}

fn diff(a: &[u8], b: &[u8]) -> Diff {
    assert_eq!(a.len(), b.len());
    let mut d = Diff {
        total: a.len(),
        ..Diff::default()
    };
    for (x, y) in a.iter().zip(b) {
        let e = x.abs_diff(*y);
        d.max = d.max.max(e);
        d.differing += usize::from(e > 0);
        d.off_by_more_than_one += usize::from(e > 1);
    }
    d
}

#[test]
fn preprocessing_matches_pillow_and_torchvision() {
    let manifest = read_json("preprocess/manifest.json");
    let goldens = Goldens::load();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for entry in manifest["entries"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let key = entry["key"].as_str().unwrap();
        let exact = entry["exact"].as_bool().unwrap();
        let cfg = config(&manifest, entry["config"].as_str().unwrap());
        let img = decode_fixture(file);
        let ours = resize_and_crop(&img, &cfg);
        let (shape, reference) = goldens.tensor(key);
        assert_eq!(
            shape,
            vec![ours.height as usize, ours.width as usize, 3],
            "{key}"
        );
        let d = diff(&ours.data, &reference);
        report.push(format!("{key}: {d:?}"));
        let ok = if exact {
            d.differing == 0
        } else {
            // parity.md: >= 99 % of values within one 8-bit level, none off by more than a few.
            (d.off_by_more_than_one as f64) <= 0.01 * d.total as f64 && d.max <= 32
        };
        if !ok {
            failures.push(format!("{key} (exact: {exact}): {d:?}"));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "preprocessing differs:\n{}",
        failures.join("\n")
    );
}

#[test]
fn extreme_aspect_ratios_cost_only_the_crop() {
    let manifest = read_json("preprocess/manifest.json");
    let img = decode_fixture("images/strip.png");
    assert_eq!((img.width, img.height), (3, 400));
    let cfg = config(&manifest, "openai224");
    // The reference resizes to 224 x 29866 (20 MB) before cropping; we resample the crop only.
    let (rgb, peak) = peak_alloc(|| resize_and_crop(&img, &cfg));
    assert_eq!((rgb.width, rgb.height), (224, 224));
    assert!(peak < 2 << 20, "allocated {peak} bytes");
}

#[test]
fn normalization_is_bit_exact_with_totensor_normalize() {
    let manifest = read_json("preprocess/manifest.json");
    let goldens = Goldens::load();
    let cfg = config(&manifest, "tiny64");
    let mut checked = 0;
    for entry in manifest["entries"].as_array().unwrap() {
        if entry["config"] != "tiny64" {
            continue;
        }
        let key = entry["key"].as_str().unwrap();
        let (shape, u8s) = goldens.tensor(key);
        let (_, floats) = goldens.tensor(&format!("{key}:pixels"));
        let reference: Vec<f32> = floats
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let rgb = Rgb8 {
            height: shape[0] as u32,
            width: shape[1] as u32,
            data: u8s,
        };
        let ours = normalize(&rgb, &cfg);
        assert_eq!(ours.data, reference, "{key}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} images checked");
}

#[test]
fn exif_orientations_are_applied() {
    let base = decode_fixture("images/orient_base.png");
    for o in 1..=8 {
        let img = decode_fixture(&format!("images/orient_{o}.png"));
        assert_eq!(
            (img.width, img.height),
            (base.width, base.height),
            "orientation {o}"
        );
        assert_eq!(img.data, base.data, "orientation {o}");
    }
    // A JPEG stored sideways (160x107 rotated) with orientation 6 comes out upright.
    let jpeg = decode_fixture("images/rocket_orient6.jpg");
    assert_eq!((jpeg.width, jpeg.height), (160, 107));
}

#[test]
fn format_is_sniffed_from_content_not_extension() {
    let dir = tempdir("sniff");
    let png = std::fs::read(fixtures().join("photos/horse.png")).unwrap();
    let renamed = dir.join("horse.jpg");
    std::fs::write(&renamed, &png).unwrap();
    let img = image::open(&renamed, &DecodeLimits::default()).unwrap();
    assert_eq!(img.format, image::ImageFormat::Png);
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-preprocess-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn decode_bytes(bytes: &[u8]) -> Result<image::DecodedImage, ImageError> {
    image::decode(bytes, "test-input.jpg", &DecodeLimits::default())
}

#[test]
fn junk_is_a_typed_error_naming_the_file() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("one byte", vec![0xff]),
        (
            "random",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
        (
            "html",
            b"<!DOCTYPE html><html><body>not an image</body></html>".to_vec(),
        ),
        (
            "pdf",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n".to_vec(),
        ),
        (
            "svg",
            b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        let err = decode_bytes(&bytes).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("test-input.jpg"), "{what}: {msg}");
        assert!(
            matches!(
                err,
                ImageError::Empty { .. } | ImageError::UnsupportedFormat { .. }
            ),
            "{what}: {err:?}"
        );
    }
    let html = decode_bytes(b"<html><body>x</body></html>")
        .unwrap_err()
        .to_string();
    assert!(html.contains("HTML"), "{html}");
}

#[test]
fn truncated_files_fail_cleanly_and_deterministically() {
    let files = [
        "photos/rocket.jpg",
        "photos/horse.png",
        "images/chelsea_lossy.webp",
        "images/chelsea_lossless.webp",
        "images/chelsea.gif",
        "images/chelsea_small.bmp",
        "images/chelsea_small.tiff",
        "images/chelsea_cmyk.jpg",
        "images/anim.png",
    ];
    for file in files {
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        for percent in [1, 50, 99] {
            let cut = &bytes[..bytes.len() * percent / 100];
            let first = decode_bytes(cut)
                .map(|i| i.data.len())
                .map_err(|e| e.to_string());
            let second = decode_bytes(cut)
                .map(|i| i.data.len())
                .map_err(|e| e.to_string());
            assert_eq!(first, second, "{file} at {percent}%: not deterministic");
            if let Err(e) = &first {
                assert!(e.contains("test-input.jpg"), "{file} at {percent}%: {e}");
            }
            // A truncated JPEG is refused, as Pillow does, not filled in.
            if file.ends_with(".jpg") {
                let e = first.expect_err(&format!("{file} cut at {percent}% decoded"));
                assert!(
                    percent == 1 || e.contains("truncated"),
                    "{file} at {percent}%: {e}"
                );
            }
        }
        // Bytes after the end (a phone's appended video or metadata) do not matter, even
        // ones that look like markers.
        // A cut JPEG with a whole one appended is still cut, as Pillow says.
        if file.ends_with(".jpg") {
            let mut spliced = bytes[..bytes.len() / 2].to_vec();
            spliced.extend_from_slice(&bytes);
            let e = decode_bytes(&spliced).unwrap_err().to_string();
            assert!(e.contains("truncated"), "{file} spliced: {e}");
        }
        let mut trailed = bytes.clone();
        trailed.extend_from_slice(b"\xff\xda\x00\x08 trailer \xff\xd8");
        assert!(decode_bytes(&trailed).is_ok(), "{file} with a trailer");
    }
}

fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let crc = crc32(&c[4..]);
    c.extend_from_slice(&crc.to_be_bytes());
    c
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png(width: u32, height: u32, color_type: u8, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, color_type, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IDAT", idat));
    out.extend(png_chunk(b"IEND", b""));
    out
}

/// A real, fully valid 14000 x 14000 grey PNG (196 megapixels) compressed to a few hundred KB.
fn flat_png(side: u32) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let row = vec![0u8; side as usize + 1];
    for _ in 0..side {
        enc.write_all(&row).unwrap();
    }
    png(side, side, 0, &enc.finish().unwrap())
}

fn gif_with_screen(width: u16, height: u16) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&width.to_le_bytes());
    g.extend_from_slice(&height.to_le_bytes());
    g.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    g.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    // One 1x1 frame.
    g.extend_from_slice(&[0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
    g.extend_from_slice(&[2, 2, 0x4c, 0x01, 0]);
    g.push(0x3b);
    g
}

fn jpeg_with_size(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = std::fs::read(fixtures().join("images/rocket_orient6.jpg")).unwrap();
    // Patch the first SOF0/SOF2 marker's height and width.
    let pos = bytes
        .windows(2)
        .position(|w| w[0] == 0xff && (w[1] == 0xc0 || w[1] == 0xc2))
        .expect("SOF marker");
    bytes[pos + 5..pos + 7].copy_from_slice(&height.to_be_bytes());
    bytes[pos + 7..pos + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

#[test]
fn dimension_bombs_are_refused_before_allocating() {
    let flat = flat_png(14_000);
    let bombs: Vec<(&str, Vec<u8>)> = vec![
        ("PNG IHDR 65535x65535", png(65_535, 65_535, 2, b"")),
        (
            "PNG IHDR 2^31-1 square",
            png(0x7fff_ffff, 0x7fff_ffff, 2, b""),
        ),
        ("flat 14000x14000 PNG", flat),
        (
            "GIF logical screen 65535x65535",
            gif_with_screen(65_535, 65_535),
        ),
        ("JPEG SOF 65500x65500", jpeg_with_size(65_500, 65_500)),
    ];
    for (what, bytes) in bombs {
        let start = Instant::now();
        let (result, peak) = peak_alloc(|| decode_bytes(&bytes));
        let elapsed = start.elapsed();
        let err = result.expect_err(what);
        assert!(
            matches!(err, ImageError::TooLarge { .. }),
            "{what}: expected TooLarge, got {err}"
        );
        assert!(!err.to_string().contains("0x0"), "{what}: {err}");
        assert!(peak < 64 << 20, "{what}: allocated {} MiB", peak >> 20);
        assert!(elapsed < Duration::from_secs(1), "{what}: took {elapsed:?}");
    }
}

#[test]
fn animations_decode_their_first_frame_only() {
    for file in ["images/anim.gif", "images/anim.png", "images/anim.webp"] {
        let (img, peak) = peak_alloc(|| decode_fixture(file));
        assert_eq!((img.width, img.height), (48, 32), "{file}");
        assert!(peak < 1 << 20, "{file}: {peak} bytes for a 48x32 frame");
    }
}

#[test]
fn corrupt_exif_is_ignored() {
    let mut ok = png(1, 1, 0, &{
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[0, 77]).unwrap();
        enc.finish().unwrap()
    });
    let iend = ok.len() - 12;
    let garbage = png_chunk(b"eXIf", b"MM\x00\x2a\xff\xff\xff\xffgarbage");
    ok.splice(iend..iend, garbage);
    let img = decode_bytes(&ok).unwrap();
    assert_eq!(
        (img.width, img.height, img.data.as_slice()),
        (1, 1, &[77u8][..])
    );
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

#[test]
fn tokenizer_matches_open_clip_on_the_corpus() {
    let cases = read_json("tokenizer/cases.json");
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
    let golden = read_json("tokenizer/codepoints.json");
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

#[test]
fn folders_are_refused_pipes_read_and_big_files_not_read() {
    let dir = tempdir("open-kinds");
    let limits = DecodeLimits::default();
    // A folder, and a FIFO named on purpose.
    let err = image::open(&dir, &limits).unwrap_err().to_string();
    assert!(err.contains("a folder, not an image file"), "{err}");
    #[cfg(unix)]
    {
        let fifo = dir.join("pipe.jpg");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Named on purpose, a pipe is read (here from a writer thread), up to the limit.
        let png = flat_png(8);
        let writer = {
            let (fifo, png) = (fifo.clone(), png.clone());
            std::thread::spawn(move || std::fs::write(fifo, png).unwrap())
        };
        assert_eq!(image::open(&fifo, &limits).unwrap().width, 8);
        writer.join().unwrap();
        let small = DecodeLimits {
            max_alloc_bytes: 70,
            ..limits
        };
        let writer = std::thread::spawn({
            let fifo = fifo.clone();
            move || {
                let _ = std::fs::write(fifo, png);
            }
        });
        let err = image::open(&fifo, &small).unwrap_err();
        assert!(matches!(err, ImageError::FileTooLarge { .. }), "{err:?}");
        writer.join().unwrap();
    }
    // Over the allocation limit: refused by its size, unread.
    let big = dir.join("big.png");
    std::fs::write(&big, flat_png(8)).unwrap();
    let small = DecodeLimits {
        max_alloc_bytes: 10,
        ..limits
    };
    let err = image::open(&big, &small).unwrap_err();
    assert!(
        matches!(err, ImageError::FileTooLarge { limit: 10, .. }),
        "{err:?}"
    );
    assert!(image::open(&big, &limits).is_ok());
    // A large file that is no image is refused by its first bytes.
    let text = dir.join("notes.jpg");
    std::fs::write(&text, "<html>".repeat(100_000)).unwrap();
    let err = image::open(&text, &limits).unwrap_err().to_string();
    assert!(err.contains("HTML") && err.contains("notes.jpg"), "{err}");
}
