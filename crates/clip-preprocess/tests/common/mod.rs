//! Inputs shared by this crate's two test binaries (`it` and `alloc`): the reference's
//! preprocessing configs, fixture images, and image files made byte by byte.

use std::io::Write;

use clip_preprocess::image::{self, DecodeLimits, PreprocessConfig, Resize};
use clip_preprocess::ImageError;
use clip_test_support::fixture;

/// Preprocessing config `name` of `fixtures/preprocess/manifest.json`.
pub fn config(manifest: &serde_json::Value, name: &str) -> PreprocessConfig {
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

pub fn decode_fixture(rel: &str) -> image::DecodedImage {
    image::open(&fixture(rel), &DecodeLimits::default()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn decode_bytes(bytes: &[u8]) -> Result<image::DecodedImage, ImageError> {
    image::decode(bytes, "test-input.jpg", &DecodeLimits::default())
}

pub fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
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

pub fn png(width: u32, height: u32, color_type: u8, idat: &[u8]) -> Vec<u8> {
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
pub fn flat_png(side: u32) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let row = vec![0u8; side as usize + 1];
    for _ in 0..side {
        enc.write_all(&row).unwrap();
    }
    png(side, side, 0, &enc.finish().unwrap())
}
