//! File formats — CSV or JSON Lines, each optionally gzip-compressed — and the byte streams
//! under them: an input opened at a byte offset of its decompressed content (what a
//! checkpoint resumes from), and an output that is compressed when its name ends in `.gz`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Read buffer: large enough that system calls are not the cost of reading.
const BUFFER_BYTES: usize = 256 * 1024;

/// How records are laid out in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row naming the columns.
    Csv,
    /// One JSON object per line, keyed by column name.
    Jsonl,
}

impl Format {
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }

    /// The format a file name says (`.csv`, `.jsonl` or `.ndjson`, before an optional `.gz`).
    pub fn of_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".csv") {
            Some(Self::Csv)
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Some(Self::Jsonl)
        } else {
            None
        }
    }

    /// The given format, or the one the file name says.
    pub fn resolve(given: Option<Self>, path: &Path) -> anyhow::Result<Self> {
        given.or_else(|| Self::of_path(path)).with_context(|| {
            format!(
                "cannot tell the format of {} from its name: use --format csv or --format jsonl",
                path.display()
            )
        })
    }
}

/// An input file's decompressed content from some byte offset on.
pub struct Input {
    pub reader: Box<dyn BufRead + Send>,
    /// Bytes of the file itself (compressed, if it is) consumed so far: progress against
    /// the file's size.
    pub consumed: Arc<AtomicU64>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("consumed", &self.consumed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// Opens `path` (gzip is recognised by its content, not its name) positioned at byte
/// `offset` of the decompressed content.
pub fn open(path: &Path, offset: u64) -> anyhow::Result<Input> {
    let failed = || format!("Failed to read {}", path.display());
    let mut file = File::open(path).with_context(failed)?;
    let mut magic = [0u8; 2];
    let gzip = file.read_exact(&mut magic).is_ok() && magic == GZIP_MAGIC;
    file.rewind().with_context(failed)?;
    let consumed = Arc::new(AtomicU64::new(0));
    let reader: Box<dyn BufRead + Send> = if gzip {
        let counted = Counted {
            inner: file,
            count: Arc::clone(&consumed),
        };
        let mut reader = BufReader::with_capacity(
            BUFFER_BYTES,
            MultiGzDecoder::new(BufReader::with_capacity(BUFFER_BYTES, counted)),
        );
        // A compressed stream cannot be sought: what the checkpoint covers is read again
        // and dropped, which costs decompression only.
        let skipped =
            io::copy(&mut (&mut reader).take(offset), &mut io::sink()).with_context(failed)?;
        anyhow::ensure!(
            skipped == offset,
            "{} is shorter than its checkpoint says ({skipped} of {offset} bytes)",
            path.display()
        );
        Box::new(reader)
    } else {
        file.seek(SeekFrom::Start(offset)).with_context(failed)?;
        consumed.store(offset, Ordering::Relaxed);
        let counted = Counted {
            inner: file,
            count: Arc::clone(&consumed),
        };
        Box::new(BufReader::with_capacity(BUFFER_BYTES, counted))
    };
    Ok(Input { reader, consumed })
}

/// A file being written, compressed when its name ends in `.gz`.
#[derive(Debug)]
pub enum Output {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Output {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file =
            File::create(path).with_context(|| format!("Failed to create {}", path.display()))?;
        let buffered = BufWriter::with_capacity(BUFFER_BYTES, file);
        let gzip = path.extension().is_some_and(|extension| extension == "gz");
        Ok(if gzip {
            Self::Gzip(GzEncoder::new(buffered, Compression::fast()))
        } else {
            Self::Plain(buffered)
        })
    }

    /// Writes out what is buffered and the end of the compressed stream; dropping an output
    /// without this loses the error, and possibly the data.
    pub fn finish(self) -> io::Result<()> {
        let buffered = match self {
            Self::Plain(buffered) => buffered,
            Self::Gzip(encoder) => encoder.finish()?,
        };
        buffered
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(writer) => writer.write(buf),
            Self::Gzip(writer) => writer.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(writer) => writer.flush(),
            Self::Gzip(writer) => writer.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_name_before_gz() {
        assert_eq!(
            Format::of_path(Path::new("a/usage_events.csv.gz")),
            Some(Format::Csv)
        );
        assert_eq!(
            Format::of_path(Path::new("surveys.NDJSON")),
            Some(Format::Jsonl)
        );
        assert_eq!(Format::of_path(Path::new("surveys.txt")), None);
    }

    #[test]
    fn a_compressed_input_opens_at_an_offset_of_its_content() {
        let directory =
            std::env::temp_dir().join(format!("rescue-format-{}-{}", std::process::id(), line!()));
        std::fs::create_dir_all(&directory).expect("directory");
        for name in ["lines.txt", "lines.txt.gz"] {
            let path = directory.join(name);
            let mut output = Output::create(&path).expect("create");
            output.write_all(b"first\nsecond\nthird\n").expect("write");
            output.finish().expect("finish");
            let mut rest = String::new();
            open(&path, 6)
                .expect("open")
                .reader
                .read_to_string(&mut rest)
                .expect("read");
            assert_eq!(rest, "second\nthird\n", "{name}");
        }
        std::fs::remove_dir_all(&directory).ok();
    }
}
