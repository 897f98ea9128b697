//! Pictures of a confusion matrix: a PNG with the class names, axis titles and a colour scale
//! drawn in an 8x8 bitmap font (public-domain glyphs of the `font8x8` crate, so nothing is read
//! from the system), and an SVG with the same parts as text, readable at any zoom and with the
//! counts of each cell on hover (the picture for hundreds of classes).
//!
//! Each row is coloured by the share of the true class's images predicted as each class
//! (viridis: dark purple for none, yellow for all); rows of classes without images are grey.

use std::fmt::Write as _;

use font8x8::UnicodeFonts;

/// Viridis at a few points (matplotlib's colour map, sampled): dark purple for 0, yellow for 1.
const VIRIDIS: [[f32; 3]; 9] = [
    [68.0, 1.0, 84.0],
    [71.0, 45.0, 123.0],
    [59.0, 82.0, 139.0],
    [44.0, 113.0, 142.0],
    [33.0, 145.0, 140.0],
    [39.0, 173.0, 129.0],
    [92.0, 200.0, 99.0],
    [170.0, 220.0, 50.0],
    [253.0, 231.0, 37.0],
];

/// The colour of rows without images.
const GREY: [u8; 3] = [128, 128, 128];
const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];

/// The viridis colour of `t` in 0..=1 (clamped).
pub fn viridis(t: f32) -> [u8; 3] {
    let x = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f32;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f32;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    [0, 1, 2].map(|c| (a[c] + (b[c] - a[c]) * f).round() as u8)
}

/// The colour of a cell: its share of the row's images, grey for a row without images.
fn cell_colour(count: usize, total: usize) -> [u8; 3] {
    if total == 0 {
        GREY
    } else {
        viridis(count as f32 / total as f32)
    }
}

/// The side of a cell in pixels: the matrix about 768 pixels wide, cells 1 to 48 pixels.
fn cell_size(n: usize) -> usize {
    (768 / n.max(1)).clamp(1, 48)
}

/// The confusion matrix alone as a heat map: one square cell per (true row, predicted column).
/// Returns width, height and RGB pixels.
pub fn confusion_heatmap(confusion: &[Vec<usize>]) -> (u32, u32, Vec<u8>) {
    let n = confusion.len().max(1);
    let cell = cell_size(n);
    let mut canvas = Canvas::new(n * cell, n * cell, WHITE);
    draw_cells(&mut canvas, confusion, 0, 0, cell);
    (canvas.width as u32, canvas.height as u32, canvas.rgb)
}

fn draw_cells(canvas: &mut Canvas, confusion: &[Vec<usize>], x0: usize, y0: usize, cell: usize) {
    for (r, row) in confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (c, &count) in row.iter().enumerate() {
            let colour = cell_colour(count, total);
            canvas.fill(x0 + c * cell, y0 + r * cell, cell, cell, colour);
        }
    }
}

/// An RGB picture to draw on.
struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// Glyphs are 8 pixels square.
const GLYPH: usize = 8;

impl Canvas {
    fn new(width: usize, height: usize, background: [u8; 3]) -> Canvas {
        let rgb = background.repeat(width * height);
        Canvas { width, height, rgb }
    }

    fn set(&mut self, x: usize, y: usize, colour: [u8; 3]) {
        if x < self.width && y < self.height {
            self.rgb[(y * self.width + x) * 3..][..3].copy_from_slice(&colour);
        }
    }

    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, colour: [u8; 3]) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                self.set(xx, yy, colour);
            }
        }
    }

    /// Text from (x, y), its top left corner, left to right.
    fn text(&mut self, x: usize, y: usize, text: &str, colour: [u8; 3]) {
        for (i, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            for (dy, bits) in rows.iter().enumerate() {
                for dx in 0..GLYPH {
                    if bits & (1 << dx) != 0 {
                        self.set(x + i * GLYPH + dx, y + dy, colour);
                    }
                }
            }
        }
    }

    /// Text turned a quarter left, read from bottom to top: (x, y) is its bottom left corner.
    fn text_up(&mut self, x: usize, y: usize, text: &str, colour: [u8; 3]) {
        for (i, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            for (dy, bits) in rows.iter().enumerate() {
                for dx in 0..GLYPH {
                    if bits & (1 << dx) != 0 {
                        // Glyph pixel (dx, dy) goes to (x + dy, y - i·8 - dx).
                        if let Some(yy) = y.checked_sub(i * GLYPH + dx + 1) {
                            self.set(x + dy, yy, colour);
                        }
                    }
                }
            }
        }
    }
}

/// What a character the font lacks is drawn as: an empty box ("tofu"), so a missing glyph
/// shows as missing rather than as a `?` that could be part of the name.
const MISSING: [u8; 8] = [0x00, 0x7e, 0x42, 0x42, 0x42, 0x42, 0x7e, 0x00];

/// The 8x8 glyph of `ch` (rows top to bottom, bit 0 the leftmost pixel) from the font's
/// sets (ASCII, Latin-1, Greek, hiragana, box drawing, blocks and a few more); [`MISSING`]
/// for characters it lacks (CJK ideographs among them: the SVG has every name in full).
fn glyph(ch: char) -> [u8; 8] {
    if ch == ' ' {
        return [0; 8];
    }
    let found = font8x8::BASIC_FONTS
        .get(ch)
        .or_else(|| font8x8::LATIN_FONTS.get(ch))
        .or_else(|| font8x8::GREEK_FONTS.get(ch))
        .or_else(|| font8x8::HIRAGANA_FONTS.get(ch))
        .or_else(|| font8x8::BOX_FONTS.get(ch))
        .or_else(|| font8x8::BLOCK_FONTS.get(ch))
        .or_else(|| font8x8::MISC_FONTS.get(ch));
    match found {
        // A blank glyph for a visible character is a gap in the font, not a space.
        Some(g) if g != [0; 8] || ch.is_whitespace() || ch.is_control() => g,
        _ => MISSING,
    }
}

/// `text` in lines of at most `max` characters, broken at spaces (a word longer than a line
/// is cut across lines).
fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let (len, word_len) = (line.chars().count(), word.chars().count());
        if len > 0 && len + 1 + word_len <= max {
            line.push(' ');
            line.push_str(word);
            continue;
        }
        if len > 0 {
            lines.push(std::mem::take(&mut line));
        }
        let chars: Vec<char> = word.chars().collect();
        let mut pieces = chars.chunks(max).peekable();
        while let Some(piece) = pieces.next() {
            let piece: String = piece.iter().collect();
            if pieces.peek().is_some() {
                lines.push(piece);
            } else {
                line = piece;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// `label` cut to `max` characters, with `~` for what is cut.
fn shorten(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        return label.to_string();
    }
    let mut s: String = label.chars().take(max.saturating_sub(1)).collect();
    s.push('~');
    s
}

/// Longest class name drawn in the PNG, in characters.
const MAX_LABEL: usize = 24;

/// How the class axes are labelled: by name when a cell holds a line of text, else by number
/// (1 is the first class of the per-class table) every `step` classes.
fn axis_labels(labels: &[String], cell: usize) -> Vec<(usize, String)> {
    if cell >= GLYPH {
        return labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i, shorten(l, MAX_LABEL)))
            .collect();
    }
    let step = [
        1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000,
    ]
    .into_iter()
    .find(|s| s * cell >= 3 * GLYPH)
    .unwrap_or(10_000);
    (0..labels.len())
        .filter(|i| (i + 1) % step == 0 || *i == 0)
        .map(|i| (i, (i + 1).to_string()))
        .collect()
}

/// The confusion matrix as a PNG picture: `title` above (wrapped to the picture's width,
/// which the matrix and its labels set), the true classes down the left (axis "true class"),
/// the predicted classes along the top ("predicted class"), and a colour scale on the right
/// (the share of the true class's images, 0 to 1), with a legend for the grey rows of classes
/// without images when there are any. Names are drawn when the cells are at least 8 pixels
/// (up to 96 classes), cut to 24 characters, in an 8x8 font that lacks some scripts (CJK
/// ideographs among them: such characters are drawn as an empty box; the SVG has every name
/// in full); with more classes the axes carry class numbers, those of the per-class table's
/// rows. Cells of 24 pixels or more show their count. Returns width, height and RGB pixels.
pub fn confusion_picture(
    confusion: &[Vec<usize>],
    labels: &[String],
    title: &str,
) -> (u32, u32, Vec<u8>) {
    let n = confusion.len().max(1);
    let cell = cell_size(n);
    let side = n * cell;
    let ticks = axis_labels(labels, cell);
    let label_px = ticks
        .iter()
        .map(|(_, l)| l.chars().count())
        .max()
        .unwrap_or(0)
        * GLYPH;
    let pad = 6;
    let line_h = GLYPH + 4;
    // Left: axis title (turned), a gap, the row labels, a gap, the matrix.
    let left = pad + GLYPH + pad + label_px + 4;
    // Right: the colour bar, its ticks and its title (turned).
    let bar_x = left + side + 3 * pad;
    let bar_w = 16;
    let right = bar_x + bar_w + 4 + 3 * GLYPH + pad + GLYPH + pad;
    let scale_title = "share of the true class's images";
    let bar_h = side.max(scale_title.len() * GLYPH);
    let numbered = cell < GLYPH;
    let grey_rows = confusion.iter().any(|row| row.iter().sum::<usize>() == 0);
    let grey_legend = "grey row: a class without images";
    let footer: Vec<(bool, &str)> = [
        grey_rows.then_some((true, grey_legend)),
        numbered.then_some((
            false,
            "classes numbered as the rows of the per-class table (the SVG names them)",
        )),
    ]
    .into_iter()
    .flatten()
    .collect();
    // The width is the content's: the matrix with its labels and scale, and the footer; the
    // title is wrapped to it (at least 32 characters a line).
    let footer_px = footer
        .iter()
        .map(|&(swatch, text)| text.len() * GLYPH + if swatch { GLYPH + 4 } else { 0 })
        .max()
        .unwrap_or(0);
    let width = right.max(left + footer_px + pad).max(2 * pad + 32 * GLYPH);
    let title_lines = wrap(title, (width - 2 * pad) / GLYPH);
    // Top: title, axis title, the column labels (turned), a gap, the matrix.
    let axis_y = pad + title_lines.len() * line_h + pad - 4;
    let top = axis_y + GLYPH + pad + label_px + 4;
    let height = top + bar_h.max(side) + pad + footer.len() * line_h + pad;
    let mut canvas = Canvas::new(width, height, WHITE);

    for (i, line) in title_lines.iter().enumerate() {
        canvas.text(pad, pad + i * line_h, line, BLACK);
    }
    let predicted = "predicted class";
    let centre = |len: usize| (left + side / 2).saturating_sub(len * GLYPH / 2).max(left);
    canvas.text(centre(predicted.len()), axis_y, predicted, BLACK);
    let truth = "true class";
    let truth_bottom = (top + side / 2 + truth.len() * GLYPH / 2).max(top + truth.len() * GLYPH);
    canvas.text_up(pad, truth_bottom, truth, BLACK);

    let offset = cell.saturating_sub(GLYPH) / 2;
    for (i, label) in &ticks {
        let len = label.chars().count() * GLYPH;
        // Row labels right-aligned against the matrix, column labels standing on it.
        canvas.text(left - 4 - len, top + i * cell + offset, label, BLACK);
        canvas.text_up(left + i * cell + offset, top - 4, label, BLACK);
    }
    draw_cells(&mut canvas, confusion, left, top, cell);
    if cell >= 3 * GLYPH {
        for (r, row) in confusion.iter().enumerate() {
            let total: usize = row.iter().sum();
            for (c, &count) in row.iter().enumerate() {
                let text = count.to_string();
                if count == 0 || text.len() * GLYPH > cell - 2 {
                    continue;
                }
                let [red, green, blue] = cell_colour(count, total);
                let light =
                    0.299 * f32::from(red) + 0.587 * f32::from(green) + 0.114 * f32::from(blue)
                        > 140.0;
                let x = left + c * cell + (cell - text.len() * GLYPH) / 2;
                canvas.text(
                    x,
                    top + r * cell + offset,
                    &text,
                    if light { BLACK } else { WHITE },
                );
            }
        }
    }

    // The colour scale: 1 at the top, 0 at the bottom.
    for y in 0..bar_h {
        let t = 1.0 - y as f32 / (bar_h - 1).max(1) as f32;
        canvas.fill(bar_x, top + y, bar_w, 1, viridis(t));
    }
    let tick_x = bar_x + bar_w + 4;
    canvas.text(tick_x, top, "1", BLACK);
    canvas.text(tick_x, top + bar_h / 2 - GLYPH / 2, "0.5", BLACK);
    canvas.text(tick_x, top + bar_h - GLYPH, "0", BLACK);
    let scale_x = tick_x + 3 * GLYPH + pad;
    let scale_bottom = top + bar_h / 2 + scale_title.len() * GLYPH / 2;
    canvas.text_up(scale_x, scale_bottom, scale_title, BLACK);

    let mut y = top + bar_h.max(side) + pad;
    for &(swatch, line) in &footer {
        if swatch {
            canvas.fill(left, y, GLYPH, GLYPH, GREY);
            canvas.text(left + GLYPH + 4, y, line, BLACK);
        } else {
            canvas.text(left, y, line, BLACK);
        }
        y += line_h;
    }
    (width as u32, height as u32, canvas.rgb)
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The confusion matrix as an SVG picture with every class name (true classes down the left,
/// predicted along the top), axis titles, a colour scale, and a tooltip on each cell with its
/// classes and count. Cells are 12 to 40 pixels, so a large matrix is a large picture to zoom
/// in; only cells with images are drawn, over a background of the colour of none.
pub fn confusion_svg(confusion: &[Vec<usize>], labels: &[String], title: &str) -> String {
    let n = confusion.len().max(1);
    let cell = (800 / n).clamp(12, 40);
    let font = (cell as f32 * 0.75).min(13.0);
    let side = n * cell;
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let label_px = (longest as f32 * font * 0.62).ceil() as usize + 8;
    let left = 40 + label_px;
    let top = 60 + label_px;
    let bar_x = left + side + 30;
    let bar_h = side.max(240);
    // The title at 16 pixels: about 9.5 pixels a character.
    let title_px = 20 + (title.chars().count() as f32 * 9.5) as usize;
    let width = (bar_x + 20 + 40 + 30).max(title_px);
    let height = top + bar_h + 50;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="24" font-size="16">{}</text>"#,
        xml_escape(title)
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="48" font-size="13" text-anchor="middle">predicted class</text>"#,
        left + side / 2
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20 {}) rotate(-90)" font-size="13" text-anchor="middle">true class</text>"#,
        top + side / 2
    );
    let _ = writeln!(s, r#"<g font-size="{font:.1}">"#);
    for (i, label) in labels.iter().enumerate() {
        let label = xml_escape(label);
        let mid = i * cell + cell / 2;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" dominant-baseline="central">{label}</text>"#,
            left - 4,
            top + mid
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate({} {}) rotate(-90)" dominant-baseline="central">{label}</text>"#,
            left + mid,
            top - 4
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="{top}" width="{side}" height="{side}" fill="{}"/>"#,
        hex(viridis(0.0))
    );
    for (r, row) in confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        let y = top + r * cell;
        let true_label = labels.get(r).map_or(String::new(), |l| xml_escape(l));
        if total == 0 {
            let _ = writeln!(
                s,
                r#"<rect x="{left}" y="{y}" width="{side}" height="{cell}" fill="{}"><title>{true_label}: no images</title></rect>"#,
                hex(GREY)
            );
            continue;
        }
        for (c, &count) in row.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let share = count as f64 / total as f64;
            let predicted = labels.get(c).map_or(String::new(), |l| xml_escape(l));
            let _ = writeln!(
                s,
                r#"<rect x="{}" y="{y}" width="{cell}" height="{cell}" fill="{}"><title>true {true_label}, predicted {predicted}: {count} of {total} images ({:.1}%)</title></rect>"#,
                left + c * cell,
                hex(cell_colour(count, total)),
                share * 100.0
            );
        }
    }
    // The colour scale.
    let _ = writeln!(
        s,
        r#"<defs><linearGradient id="scale" x1="0" y1="1" x2="0" y2="0">"#
    );
    for i in 0..=8 {
        let t = i as f32 / 8.0;
        let _ = writeln!(
            s,
            r#"<stop offset="{t:.3}" stop-color="{}"/>"#,
            hex(viridis(t))
        );
    }
    let _ = writeln!(s, "</linearGradient></defs>");
    let _ = writeln!(
        s,
        r#"<rect x="{bar_x}" y="{top}" width="20" height="{bar_h}" fill="url(#scale)"/>"#
    );
    for (t, label) in [(1.0, "1"), (0.5, "0.5"), (0.0, "0")] {
        let y = top as f32 + (1.0 - t) * bar_h as f32;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{y:.0}" font-size="12" dominant-baseline="central">{label}</text>"#,
            bar_x + 24
        );
    }
    let _ = writeln!(
        s,
        r#"<text transform="translate({} {}) rotate(-90)" font-size="13" text-anchor="middle">share of the true class's images</text>"#,
        bar_x + 62,
        top + bar_h / 2
    );
    if confusion.iter().any(|row| row.iter().sum::<usize>() == 0) {
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}" font-size="12" dominant-baseline="central">grey row: a class without images</text>"#,
            top + bar_h + 16,
            hex(GREY),
            left + 18,
            top + bar_h + 22
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(2.0), [253, 231, 37]);
    }

    /// Text lands where it is drawn, upright or turned, and only there.
    #[test]
    fn glyphs_are_drawn_upright_and_turned() {
        let mut c = Canvas::new(40, 40, WHITE);
        c.text(2, 3, "I", BLACK);
        let dark = |c: &Canvas| {
            (0..c.height)
                .flat_map(|y| (0..c.width).map(move |x| (x, y)))
                .filter(|&(x, y)| c.rgb[(y * c.width + x) * 3] == 0)
                .collect::<Vec<_>>()
        };
        let upright = dark(&c);
        assert!(!upright.is_empty());
        assert!(upright
            .iter()
            .all(|&(x, y)| (2..10).contains(&x) && (3..11).contains(&y)));
        let mut t = Canvas::new(40, 40, WHITE);
        t.text_up(5, 30, "I", BLACK);
        let turned = dark(&t);
        assert_eq!(turned.len(), upright.len());
        assert!(turned
            .iter()
            .all(|&(x, y)| (5..13).contains(&x) && (22..30).contains(&y)));
        // A tall "I" upright is a wide one turned.
        let span = |v: &[(usize, usize)], f: fn(&(usize, usize)) -> usize| {
            v.iter().map(f).max().unwrap() - v.iter().map(f).min().unwrap()
        };
        assert_eq!(span(&upright, |p| p.1), span(&turned, |p| p.0));
    }

    #[test]
    fn axes_carry_names_or_numbers() {
        let labels: Vec<String> = (0..1000).map(|i| format!("class {i}")).collect();
        let few = axis_labels(&labels[..10], cell_size(10));
        assert_eq!(few.len(), 10);
        assert_eq!(few[3], (3, "class 3".to_string()));
        let many = axis_labels(&labels, cell_size(1000));
        assert_eq!(many[0], (0, "1".to_string()));
        assert_eq!(many[1], (24, "25".to_string()));
        assert_eq!(many.last().unwrap(), &(999, "1000".to_string()));
        assert_eq!(
            shorten("a very long class name indeed, longer", 10),
            "a very lo~"
        );
    }

    /// The user trial's picture: six classes under a long title. The title wraps to the
    /// matrix's width instead of widening the picture (no blank half on the right), and the
    /// grey legend shows only when a row is grey.
    #[test]
    fn the_picture_is_as_wide_as_its_content_and_has_a_legend_only_for_grey_rows() {
        let title = "zero-shot confusion matrix: models/tiny-openai on eval/imagefolder/test \
                     (15 images, top-1 0.0667)";
        let labels: Vec<String> = [
            "a man with a camera",
            "coins",
            "unicorn",
            "tabby cat",
            "horse",
            "space shuttle",
        ]
        .map(String::from)
        .to_vec();
        let mut confusion = vec![vec![0, 0, 3, 0, 0, 0]; 6];
        confusion[2] = vec![0; 6];
        let (w, h, rgb) = confusion_picture(&confusion, &labels, title);
        assert!(w < 600, "{w}x{h}");
        // Some column of every 40 pixels across the picture holds ink or colour.
        let column_used =
            |x: usize| (0..h as usize).any(|y| rgb[(y * w as usize + x) * 3..][..3] != WHITE);
        for x0 in (0..w as usize - 40).step_by(40) {
            assert!(
                (x0..x0 + 40).any(column_used),
                "blank from x = {x0} in {w}x{h}"
            );
        }
        let colours = |rgb: &[u8]| -> std::collections::HashSet<[u8; 3]> {
            rgb.chunks(3).map(|p| [p[0], p[1], p[2]]).collect()
        };
        assert!(colours(&rgb).contains(&GREY));
        confusion[2] = vec![0, 0, 1, 0, 0, 0];
        let (w2, h2, rgb) = confusion_picture(&confusion, &labels, title);
        assert!(!colours(&rgb).contains(&GREY), "a legend without grey rows");
        assert_eq!(
            (w2, h2 + (GLYPH as u32 + 4)),
            (w, h),
            "one footer line less"
        );
        assert_eq!(
            wrap("aa bb cc dddddddddd e", 5),
            ["aa bb", "cc", "ddddd", "ddddd", "e"]
        );
        assert_eq!(wrap("", 5), [""]);
    }

    /// Characters the font has are drawn (Latin-1, Greek, hiragana); those it lacks (CJK
    /// ideographs) are an empty box, never a `?`.
    #[test]
    fn missing_glyphs_are_boxes() {
        assert_eq!(glyph('日'), MISSING);
        assert_eq!(glyph('猫'), MISSING);
        for c in ['の', 'é', 'ñ', 'Ω', 'a'] {
            assert!(glyph(c) != MISSING && glyph(c) != [0; 8], "{c}");
        }
        assert_ne!(glyph('?'), MISSING);
        assert_eq!(glyph(' '), [0; 8]);
        let labels: Vec<String> = ["日本の猫", "cat"].map(String::from).to_vec();
        let (w, h, rgb) = confusion_picture(&[vec![1, 0], vec![0, 1]], &labels, "t");
        assert_eq!(rgb.len(), (w * h * 3) as usize);
        let svg = confusion_svg(&[vec![1, 0], vec![0, 1]], &labels, "t");
        assert!(svg.contains(">日本の猫</text>"));
    }

    #[test]
    fn the_picture_has_its_parts() {
        let labels: Vec<String> = ["cat", "dog", "bird & fish"].map(String::from).to_vec();
        let confusion = vec![vec![3, 1, 0], vec![0, 2, 0], vec![0, 0, 0]];
        let (w, h, rgb) = confusion_picture(&confusion, &labels, "zero-shot");
        assert_eq!(rgb.len(), (w * h * 3) as usize);
        let cell = cell_size(3);
        let matrix = 3 * cell;
        assert!(
            w as usize > matrix + 100 && h as usize > matrix + 60,
            "{w}x{h}"
        );
        let colours: std::collections::HashSet<[u8; 3]> =
            rgb.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
        for c in [
            viridis(0.75),
            viridis(0.25),
            viridis(1.0),
            GREY,
            BLACK,
            WHITE,
        ] {
            assert!(colours.contains(&c), "{c:?} missing");
        }
        let svg = confusion_svg(&confusion, &labels, "zero-shot <test>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for part in [
            "zero-shot &lt;test&gt;",
            ">bird &amp; fish</text>",
            "predicted class",
            "true class",
            "share of the true class's images",
            "true cat, predicted dog: 1 of 4 images (25.0%)",
            "bird &amp; fish: no images",
            "linearGradient",
        ] {
            assert!(svg.contains(part), "{part} missing from\n{svg}");
        }
        // Cells with no images are not drawn one by one.
        assert_eq!(svg.matches("<title>true ").count(), 3);
    }
}
