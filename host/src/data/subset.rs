//! The small real subset of both data sets embedded in the binary, so that every command
//! runs with no setup, and its generator (`heist data make-subset`).
//!
//! For each data set, [`TRAIN_SIZE`] training and [`TEST_SIZE`] test images are drawn
//! uniformly without replacement from the canonical files with a ChaCha20 generator seeded
//! by [`SUBSET_SEED`] (one stream per data set and split), kept in their canonical order, and
//! stored under `host/data/<dir>/` as gzip IDX files with the canonical names, beside a
//! `subset.json` manifest recording the seed, the canonical data's checksum, the chosen
//! indices and the SHA-256 of each decompressed subset file. Loading checks those sums.
//!
//! Regenerate with `heist data make-subset --data-dir DIR` (DIR holding the canonical
//! `mnist/` and `fashion-mnist/`), run from the repository root.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand_core::SeedableRng;

use super::{idx, sample, Data, DataError, DataSource, Dataset, FileKind, Images, IMAGE_SIDE};

/// Training images per data set in the subset.
pub const TRAIN_SIZE: usize = 2000;

/// Test images per data set in the subset.
pub const TEST_SIZE: usize = 1000;

/// The seed the subset is drawn with.
pub const SUBSET_SEED: u64 = 0x6865_6973_7453_4231;

/// The embedded files of one data set: the four gzip IDX files in [`FileKind::ALL`] order
/// and the manifest.
struct Embedded {
    files: [&'static [u8]; 4],
    manifest: &'static str,
}

const MNIST: Embedded = Embedded {
    files: [
        include_bytes!("../../data/mnist/train-images-idx3-ubyte.gz"),
        include_bytes!("../../data/mnist/train-labels-idx1-ubyte.gz"),
        include_bytes!("../../data/mnist/t10k-images-idx3-ubyte.gz"),
        include_bytes!("../../data/mnist/t10k-labels-idx1-ubyte.gz"),
    ],
    manifest: include_str!("../../data/mnist/subset.json"),
};

const FASHION: Embedded = Embedded {
    files: [
        include_bytes!("../../data/fashion-mnist/train-images-idx3-ubyte.gz"),
        include_bytes!("../../data/fashion-mnist/train-labels-idx1-ubyte.gz"),
        include_bytes!("../../data/fashion-mnist/t10k-images-idx3-ubyte.gz"),
        include_bytes!("../../data/fashion-mnist/t10k-labels-idx1-ubyte.gz"),
    ],
    manifest: include_str!("../../data/fashion-mnist/subset.json"),
};

/// The manifest written beside a subset.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The data set.
    pub dataset: Dataset,
    /// The seed of the draw.
    pub seed: u64,
    /// [`Dataset::checksum`] of the canonical data drawn from.
    pub source_checksum: String,
    /// Indices into the canonical training set, increasing.
    pub train_indices: Vec<usize>,
    /// Indices into the canonical test set, increasing.
    pub test_indices: Vec<usize>,
    /// SHA-256 of each decompressed subset file, in [`FileKind::ALL`] order.
    pub sha256: [String; 4],
}

impl Manifest {
    /// The embedded manifest of `dataset`.
    ///
    /// # Errors
    /// If the embedded JSON does not parse (a build defect, reported rather than panicking).
    pub fn embedded(dataset: Dataset) -> Result<Manifest, serde_json::Error> {
        serde_json::from_str(embedded(dataset).manifest)
    }
}

fn embedded(dataset: Dataset) -> &'static Embedded {
    match dataset {
        Dataset::Mnist => &MNIST,
        Dataset::Fashion => &FASHION,
    }
}

/// The embedded subset of `dataset`, verified against its manifest.
///
/// # Errors
/// Any [`DataError`] (only on a defective build).
pub fn load(dataset: Dataset) -> Result<Data, DataError> {
    let emb = embedded(dataset);
    let manifest = Manifest::embedded(dataset).map_err(|e| DataError::Manifest {
        dataset,
        message: e.to_string(),
    })?;
    let read = |i: usize| -> Result<(idx::IdxArray, String), DataError> {
        let kind = FileKind::ALL[i];
        let file = format!("embedded {}/{}.gz", dataset.dir_name(), kind.base_name());
        let raw = idx::decompress(emb.files[i].to_vec(), &file, idx::MAX_IDX_BYTES)?;
        let actual = super::sha256_hex(&raw);
        if actual != manifest.sha256[i] {
            return Err(DataError::Checksum {
                file,
                expected: manifest.sha256[i].clone(),
                actual,
            });
        }
        Ok((idx::parse(raw, &file)?, file))
    };
    let (ti, tin) = read(0)?;
    let (tl, tln) = read(1)?;
    let (si, sin) = read(2)?;
    let (sl, sln) = read(3)?;
    Ok(Data {
        dataset,
        source: DataSource::EmbeddedSubset,
        train: Images::from_idx(ti, &tin, tl, &tln)?,
        test: Images::from_idx(si, &sin, sl, &sln)?,
    })
}

/// Draws the subset indices of `dataset` from canonical sets of the given sizes.
pub fn draw(dataset: Dataset, train_len: usize, test_len: usize) -> (Vec<usize>, Vec<usize>) {
    let stream = match dataset {
        Dataset::Mnist => 0,
        Dataset::Fashion => 2,
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(SUBSET_SEED);
    rng.set_stream(stream);
    let train = sample::sample_indices(&mut rng, train_len, TRAIN_SIZE.min(train_len));
    rng.set_stream(stream + 1);
    let test = sample::sample_indices(&mut rng, test_len, TEST_SIZE.min(test_len));
    (train, test)
}

/// Gzip-compresses bytes deterministically (no file name, zero modification time).
///
/// # Errors
/// Only on an allocation failure reported by the encoder.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    enc.finish()
}

/// Builds the subset of `data` (which must be canonical) and writes it to `out_dir/<dir>/`.
/// Returns the manifest written.
///
/// # Errors
/// I/O errors, or if `data` is itself the embedded subset.
pub fn write(data: &Data, out_dir: &Path) -> anyhow::Result<Manifest> {
    anyhow::ensure!(
        !data.source.is_subset(),
        "make-subset needs the canonical data, not the embedded subset"
    );
    let (train_idx, test_idx) = draw(data.dataset, data.train.len(), data.test.len());
    let train = data.train.select(&train_idx);
    let test = data.test.select(&test_idx);
    let side = u32::try_from(IMAGE_SIDE)?;
    let raw: [Vec<u8>; 4] = [
        idx::encode(&[u32::try_from(train.len())?, side, side], &train.pixels),
        idx::encode(&[u32::try_from(train.len())?], &train.labels),
        idx::encode(&[u32::try_from(test.len())?, side, side], &test.pixels),
        idx::encode(&[u32::try_from(test.len())?], &test.labels),
    ];
    let dir: PathBuf = out_dir.join(data.dataset.dir_name());
    std::fs::create_dir_all(&dir)?;
    for (bytes, kind) in raw.iter().zip(FileKind::ALL) {
        std::fs::write(dir.join(format!("{}.gz", kind.base_name())), gzip(bytes)?)?;
    }
    let manifest = Manifest {
        dataset: data.dataset,
        seed: SUBSET_SEED,
        source_checksum: data.dataset.checksum(),
        train_indices: train_idx,
        test_indices: test_idx,
        sha256: raw.map(|b| super::sha256_hex(&b)),
    };
    std::fs::write(
        dir.join("subset.json"),
        serde_json::to_string(&manifest)? + "\n",
    )?;
    Ok(manifest)
}
