//! Data: MNIST and Fashion-MNIST in the IDX format, found on disk, verified against
//! built-in SHA-256 sums, or taken from a small subset embedded in the binary.
//!
//! # Where the files are looked for
//! For a data set with directory name `D` (`mnist` or `fashion-mnist`), in this order:
//! 1. `--data-dir DIR` → `DIR/D/`;
//! 2. the environment variable `HEIST_DATA_DIR` → `$HEIST_DATA_DIR/D/`;
//! 3. `./data/D/`;
//! 4. `/usr/share/datasets/D/` (where Debian's `dataset-fashion-mnist` installs).
//!
//! A directory given explicitly (1 or 2) must hold the data set: heist reports what is
//! missing rather than silently looking elsewhere. When neither is given and neither 3
//! nor 4 holds the files, heist uses the embedded subset ([`subset`]) and says so.
//! Each of the four files may be raw (`train-images-idx3-ubyte`) or gzip
//! (`train-images-idx3-ubyte.gz`); the SHA-256 of the decompressed bytes must match.

pub mod fetch;
pub mod idx;
pub mod sample;
pub mod subset;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The environment variable naming a data root.
pub const DATA_DIR_ENV: &str = "HEIST_DATA_DIR";

/// The system-wide data root used by Debian's dataset packages.
pub const SYSTEM_DATA_ROOT: &str = "/usr/share/datasets";

/// Image height and width of both data sets.
pub const IMAGE_SIDE: usize = 28;

/// Pixels per image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Number of classes of both data sets.
pub const CLASSES: usize = 10;

/// A supported data set.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    /// LeCun et al.'s handwritten digits.
    Mnist,
    /// Zalando's Fashion-MNIST (Xiao, Rasul, Vollgraf 2017).
    Fashion,
}

/// One of the four files of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Training images.
    TrainImages,
    /// Training labels.
    TrainLabels,
    /// Test images.
    TestImages,
    /// Test labels.
    TestLabels,
}

impl FileKind {
    /// All four, in the order of [`Dataset::files`].
    pub const ALL: [FileKind; 4] = [
        FileKind::TrainImages,
        FileKind::TrainLabels,
        FileKind::TestImages,
        FileKind::TestLabels,
    ];

    /// The canonical file name without `.gz`.
    pub fn base_name(self) -> &'static str {
        match self {
            FileKind::TrainImages => "train-images-idx3-ubyte",
            FileKind::TrainLabels => "train-labels-idx1-ubyte",
            FileKind::TestImages => "t10k-images-idx3-ubyte",
            FileKind::TestLabels => "t10k-labels-idx1-ubyte",
        }
    }
}

/// A file expected in a data directory: its kind and the SHA-256 of its decompressed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// Which file.
    pub kind: FileKind,
    /// Lower-case hex SHA-256 of the decompressed IDX bytes.
    pub sha256: &'static str,
}

/// SHA-256 of the decompressed canonical MNIST files.
const MNIST_FILES: [FileSpec; 4] = [
    FileSpec {
        kind: FileKind::TrainImages,
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    FileSpec {
        kind: FileKind::TrainLabels,
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    FileSpec {
        kind: FileKind::TestImages,
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    FileSpec {
        kind: FileKind::TestLabels,
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

/// SHA-256 of the decompressed canonical Fashion-MNIST files.
const FASHION_FILES: [FileSpec; 4] = [
    FileSpec {
        kind: FileKind::TrainImages,
        sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    FileSpec {
        kind: FileKind::TrainLabels,
        sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    FileSpec {
        kind: FileKind::TestImages,
        sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    FileSpec {
        kind: FileKind::TestLabels,
        sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
];

impl Dataset {
    /// Both data sets.
    pub const ALL: [Dataset; 2] = [Dataset::Mnist, Dataset::Fashion];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::Fashion => "fashion",
        }
    }

    /// The directory name under a data root.
    pub fn dir_name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::Fashion => "fashion-mnist",
        }
    }

    /// The four canonical files and their checksums.
    pub fn files(self) -> &'static [FileSpec; 4] {
        match self {
            Dataset::Mnist => &MNIST_FILES,
            Dataset::Fashion => &FASHION_FILES,
        }
    }

    /// The public mirror the canonical gzip files are fetched from (ends in `/`).
    pub fn mirror(self) -> &'static str {
        match self {
            Dataset::Mnist => "https://ossci-datasets.s3.amazonaws.com/mnist/",
            Dataset::Fashion => "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        }
    }

    /// A short identity of the canonical data: the SHA-256 of the four decompressed files'
    /// hex sums, concatenated in [`FileKind::ALL`] order.
    pub fn checksum(self) -> String {
        let mut h = Sha256::new();
        for f in self.files() {
            h.update(f.sha256.as_bytes());
        }
        hex(&h.finalize())
    }
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a data set could not be found or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file failed to read or decode.
    #[error(transparent)]
    Idx(#[from] idx::IdxError),
    /// An explicitly given directory lacks a file.
    #[error("{dir}: no {name} or {name}.gz (given by {origin})")]
    Missing {
        /// The directory searched.
        dir: String,
        /// The base file name.
        name: &'static str,
        /// Where the directory came from.
        origin: Origin,
    },
    /// A file's decompressed bytes do not have the expected SHA-256.
    #[error("{file}: SHA-256 {actual} does not match the expected {expected}")]
    Checksum {
        /// The file.
        file: String,
        /// The expected hex sum.
        expected: String,
        /// The hex sum found.
        actual: String,
    },
    /// A file decodes but does not have the shape of this data set.
    #[error("{file}: dimensions {dims:?} are not those of {what}")]
    Shape {
        /// The file.
        file: String,
        /// The dimensions found.
        dims: Vec<u32>,
        /// What was expected.
        what: &'static str,
    },
    /// Images and labels differ in count.
    #[error("{images} images but {labels} labels")]
    CountMismatch {
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },
    /// The embedded subset's manifest does not parse (a defective build).
    #[error("embedded subset of {dataset}: bad manifest: {message}")]
    Manifest {
        /// The data set.
        dataset: Dataset,
        /// The parser's message.
        message: String,
    },
    /// A label is not below [`CLASSES`].
    #[error("{file}: label {label} at index {index} is not below {CLASSES}")]
    BadLabel {
        /// The file.
        file: String,
        /// The index of the label.
        index: usize,
        /// The label.
        label: u8,
    },
}

/// Where a data directory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The `--data-dir` flag.
    Flag,
    /// The `HEIST_DATA_DIR` environment variable.
    Env,
    /// `./data/`.
    Local,
    /// `/usr/share/datasets/`.
    System,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Flag => "--data-dir",
            Origin::Env => DATA_DIR_ENV,
            Origin::Local => "./data",
            Origin::System => SYSTEM_DATA_ROOT,
        })
    }
}

/// A candidate data directory for one data set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The directory holding (or meant to hold) the four files.
    pub dir: PathBuf,
    /// Where it came from.
    pub origin: Origin,
}

/// The candidate directories for `dataset`, in search order. When `data_dir` is given or
/// `HEIST_DATA_DIR` is set, that single explicit directory is the only candidate.
pub fn candidates(dataset: Dataset, data_dir: Option<&Path>) -> Vec<Candidate> {
    let env = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty());
    let explicit = data_dir
        .map(|d| (d.to_path_buf(), Origin::Flag))
        .or_else(|| env.map(|e| (PathBuf::from(e), Origin::Env)));
    match explicit {
        Some((root, origin)) => vec![Candidate {
            dir: root.join(dataset.dir_name()),
            origin,
        }],
        None => vec![
            Candidate {
                dir: Path::new("data").join(dataset.dir_name()),
                origin: Origin::Local,
            },
            Candidate {
                dir: Path::new(SYSTEM_DATA_ROOT).join(dataset.dir_name()),
                origin: Origin::System,
            },
        ],
    }
}

/// The path of `kind` in `dir`: the gzip file if present, else the raw one, else `None`.
pub fn find_file(dir: &Path, kind: FileKind) -> Option<PathBuf> {
    let gz = dir.join(format!("{}.gz", kind.base_name()));
    let raw = dir.join(kind.base_name());
    [gz, raw].into_iter().find(|p| p.is_file())
}

/// Whether `dir` holds all four files (not yet verified).
pub fn is_complete(dir: &Path) -> bool {
    FileKind::ALL.iter().all(|&k| find_file(dir, k).is_some())
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Lower-case hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Labelled 28x28 grey images, one byte per pixel (0 = background).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// `len() * IMAGE_PIXELS` pixels, image after image, row-major.
    pub pixels: Vec<u8>,
    /// One label below [`CLASSES`] per image.
    pub labels: Vec<u8>,
}

impl Images {
    /// Pairs decoded image and label arrays, checking shapes, counts and label range.
    ///
    /// # Errors
    /// [`DataError::Shape`], [`DataError::CountMismatch`] or [`DataError::BadLabel`].
    pub fn from_idx(
        images: idx::IdxArray,
        images_file: &str,
        labels: idx::IdxArray,
        labels_file: &str,
    ) -> Result<Self, DataError> {
        let side = u32::try_from(IMAGE_SIDE).unwrap_or(u32::MAX);
        if images.dims.len() != 3 || images.dims[1] != side || images.dims[2] != side {
            return Err(DataError::Shape {
                file: images_file.to_owned(),
                dims: images.dims,
                what: "28x28 images ([n, 28, 28])",
            });
        }
        if labels.dims.len() != 1 {
            return Err(DataError::Shape {
                file: labels_file.to_owned(),
                dims: labels.dims,
                what: "labels ([n])",
            });
        }
        let n_images = images.data.len() / IMAGE_PIXELS;
        if n_images != labels.data.len() {
            return Err(DataError::CountMismatch {
                images: n_images,
                labels: labels.data.len(),
            });
        }
        if let Some((index, &label)) = labels
            .data
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= CLASSES)
        {
            return Err(DataError::BadLabel {
                file: labels_file.to_owned(),
                index,
                label,
            });
        }
        Ok(Images {
            pixels: images.data,
            labels: labels.data,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]
    }

    /// Image `i` with pixels scaled to [0, 1] (divided by 255), appended to `out`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn push_scaled(&self, i: usize, out: &mut Vec<f32>) {
        out.extend(self.image(i).iter().map(|&p| f32::from(p) / 255.0));
    }

    /// The images at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn select(&self, indices: &[usize]) -> Images {
        let mut pixels = Vec::with_capacity(indices.len() * IMAGE_PIXELS);
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        Images {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// The first `k` images (all of them if `k >= len()`).
    pub fn truncated(&self, k: usize) -> Images {
        let k = k.min(self.len());
        Images {
            pixels: self.pixels[..k * IMAGE_PIXELS].to_vec(),
            labels: self.labels[..k].to_vec(),
        }
    }
}

/// Where loaded data came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// The canonical files in a directory, verified.
    Directory {
        /// The directory.
        dir: PathBuf,
        /// How it was found.
        origin: Origin,
    },
    /// The small subset built into the binary.
    EmbeddedSubset,
}

impl DataSource {
    /// `"canonical"` or `"embedded-subset"`, the value of `data_source` in JSON output.
    pub fn label(&self) -> &'static str {
        match self {
            DataSource::Directory { .. } => "canonical",
            DataSource::EmbeddedSubset => "embedded-subset",
        }
    }

    /// Whether this is the embedded subset.
    pub fn is_subset(&self) -> bool {
        matches!(self, DataSource::EmbeddedSubset)
    }

    /// A loud notice for results computed on the embedded subset, `None` otherwise.
    pub fn notice(&self) -> Option<String> {
        self.is_subset().then(|| {
            format!(
                "NOTICE: using the EMBEDDED SUBSET ({} train + {} test images per data set), \
                 not the canonical data; results are not comparable to the paper. \
                 Run `heist data fetch` or pass --data-dir.",
                subset::TRAIN_SIZE,
                subset::TEST_SIZE
            )
        })
    }
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSource::Directory { dir, origin } => {
                write!(f, "{} (from {origin})", dir.display())
            }
            DataSource::EmbeddedSubset => f.write_str("embedded subset"),
        }
    }
}

/// A data set's training and test images and where they came from.
#[derive(Clone, Debug)]
pub struct Data {
    /// Which data set.
    pub dataset: Dataset,
    /// Where it came from.
    pub source: DataSource,
    /// Training images.
    pub train: Images,
    /// Test images.
    pub test: Images,
}

/// Reads one file of a data set: decompresses it, checks its SHA-256 against `expected`
/// (when given) and parses it.
///
/// # Errors
/// Any [`DataError`].
pub fn read_verified(path: &Path, expected: Option<&str>) -> Result<idx::IdxArray, DataError> {
    let file = path.display().to_string();
    let bytes = idx::read_decompressed(path)?;
    if let Some(expected) = expected {
        let actual = sha256_hex(&bytes);
        if actual != expected {
            return Err(DataError::Checksum {
                file,
                expected: expected.to_owned(),
                actual,
            });
        }
    }
    Ok(idx::parse(bytes, &file)?)
}

/// Which splits a load reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Splits {
    /// The training and the test images.
    Both,
    /// The test images only, for a command that never reads the training images: from a
    /// directory, [`Data::train`] is then empty (the four files must still be present).
    /// The embedded subset is read whole.
    TestOnly,
}

/// Loads and verifies the files of `splits` in `dir` against `specs` (the training images
/// come back empty for [`Splits::TestOnly`]); all four files must be present.
///
/// # Errors
/// Any [`DataError`]; [`DataError::Missing`] names the first absent file.
pub fn load_dir(
    dir: &Path,
    origin: Origin,
    specs: &[FileSpec; 4],
    splits: Splits,
) -> Result<(Images, Images), DataError> {
    // Every file must be present before any is read, so a missing one is named first.
    let mut paths = Vec::with_capacity(specs.len());
    for spec in specs {
        paths.push(find_file(dir, spec.kind).ok_or(DataError::Missing {
            dir: dir.display().to_string(),
            name: spec.kind.base_name(),
            origin,
        })?);
    }
    let read = |i: usize| -> Result<(idx::IdxArray, String), DataError> {
        Ok((
            read_verified(&paths[i], Some(specs[i].sha256))?,
            paths[i].display().to_string(),
        ))
    };
    let train = if splits == Splits::Both {
        let (a, an) = read(0)?;
        let (b, bn) = read(1)?;
        Images::from_idx(a, &an, b, &bn)?
    } else {
        Images {
            pixels: Vec::new(),
            labels: Vec::new(),
        }
    };
    let (a, an) = read(2)?;
    let (b, bn) = read(3)?;
    let test = Images::from_idx(a, &an, b, &bn)?;
    Ok((train, test))
}

/// Finds and loads `dataset` (see the module docs for the search order); with
/// `embedded`, or when nothing is found implicitly, returns the embedded subset.
///
/// # Errors
/// Any [`DataError`] from an explicit or found directory.
pub fn load(dataset: Dataset, data_dir: Option<&Path>, embedded: bool) -> Result<Data, DataError> {
    load_splits(dataset, data_dir, embedded, Splits::Both)
}

/// [`load`], reading from a directory only the `splits` asked for.
///
/// # Errors
/// As [`load`].
pub fn load_splits(
    dataset: Dataset,
    data_dir: Option<&Path>,
    embedded: bool,
    splits: Splits,
) -> Result<Data, DataError> {
    if !embedded {
        let cands = candidates(dataset, data_dir);
        let explicit = cands
            .iter()
            .find(|c| matches!(c.origin, Origin::Flag | Origin::Env));
        let chosen = explicit.or_else(|| cands.iter().find(|c| is_complete(&c.dir)));
        if let Some(c) = chosen {
            let (train, test) = load_dir(&c.dir, c.origin, dataset.files(), splits)?;
            return Ok(Data {
                dataset,
                source: DataSource::Directory {
                    dir: c.dir.clone(),
                    origin: c.origin,
                },
                train,
                test,
            });
        }
    }
    subset::load(dataset)
}
