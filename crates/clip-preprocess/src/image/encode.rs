//! Writing images: the PNG files the evaluation reports draw (confusion-matrix heat maps).

use std::path::Path;

/// Writes 8-bit RGB pixels (`width * height * 3` bytes, rows top to bottom) as a PNG file.
pub fn write_png_rgb(path: &Path, width: u32, height: u32, rgb: &[u8]) -> std::io::Result<()> {
    let expected = width as usize * height as usize * 3;
    if rgb.len() != expected {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{}: {} bytes of pixels for a {width}x{height} RGB image (expected {expected})",
                path.display(),
                rgb.len()
            ),
        ));
    }
    ::image::save_buffer_with_format(
        path,
        rgb,
        width,
        height,
        ::image::ExtendedColorType::Rgb8,
        ::image::ImageFormat::Png,
    )
    .map_err(|e| match e {
        ::image::ImageError::IoError(io) => io,
        other => std::io::Error::other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_decoder() {
        let tmp = clip_test_support::temp_dir();
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.png");
        let rgb: Vec<u8> = (0..2 * 3 * 3).map(|i| i as u8 * 10).collect();
        write_png_rgb(&path, 3, 2, &rgb).unwrap();
        let back = super::super::open(&path, &Default::default()).unwrap();
        assert_eq!((back.width, back.height), (3, 2));
        assert_eq!(back.data, rgb);
        assert!(write_png_rgb(&path, 3, 3, &rgb).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
