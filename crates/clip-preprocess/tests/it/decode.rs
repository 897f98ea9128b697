//! Decoding what is not a good image file: junk, truncated files, bad metadata, folders,
//! pipes and files too big to read.

use std::io::Write;

use clip_preprocess::image::{self, DecodeLimits};
use clip_preprocess::ImageError;
use clip_test_support::{fixture, temp_dir};

use crate::common::{decode_bytes, flat_png, png, png_chunk};

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

/// A file that is no image is described by its content, and by its whole size (only its
/// first 64 bytes are read).
#[test]
fn files_that_are_no_image_say_what_they_are() {
    let tmp = temp_dir();
    let binary = tmp.path().join("data.jpg");
    std::fs::write(&binary, [7u8; 5000]).unwrap();
    let e = image::open(&binary, &DecodeLimits::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("starts with bytes 07 07 07 07 07 07 07 07 (5000 bytes in all)"),
        "{e}"
    );
    let text = tmp.path().join("notes.png");
    std::fs::write(&text, "Shopping list\n- milk\n- bread\n".repeat(20)).unwrap();
    let e = image::open(&text, &DecodeLimits::default())
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("the content is text: \"Shopping list\""), "{e}");
}

/// A PNG whose IDAT chunk fails its CRC says so in words: the chunk's name, not the
/// decoder's debug dump of it (`ChunkType { type: IDAT, critical: true, … }`).
#[test]
fn a_png_with_a_bad_crc_names_the_chunk() {
    let mut bytes = std::fs::read(fixture("photos/horse.png")).unwrap();
    let at = bytes.windows(4).position(|w| w == b"IDAT").unwrap();
    let len = u32::from_be_bytes(bytes[at - 4..at].try_into().unwrap()) as usize;
    bytes[at + 4 + len] ^= 0xff;
    let e = decode_bytes(&bytes).unwrap_err();
    assert!(matches!(e, ImageError::Malformed { .. }), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("test-input.jpg: malformed PNG image: CRC error")
            && e.ends_with("while decoding IDAT chunk."),
        "{e}"
    );
    assert!(
        !e.contains("ChunkType") && !e.contains("Format error"),
        "{e}"
    );
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
        let bytes = std::fs::read(fixture(file)).unwrap();
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

#[test]
fn folders_are_refused_pipes_read_and_big_files_not_read() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let limits = DecodeLimits::default();
    // A folder, and a FIFO named on purpose.
    let err = image::open(dir, &limits).unwrap_err().to_string();
    assert!(err.contains("a folder, not an image file"), "{err}");
    #[cfg(unix)]
    {
        let fifo = dir.join("pipe.jpg");
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

#[test]
fn dimensions_come_from_the_header_or_a_typed_error() {
    let tmp = temp_dir();
    let junk = tmp.path().join("notes.jpg");
    std::fs::write(&junk, b"<html>not an image</html>").unwrap();
    let err = image::decode::dimensions(&junk).unwrap_err();
    assert!(
        matches!(err, ImageError::UnsupportedFormat { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("notes.jpg"), "{err}");
    let empty = tmp.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let err = image::decode::dimensions(&empty).unwrap_err();
    assert!(matches!(err, ImageError::Empty { .. }), "{err:?}");
    let err = image::decode::dimensions(&tmp.path().join("gone.png")).unwrap_err();
    assert!(matches!(err, ImageError::Io { .. }), "{err:?}");
    let horse = image::open(&fixture("photos/horse.png"), &DecodeLimits::default()).unwrap();
    assert_eq!(
        image::decode::dimensions(&fixture("photos/horse.png")).unwrap(),
        (horse.width, horse.height)
    );
}

#[test]
fn netpbm_files_decode_in_pillows_modes() {
    use image::ColorMode;
    // P6: binary RGB, P5: binary grey, P3: plain-text RGB, P4: bilevel (Pillow's mode 1,
    // resized with nearest neighbour).
    let ppm = [b"P6\n2 1\n255\n".as_slice(), &[255, 0, 0, 0, 128, 255]].concat();
    let img = decode_bytes(&ppm).unwrap();
    assert_eq!(
        (img.width, img.height, img.mode, img.data.as_slice()),
        (2, 1, ColorMode::Rgb, &[255, 0, 0, 0, 128, 255][..])
    );
    assert!(!img.resize_nearest);
    let pgm = [b"P5 3 1 255\n".as_slice(), &[0, 100, 200]].concat();
    let img = decode_bytes(&pgm).unwrap();
    assert_eq!(
        (img.mode, img.data.as_slice()),
        (ColorMode::L, &[0, 100, 200][..])
    );
    let plain = decode_bytes(b"P3\n1 1\n255\n10 20 30\n").unwrap();
    assert_eq!(plain.data, [10, 20, 30]);
    let pbm = [b"P4\n8 1\n".as_slice(), &[0b1010_0000]].concat();
    let img = decode_bytes(&pbm).unwrap();
    assert_eq!((img.width, img.mode), (8, ColorMode::L));
    assert!(img.resize_nearest);
    // Black is 1 in PBM.
    assert_eq!(img.data[..4], [0, 255, 0, 255]);
    // Truncated: a typed error naming the file.
    let err = decode_bytes(&ppm[..ppm.len() - 2]).unwrap_err();
    assert!(err.to_string().contains("test-input.jpg"), "{err}");
}

/// A valid grey PNG of `width` x `height` pixels, all black, compressed to little.
fn flat_png_of(width: u32, height: u32) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let row = vec![0u8; width as usize + 1];
    for _ in 0..height {
        enc.write_all(&row).unwrap();
    }
    png(width, height, 0, &enc.finish().unwrap())
}

#[test]
fn a_panorama_over_16384_pixels_needs_a_pixel_budget() {
    let pano = flat_png_of(20_000, 2_000);
    let err = image::decode(&pano, "pano.png", &DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 20_000,
                height: 2_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("16384x16384"), "{err}");
    let limits = DecodeLimits::default().with_max_megapixels(40.0);
    let img = image::decode(&pano, "pano.png", &limits).unwrap();
    assert_eq!((img.width, img.height), (20_000, 2_000));
    // The budget is a budget: one pixel more is refused.
    let tight = DecodeLimits::default().with_max_megapixels(39.999_999);
    let err = image::decode(&pano, "pano.png", &tight).unwrap_err();
    assert!(err.to_string().contains("megapixels"), "{err}");
}

/// A JPEG of a smooth pattern (`channels`: 1 grey, 3 RGB).
pub fn gradient_jpeg(width: u32, height: u32, channels: u8) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut pixels = Vec::with_capacity(w * h * channels as usize);
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels as usize {
                let v = (x * 255 / w + y * 97 / h + c * 60) % 256;
                pixels.push(v as u8);
            }
        }
    }
    let mut out = Vec::new();
    let color = if channels == 1 {
        ::image::ExtendedColorType::L8
    } else {
        ::image::ExtendedColorType::Rgb8
    };
    ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(&pixels, width, height, color)
        .unwrap();
    out
}

#[test]
fn a_jpeg_panorama_over_the_limits_is_decoded_at_a_reduced_size() {
    use clip_preprocess::image::{decode_reduced, preprocess, PreprocessConfig};
    let budget = DecodeLimits::default().with_max_megapixels(100.0);
    let cfg = PreprocessConfig::openai(224);
    let at_least = cfg.decode_at_least();
    assert_eq!(at_least, Some((224, 224)));
    // 16800 x 1800 grey: an eighth still has a short side of 225.
    let pano = gradient_jpeg(16_800, 1_800, 1);
    let reduced = decode_reduced(&pano, "pano.jpg", &budget, at_least).unwrap();
    assert_eq!((reduced.width, reduced.height), (2_100, 225));
    let full = image::decode(&pano, "pano.jpg", &budget).unwrap();
    assert_eq!((full.width, full.height), (16_800, 1_800));
    // What the model sees is close to the full decode's.
    let (a, b) = (preprocess(&reduced, &cfg), preprocess(&full, &cfg));
    let mean_diff: f32 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>()
        / a.data.len() as f32;
    assert!(mean_diff < 0.02, "mean difference {mean_diff}");
    // RGB, 16400 x 448: a half.
    let rgb = gradient_jpeg(16_400, 448, 3);
    let img = decode_reduced(&rgb, "rgb.jpg", &budget, at_least).unwrap();
    assert_eq!(
        (img.width, img.height, img.mode),
        (8_200, 224, image::ColorMode::Rgb)
    );
    // Within the default limits nothing is reduced: the reference's pixels.
    let photo = gradient_jpeg(4_000, 1_800, 3);
    assert_eq!(
        decode_reduced(&photo, "photo.jpg", &budget, at_least).unwrap(),
        image::decode(&photo, "photo.jpg", &budget).unwrap()
    );
    // Nor when the resize needs every pixel, and never without the budget.
    let img = decode_reduced(&rgb, "rgb.jpg", &budget, Some((16_400, 448))).unwrap();
    assert_eq!(img.width, 16_400);
    let err = decode_reduced(&pano, "pano.jpg", &DecodeLimits::default(), at_least).unwrap_err();
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err:?}");
}
