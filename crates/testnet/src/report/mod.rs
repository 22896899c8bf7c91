//! The report of a run, written from its [`RunRecord`] alone: `summary.json` (numbers),
//! `timeline.csv` (every sample) and `report.html` (plots and tables, self-contained).

use std::path::{Path, PathBuf};

mod html;
mod summary;
mod svg;
mod timeline;

pub use html::escape;
pub use summary::{GroupSummary, NodeSummary, Summary, Totals};
pub use timeline::SOURCES;

use crate::record::RunRecord;

/// Largest `summary.json` read back (by [`read_summary`] and `compare`).
pub const MAX_SUMMARY_BYTES: u64 = 64 << 20;

/// Why a report could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run directory could not be created.
    #[error("cannot create report directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A report file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A summary could not be read.
    #[error("cannot read {path}: {source} (is it a run directory with a summary.json?)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A summary is larger than [`MAX_SUMMARY_BYTES`].
    #[error("{path} is {len} bytes, more than the {limit}-byte limit for a summary")]
    TooLarge { path: PathBuf, len: u64, limit: u64 },
    /// A summary is not the JSON `write` produces.
    #[error("{path} is not a valid summary: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The summary could not be encoded (not expected to happen).
    #[error("cannot encode the summary as JSON: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Writes `summary.json`, `timeline.csv` and `report.html` into `dir` (created if missing)
/// and returns the summary.
pub fn write(dir: &Path, record: &RunRecord) -> Result<Summary, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let summary = Summary::from_record(record);
    let json = serde_json::to_string_pretty(&summary).map_err(ReportError::Encode)?;
    write_file(&dir.join("summary.json"), json.as_bytes())?;
    write_file(&dir.join("timeline.csv"), timeline::csv(record).as_bytes())?;
    write_file(
        &dir.join("report.html"),
        html::page(record, &summary).as_bytes(),
    )?;
    Ok(summary)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Reads `summary.json` from a run directory (or the file itself, if `path` is a file).
pub fn read_summary(path: &Path) -> Result<Summary, ReportError> {
    read_summary_limited(path, MAX_SUMMARY_BYTES)
}

fn read_summary_limited(path: &Path, limit: u64) -> Result<Summary, ReportError> {
    let file = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_owned()
    };
    let read_err = |source| ReportError::Read {
        path: file.clone(),
        source,
    };
    let len = std::fs::metadata(&file).map_err(read_err)?.len();
    if len > limit {
        return Err(ReportError::TooLarge {
            path: file,
            len,
            limit,
        });
    }
    let text = std::fs::read_to_string(&file).map_err(read_err)?;
    serde_json::from_str(&text).map_err(|source| ReportError::Parse { path: file, source })
}

#[cfg(test)]
pub(crate) mod tests;
