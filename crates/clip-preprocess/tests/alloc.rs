//! The tests that bound what decoding and preprocessing allocate. They run in a binary of
//! their own because the counting `#[global_allocator]` below wraps every test of the binary
//! it is in.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use clip_preprocess::image::decode::MAX_MEGAPIXELS;
use clip_preprocess::image::transform::resize_and_crop;
use clip_preprocess::image::DecodeLimits;
use clip_preprocess::ImageError;
use clip_test_support::{fixture, fixture_json};

use common::{config, decode_bytes, decode_fixture, flat_png, png};

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

#[test]
fn extreme_aspect_ratios_cost_only_the_crop() {
    let manifest = fixture_json("preprocess/manifest.json");
    let img = decode_fixture("images/strip.png");
    assert_eq!((img.width, img.height), (3, 400));
    let cfg = config(&manifest, "openai224");
    // The reference resizes to 224 x 29866 (20 MB) before cropping; we resample the crop only.
    let (rgb, peak) = peak_alloc(|| resize_and_crop(&img, &cfg));
    assert_eq!((rgb.width, rgb.height), (224, 224));
    assert!(peak < 2 << 20, "allocated {peak} bytes");
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
    let mut bytes = std::fs::read(fixture("images/rocket_orient6.jpg")).unwrap();
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
    // A pixel budget in place of the side limit (`--max-image-megapixels`) refuses them too,
    // and so does it a long thin one that no side limit catches any more.
    let budget = DecodeLimits::default().with_max_megapixels(100.0);
    let thin = png(0x7fff_ffff, 1, 2, b"");
    // The largest budget lets in 10^10 pixels, but no decode may take more than
    // MAX_DECODE_BYTES: a 1 KB PPM announcing 100000 x 100000 (30 GB of RGB) and a PNG IHDR
    // of 65535 x 65535 are refused on their headers (an allocation of 30 GB used to abort
    // the process), and no budget would let them in.
    let largest = DecodeLimits::default().with_max_megapixels(MAX_MEGAPIXELS);
    let mut ppm = b"P6\n100000 100000\n255\n".to_vec();
    ppm.resize(1024, 7);
    let cases = bombs
        .iter()
        .map(|(what, bytes)| (*what, bytes, None))
        .chain(
            bombs
                .iter()
                .map(|(what, bytes)| (*what, bytes, Some(budget))),
        )
        .chain([
            ("PNG IHDR 2^31-1 x 1", &thin, Some(budget)),
            ("PPM 100000x100000, largest budget", &ppm, Some(largest)),
            (
                "PNG IHDR 65535x65535, largest budget",
                &bombs[0].1,
                Some(largest),
            ),
        ]);
    for (what, bytes, limits) in cases {
        let start = Instant::now();
        let (result, peak) = peak_alloc(|| match limits {
            None => decode_bytes(bytes),
            Some(limits) => clip_preprocess::image::decode(bytes, "test-input.jpg", &limits),
        });
        let elapsed = start.elapsed();
        let err = result.expect_err(what);
        assert!(
            matches!(err, ImageError::TooLarge { .. }),
            "{what}: expected TooLarge, got {err}"
        );
        assert!(!err.to_string().contains("0x0"), "{what}: {err}");
        if limits == Some(largest) {
            assert!(!err.budget_helps(), "{what}: {err}");
            assert!(
                err.to_string().contains("MiB of decoded pixels"),
                "{what}: {err}"
            );
        }
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
