//! Image collections on disk: folders of images, ImageFolder class trees (torchvision's layout,
//! one folder per class), folder-to-label mapping files, and caption files for retrieval.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::ClipError;

pub use crate::walk::{
    has_image_extension, image_files, image_files_listing, Listing, IMAGE_EXTENSIONS,
};

fn dataset_error(path: &Path, detail: impl Into<String>) -> ClipError {
    ClipError::Dataset {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// One class folder of an [`ImageFolder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassFolder {
    /// The folder's name (the class id, e.g. `n01440764` or `golden_retriever`).
    pub name: String,
    /// The image files in it, recursively, in name order (possibly none).
    pub images: Vec<PathBuf>,
}

/// A dataset in torchvision's ImageFolder layout: `root/<class>/<image>`, classes in name
/// order. Files without an image extension are ignored; a class folder may be empty.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// The dataset's root folder.
    pub root: PathBuf,
    /// The class folders, in name order.
    pub classes: Vec<ClassFolder>,
}

impl ImageFolder {
    /// Reads the class folders under `root`.
    pub fn open(root: &Path) -> Result<ImageFolder, ClipError> {
        if !root.is_dir() {
            return Err(dataset_error(
                root,
                if root.exists() {
                    "not a folder (an ImageFolder dataset is a folder with one subfolder per class)"
                } else {
                    "no such folder"
                },
            ));
        }
        let mut classes = Vec::new();
        let entries = crate::walk::read_dir_sorted(root).map_err(|error| ClipError::Io {
            path: root.display().to_string(),
            error,
        })?;
        for path in entries {
            if path.is_dir() {
                classes.push(ClassFolder {
                    name: path
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into(),
                    images: image_files(&path)?,
                });
            }
        }
        if classes.is_empty() {
            return Err(dataset_error(
                root,
                "no class folders (an ImageFolder dataset has one subfolder of images per class)",
            ));
        }
        if classes.iter().all(|c| c.images.is_empty()) {
            return Err(dataset_error(
                root,
                format!(
                    "no images in any of its {} class folders (looked for {})",
                    classes.len(),
                    IMAGE_EXTENSIONS.join(", ")
                ),
            ));
        }
        Ok(ImageFolder {
            root: root.to_path_buf(),
            classes,
        })
    }

    /// Every image with the index of its class folder, class by class.
    pub fn samples(&self) -> Vec<(PathBuf, usize)> {
        self.classes
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.images.iter().map(move |p| (p.clone(), i)))
            .collect()
    }

    /// The folder names.
    pub fn folder_names(&self) -> Vec<&str> {
        self.classes.iter().map(|c| c.name.as_str()).collect()
    }
}

/// Reads a folder → label mapping file. A `.json` file is one object
/// (`{"n01440764": "tench", ...}`). Otherwise each line is `folder<TAB>label`, or, without a
/// tab, the folder and the label separated by the first comma or run of spaces, whichever
/// comes first (so ImageNet's `LOC_synset_mapping.txt`, `n01440764 tench, Tinca tinca`, reads
/// as folder `n01440764`); blank lines and `#` comments (at the start of a line or after a
/// space) are skipped, and `\#` is a `#` that starts no comment.
pub fn read_mapping(path: &Path) -> Result<BTreeMap<String, String>, ClipError> {
    let text = std::fs::read_to_string(path).map_err(|error| ClipError::Io {
        path: path.display().to_string(),
        error,
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        let map: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| {
            dataset_error(
                path,
                format!("not a JSON object of folder names to labels: {e}"),
            )
        })?;
        return Ok(map);
    }
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = crate::zeroshot::strip_comment(line);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let split = line.find('\t').or_else(|| line.find([',', ' ']));
        let parsed = split.map(|i| (line[..i].trim(), line[i + 1..].trim()));
        let Some((folder, label)) = parsed.filter(|(f, l)| !f.is_empty() && !l.is_empty()) else {
            return Err(dataset_error(
                path,
                format!(
                    "line {}: {line:?} is not \"folder<TAB>label\" (or folder,label)",
                    n + 1
                ),
            ));
        };
        if let Some(old) = map.insert(folder.to_string(), label.to_string()) {
            return Err(dataset_error(
                path,
                format!(
                    "line {}: folder {folder:?} is mapped twice ({old:?} and {label:?})",
                    n + 1
                ),
            ));
        }
    }
    if map.is_empty() {
        return Err(dataset_error(path, "no mappings in the file"));
    }
    Ok(map)
}

/// How a folder name reads as a label when none is given: `golden_retriever` → `golden retriever`.
pub fn folder_label(folder: &str) -> String {
    folder.replace('_', " ")
}

fn comparable(name: &str) -> String {
    name.replace('_', " ").trim().to_lowercase()
}

/// The labels of an ImageFolder's classes: the classifier's label list, and for each class
/// folder the index of its label in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassLabels {
    /// The labels the images are classified among (may include labels without a folder).
    pub labels: Vec<String>,
    /// `folder_label[i]`: the label of class folder `i`.
    pub folder_label: Vec<usize>,
}

/// Matches class folders to labels:
/// - with a `mapping` (folder → label), every folder must be in it; the labels are `labels`
///   when given (each mapped label must be among them) or else the mapped labels;
/// - with `labels` only: folders whose names equal labels (ignoring case and `_` vs space)
///   take those; otherwise, when there are as many labels as folders, folder `i` in name order
///   takes label `i` (torchvision's and CLIP_benchmark's convention for class lists);
/// - with neither, each folder's name is its label ([`folder_label`]).
///
/// `source` names where the labels came from, for errors.
pub fn match_labels(
    folders: &[&str],
    labels: Option<&[String]>,
    mapping: Option<(&BTreeMap<String, String>, &Path)>,
    source: &str,
) -> Result<ClassLabels, ClipError> {
    if let Some((map, map_path)) = mapping {
        let mut all: Vec<String> = labels.map(<[String]>::to_vec).unwrap_or_default();
        let fixed = labels.is_some();
        let mut index: HashMap<String, usize> = all
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i))
            .collect();
        let mut folder_label = Vec::with_capacity(folders.len());
        for folder in folders {
            let Some(label) = map.get(*folder) else {
                return Err(dataset_error(
                    map_path,
                    format!("has no label for class folder {folder:?}"),
                ));
            };
            let i = match index.get(label) {
                Some(&i) => i,
                None if fixed => {
                    return Err(dataset_error(
                        map_path,
                        format!("maps folder {folder:?} to {label:?}, which is not among the labels of {source}"),
                    ))
                }
                None => {
                    all.push(label.clone());
                    index.insert(label.clone(), all.len() - 1);
                    all.len() - 1
                }
            };
            folder_label.push(i);
        }
        return Ok(ClassLabels {
            labels: all,
            folder_label,
        });
    }
    let Some(labels) = labels else {
        return Ok(ClassLabels {
            labels: folders.iter().map(|f| folder_label(f)).collect(),
            folder_label: (0..folders.len()).collect(),
        });
    };
    let by_name: HashMap<String, usize> = labels
        .iter()
        .enumerate()
        .rev()
        .map(|(i, l)| (comparable(l), i))
        .collect();
    let named: Option<Vec<usize>> = folders
        .iter()
        .map(|f| by_name.get(&comparable(f)).copied())
        .collect();
    if let Some(folder_label) = named {
        return Ok(ClassLabels {
            labels: labels.to_vec(),
            folder_label,
        });
    }
    // By position, unless the names that do match say another order.
    let misplaced = folders
        .iter()
        .enumerate()
        .find(|(i, f)| by_name.get(&comparable(f)).is_some_and(|j| j != i));
    if labels.len() == folders.len() && misplaced.is_none() {
        return Ok(ClassLabels {
            labels: labels.to_vec(),
            folder_label: (0..folders.len()).collect(),
        });
    }
    if let Some((i, f)) = misplaced.filter(|_| labels.len() == folders.len()) {
        return Err(ClipError::Dataset {
            path: source.to_string(),
            detail: format!(
                "the labels cannot go to the folders by position: folder {i} in name order, {f:?}, \
                 has the name of label {}, and other folders match no label; use a mapping file",
                by_name[&comparable(f)]
            ),
        });
    }
    let unmatched: Vec<&str> = folders
        .iter()
        .copied()
        .filter(|f| !by_name.contains_key(&comparable(f)))
        .take(3)
        .collect();
    Err(ClipError::Dataset {
        path: source.to_string(),
        detail: format!(
            "{} labels for {} class folders, and folders such as {unmatched:?} match no label by name; \
             give one label per folder (in folder name order) or a mapping file",
            labels.len(),
            folders.len()
        ),
    })
}

/// The labels of another split of a dataset (a training split beside the test split):
/// each of its class folders takes the label of `dataset`'s folder of the same name, as
/// ImageFolder splits are laid out. A folder with no counterpart is an error naming both.
pub fn match_split(
    dataset: &ImageFolder,
    classes: &ClassLabels,
    split: &ImageFolder,
) -> Result<ClassLabels, ClipError> {
    let folder_label = split
        .classes
        .iter()
        .map(|f| {
            let i = dataset.classes.iter().position(|t| t.name == f.name);
            i.map(|i| classes.folder_label[i]).ok_or_else(|| {
                dataset_error(
                    &split.root,
                    format!(
                        "class folder {:?} has no folder of that name in {}",
                        f.name,
                        dataset.root.display()
                    ),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ClassLabels {
        labels: classes.labels.clone(),
        folder_label,
    })
}

/// Image-caption pairs for retrieval: each distinct image once, each caption with its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captions {
    /// The caption file they were read from.
    pub source: PathBuf,
    /// The distinct images, in order of first appearance.
    pub images: Vec<PathBuf>,
    /// The captions, in file order.
    pub captions: Vec<String>,
    /// `caption_image[j]`: the index in `images` of caption `j`'s image.
    pub caption_image: Vec<usize>,
}

/// Header names of the image column a caption file may have (any case; `-` or a space
/// reads as `_`): Hugging Face ImageFolder's `metadata.csv` names it `file_name`,
/// CLIP_benchmark and open_clip's CSVs `filepath` or `image`.
pub const IMAGE_COLUMNS: [&str; 13] = [
    "image",
    "images",
    "image_path",
    "image_file",
    "image_name",
    "img",
    "img_path",
    "filepath",
    "file_path",
    "path",
    "file",
    "filename",
    "file_name",
];
/// Header names of the caption column (as [`IMAGE_COLUMNS`]): `text` (Hugging Face),
/// `caption` (COCO, Flickr30k conversions), `title` (open_clip), …
pub const CAPTION_COLUMNS: [&str; 9] = [
    "caption",
    "captions",
    "text",
    "title",
    "sentence",
    "sentences",
    "comment",
    "description",
    "label",
];

fn is_blank(row: &csv::StringRecord) -> bool {
    row.iter().all(|f| f.trim().is_empty())
}

fn column_name(field: &str) -> String {
    field.trim().to_ascii_lowercase().replace(['-', ' '], "_")
}

/// The image and caption columns a first row names, if it is a header; an error when it looks
/// like one (it names one of the two, or it is the only row whose first field is not an image
/// file name) but does not name both.
fn header_columns(
    path: &Path,
    rows: &[csv::StringRecord],
) -> Result<Option<(usize, usize)>, ClipError> {
    let Some(head) = rows.first() else {
        return Ok(None);
    };
    let find = |names: &[&str]| {
        head.iter()
            .position(|f| names.contains(&column_name(f).as_str()))
    };
    let (image, caption) = (find(&IMAGE_COLUMNS), find(&CAPTION_COLUMNS));
    if let (Some(i), Some(c)) = (image, caption) {
        return Ok(Some((i, c)));
    }
    let is_image = |r: &csv::StringRecord| {
        r.get(0)
            .is_some_and(|f| has_image_extension(Path::new(f.trim())))
    };
    let looks_like_header = image.is_some()
        || caption.is_some()
        || (!is_image(head)
            && rows.len() > 1
            && rows[1..].iter().filter(|r| !is_blank(r)).all(is_image));
    if !looks_like_header {
        return Ok(None);
    }
    let fields: Vec<&str> = head.iter().map(str::trim).collect();
    let missing = match (image, caption) {
        (None, Some(_)) => format!("no image column (one of {})", IMAGE_COLUMNS.join(", ")),
        (Some(_), None) => format!("no caption column (one of {})", CAPTION_COLUMNS.join(", ")),
        _ => format!(
            "neither an image column (one of {}) nor a caption column (one of {})",
            IMAGE_COLUMNS.join(", "),
            CAPTION_COLUMNS.join(", ")
        ),
    };
    Err(dataset_error(
        path,
        format!("row 1 looks like a header, {fields:?}, but names {missing}; rename the columns, or drop the header to use the first two columns"),
    ))
}

/// The line (from 1) of a quote that opens a field and never closes, if there is one: the
/// csv reader takes such a field to the end of the file without a word. Quoting as the csv
/// crate reads it: a `"` opens a field only as its first byte, `""` inside is a quote.
fn unclosed_quote(bytes: &[u8], delimiter: u8) -> Option<usize> {
    let mut line = 1;
    let mut field_start = true;
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if open.is_some() {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                open = None;
            }
        } else if b == b'"' && field_start {
            open = Some(line);
        }
        field_start = open.is_none() && (b == delimiter || b == b'\n' || b == b'\r');
        if b == b'\n' {
            line += 1;
        }
        i += 1;
    }
    open
}

/// Reads a caption file: CSV (or TSV for `.tsv` files) with an image path and a caption per
/// row. A header row naming the columns ([`IMAGE_COLUMNS`] and [`CAPTION_COLUMNS`], such as
/// Hugging Face's `file_name,text` or `image,caption`) picks them; without one, the first two
/// columns are used; a first row that looks like a header but does not name both columns is an
/// error. An image may appear on several rows (several captions). Relative image paths are
/// taken from `images_root`, by default the caption file's folder.
pub fn read_captions(path: &Path, images_root: Option<&Path>) -> Result<Captions, ClipError> {
    let bytes = std::fs::read(path).map_err(|error| ClipError::Io {
        path: path.display().to_string(),
        error,
    })?;
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = if tsv { b'\t' } else { b',' };
    if let Some(line) = unclosed_quote(bytes, delimiter) {
        return Err(dataset_error(
            path,
            format!("line {line}: a quote opens a field and is never closed"),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes);
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record
            .map_err(|e| dataset_error(path, format!("row {}: not valid CSV: {e}", n + 1)))?;
        rows.push(record);
    }
    let header = header_columns(path, &rows)?;
    let columns = header.unwrap_or((0, 1));
    let first = usize::from(header.is_some());
    let root = images_root
        .map(Path::to_path_buf)
        .unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
    let mut out = Captions {
        source: path.to_path_buf(),
        images: Vec::new(),
        captions: Vec::new(),
        caption_image: Vec::new(),
    };
    let mut seen: HashMap<PathBuf, usize> = HashMap::new();
    for (n, row) in rows.iter().enumerate().skip(first) {
        if is_blank(row) {
            continue;
        }
        let (Some(image), Some(caption)) = (row.get(columns.0), row.get(columns.1)) else {
            return Err(dataset_error(
                path,
                format!(
                    "row {}: {} columns, but the image and caption are columns {} and {}",
                    n + 1,
                    row.len(),
                    columns.0 + 1,
                    columns.1 + 1
                ),
            ));
        };
        if [image, caption].iter().any(|f| f.contains(['\n', '\r'])) {
            let line = row.position().map_or(n as u64 + 1, csv::Position::line);
            return Err(dataset_error(
                path,
                format!("line {line}: a quoted field spans lines (a quote left open?)"),
            ));
        }
        let (image, caption) = (image.trim(), caption.trim());
        if image.is_empty() || caption.is_empty() {
            return Err(dataset_error(
                path,
                format!("row {}: empty image path or caption", n + 1),
            ));
        }
        let image = root.join(image);
        let next = out.images.len();
        let index = *seen.entry(image.clone()).or_insert(next);
        if index == next {
            out.images.push(image);
        }
        out.captions.push(caption.to_string());
        out.caption_image.push(index);
    }
    if out.captions.is_empty() {
        return Err(dataset_error(path, "no image-caption rows"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_files_in_each_form() {
        let tmp = clip_test_support::temp_dir();
        let dir = tmp.path().to_path_buf();
        let f = dir.join("map.txt");
        std::fs::write(
            &f,
            "\u{feff}# synsets\n  n01440764 tench, Tinca tinca\ncat_dir,a cat # mine\nmy dogs\tdog\r\n",
        )
        .unwrap();
        let m = read_mapping(&f).unwrap();
        assert_eq!(m["n01440764"], "tench, Tinca tinca");
        assert_eq!(m["cat_dir"], "a cat");
        assert_eq!(m["my dogs"], "dog");
        std::fs::write(&f, "a,x\na,y\n").unwrap();
        let e = read_mapping(&f).unwrap_err().to_string();
        assert!(e.contains("map.txt") && e.contains("twice"), "{e}");
        std::fs::write(&f, "lonely\n").unwrap();
        assert!(read_mapping(&f).unwrap_err().to_string().contains("line 1"));
        let j = dir.join("map.json");
        std::fs::write(&j, r#"{"a": "apple"}"#).unwrap();
        assert_eq!(read_mapping(&j).unwrap()["a"], "apple");
        std::fs::write(&j, "[1]").unwrap();
        assert!(read_mapping(&j)
            .unwrap_err()
            .to_string()
            .contains("map.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn labels_match_folders_by_mapping_name_or_position() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let folders = ["cat", "golden_retriever"];
        // By folder name.
        let m = match_labels(&folders, None, None, "x").unwrap();
        assert_eq!(m.labels, ["cat", "golden retriever"]);
        // By name, whatever the order of the labels, with distractors.
        let labels = s(&["Golden Retriever", "car", "cat"]);
        let m = match_labels(&folders, Some(&labels), None, "x").unwrap();
        assert_eq!(m.folder_label, [2, 0]);
        // By position when the names do not match.
        let labels = s(&["a", "b"]);
        let m = match_labels(&folders, Some(&labels), None, "x").unwrap();
        assert_eq!(m.folder_label, [0, 1]);
        // Names that match in another order forbid matching by position.
        let three = ["cat", "dog", "zebra_x"];
        let e = match_labels(&three, Some(&s(&["dog", "cat", "zebra"])), None, "l.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"cat\"") && e.contains("mapping file"), "{e}");
        let m = match_labels(&three, Some(&s(&["cat", "dog", "zebra"])), None, "l.txt").unwrap();
        assert_eq!(m.folder_label, [0, 1, 2]);
        let e = match_labels(&folders, Some(&s(&["a"])), None, "labels.txt")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("labels.txt") && e.contains("1 labels for 2"),
            "{e}"
        );
        // By mapping.
        let map: BTreeMap<String, String> = [("cat", "kitty"), ("golden_retriever", "dog")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let p = Path::new("map.txt");
        let m = match_labels(&folders, None, Some((&map, p)), "x").unwrap();
        assert_eq!(
            (m.labels.clone(), m.folder_label),
            (s(&["kitty", "dog"]), vec![0, 1])
        );
        let labels = s(&["dog", "kitty", "bird"]);
        let m = match_labels(&folders, Some(&labels), Some((&map, p)), "x").unwrap();
        assert_eq!(m.folder_label, [1, 0]);
        let e = match_labels(&folders, Some(&s(&["dog"])), Some((&map, p)), "l.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("map.txt") && e.contains("\"kitty\""), "{e}");
        let e = match_labels(&["cow"], None, Some((&map, p)), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"cow\""), "{e}");
    }

    #[test]
    fn image_folders_and_their_errors() {
        let tmp = clip_test_support::temp_dir();
        let dir = tmp.path().to_path_buf();
        for (f, body) in [
            ("b/x.jpg", "x"),
            ("b/sub/y.PNG", "y"),
            ("b/notes.txt", "n"),
            ("a/.hidden.jpg", "h"),
            ("c/z.webp", "z"),
        ] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        let ds = ImageFolder::open(&dir).unwrap();
        assert_eq!(ds.folder_names(), ["a", "b", "c"]);
        assert!(ds.classes[0].images.is_empty());
        let samples = ds.samples();
        assert_eq!(samples.len(), 3);
        assert!(samples[0].0.ends_with("b/sub/y.PNG") && samples[0].1 == 1);
        assert!(samples[2].0.ends_with("c/z.webp") && samples[2].1 == 2);
        // A link back up the tree is walked once.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&dir, dir.join("c/loop")).unwrap();
            // c/z.webp, then through the link b/x.jpg and b/sub/y.PNG; c is not entered again.
            assert_eq!(image_files(&dir.join("c")).unwrap().len(), 3);
            std::fs::remove_file(dir.join("c/loop")).unwrap();
        }
        let e = ImageFolder::open(&dir.join("a")).unwrap_err().to_string();
        assert!(e.contains("no class folders"), "{e}");
        let e = ImageFolder::open(&dir.join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("no such folder"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_split_takes_labels_by_folder_name() {
        let split = |root: &str, names: &[&str]| ImageFolder {
            root: PathBuf::from(root),
            classes: names
                .iter()
                .map(|n| ClassFolder {
                    name: n.to_string(),
                    images: Vec::new(),
                })
                .collect(),
        };
        let test = split("/test", &["a", "b", "c"]);
        let classes = ClassLabels {
            labels: vec!["x".into(), "y".into(), "z".into()],
            folder_label: vec![2, 0, 1],
        };
        let train = split("/train", &["b", "c"]);
        assert_eq!(
            match_split(&test, &classes, &train).unwrap().folder_label,
            [0, 1]
        );
        let odd = split("/train", &["a", "d"]);
        let e = match_split(&test, &classes, &odd).unwrap_err().to_string();
        assert!(
            e.contains("/train") && e.contains("\"d\"") && e.contains("/test"),
            "{e}"
        );
    }

    #[test]
    fn caption_files_with_and_without_header() {
        let tmp = clip_test_support::temp_dir();
        let dir = tmp.path().to_path_buf();
        let f = dir.join("c.csv");
        std::fs::write(
            &f,
            "filepath,title\na.jpg,\"a cat, sleeping\"\nb.jpg,a dog\na.jpg,a kitten\n",
        )
        .unwrap();
        let c = read_captions(&f, None).unwrap();
        assert_eq!(c.images, [dir.join("a.jpg"), dir.join("b.jpg")]);
        assert_eq!(c.captions, ["a cat, sleeping", "a dog", "a kitten"]);
        assert_eq!(c.caption_image, [0, 1, 0]);
        std::fs::write(&f, "x/a.jpg,one\n").unwrap();
        let c = read_captions(&f, Some(Path::new("/data"))).unwrap();
        assert_eq!(c.images, [PathBuf::from("/data/x/a.jpg")]);
        let t = dir.join("c.tsv");
        std::fs::write(&t, "caption\timage\nhello, world\ta.png\n").unwrap();
        let c = read_captions(&t, None).unwrap();
        assert_eq!(
            (c.captions[0].as_str(), &c.images[0]),
            ("hello, world", &dir.join("a.png"))
        );
        // The headers of Hugging Face's ImageFolder metadata.csv and of COCO conversions.
        for head in [
            "file_name,text",
            "\u{feff}Image,Caption",
            "caption,file_name",
            "image_path,sentence",
        ] {
            let (image, caption) = if head.starts_with("caption") {
                ("a dog", "b.jpg")
            } else {
                ("b.jpg", "a dog")
            };
            std::fs::write(&f, format!("{head}\n{image},{caption}\n")).unwrap();
            let c = read_captions(&f, None).unwrap();
            assert_eq!(
                (c.images, c.captions),
                (vec![dir.join("b.jpg")], vec!["a dog".to_string()]),
                "{head}"
            );
        }
        // A header that names one column only, or none, is not read as an image.
        std::fs::write(&f, "file_name,sentence_en\nb.jpg,a dog\n").unwrap();
        let e = read_captions(&f, None).unwrap_err().to_string();
        assert!(
            e.contains("row 1 looks like a header")
                && e.contains("no caption column")
                && e.contains("text"),
            "{e}"
        );
        std::fs::write(&f, "picture,words\nb.jpg,a dog\n\nc.png,a cat\n").unwrap();
        let e = read_captions(&f, None).unwrap_err().to_string();
        assert!(
            e.contains("[\"picture\", \"words\"]") && e.contains("neither"),
            "{e}"
        );
        std::fs::write(&f, "image,caption\nonly-one-column\n").unwrap();
        let e = read_captions(&f, None).unwrap_err().to_string();
        assert!(e.contains("c.csv") && e.contains("row 2"), "{e}");
        std::fs::write(&f, "image,caption\n").unwrap();
        assert!(read_captions(&f, None)
            .unwrap_err()
            .to_string()
            .contains("no image-caption rows"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A quote left open is an error naming the file and the line it opens on, whether it is
    /// on the last line (with or without a newline after it) or before other rows; quotes
    /// that close, doubled quotes and quotes inside a field are fine.
    #[test]
    fn an_unclosed_quote_is_an_error_with_its_line() {
        let tmp = clip_test_support::temp_dir();
        let f = tmp.path().join("c.csv");
        for (text, line) in [
            (
                "image,caption\na/cat.png,a cat\na/horse.png,\"unterminated",
                3,
            ),
            (
                "image,caption\na/cat.png,a cat\na/horse.png,\"unterminated\n",
                3,
            ),
            ("image,caption\na/horse.png,\"open\na/cat.png,a cat\n", 2),
            ("\"image,caption\na/cat.png,a cat\n", 1),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = read_captions(&f, None).unwrap_err().to_string();
            assert!(
                e.contains("c.csv")
                    && e.contains(&format!(
                        "line {line}: a quote opens a field and is never closed"
                    )),
                "{text:?}: {e}"
            );
        }
        std::fs::write(
            &f,
            "image,caption\na.png,\"say \"\"hi\"\"\"\nb.png,5\" tall\nc.png,\"x\"\n",
        )
        .unwrap();
        let c = read_captions(&f, None).unwrap();
        assert_eq!(c.captions, ["say \"hi\"", "5\" tall", "x"]);
        // A quote that closes on another line is a field spanning lines, named by its line.
        std::fs::write(&f, "image,caption\na.png,ok\nb.png,\"two\nlines\"\n").unwrap();
        let e = read_captions(&f, None).unwrap_err().to_string();
        assert!(e.contains("line 3: a quoted field spans lines"), "{e}");
        assert_eq!(unclosed_quote(b"a\t\"b\"\n\"c", b'\t'), Some(2));
    }
}
