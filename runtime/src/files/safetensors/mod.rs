//! Reading and writing [safetensors](https://github.com/huggingface/safetensors) checkpoint files.
//!
//! The format:
//!
//! - 8 bytes: `N`, the header length, a little-endian `u64`;
//! - `N` bytes: the header, UTF-8 JSON: an object mapping each tensor name to
//!   `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}`, plus an optional
//!   `"__metadata__"` object of string → string. The header may end in padding spaces;
//! - the rest of the file: the byte buffer. `data_offsets` are relative to its start; the tensors'
//!   ranges must not overlap and must cover the buffer exactly, with no gaps. Values are stored
//!   little-endian, row-major.
//!
//! In memory every tensor is a [`NamedTensor`] holding `f64` values. [`write()`] stores them as
//! `F32` or `F64` ([`DType`]); [`read`] and [`parse`] accept `F64`, `F32`, `F16`, `BF16`, `I64`
//! and `I32` and convert to `f64` (an `I64` beyond ±2^53 is rounded to the nearest `f64`). Other
//! dtypes of the format (`U8`, `BOOL`, …) and unknown dtypes are rejected.
//!
//! The reader is strict: the header is parsed by a small JSON parser of this module that follows
//! RFC 8259 to the letter and also rejects duplicate keys, and every tensor entry must have exactly
//! the three fields `dtype`, `shape` and `data_offsets`. Every error names the file and what is
//! wrong with it ([`SafetensorsError`]).
//!
//! [`write()`] is atomic ([`crate::files::output`]): it writes a temporary file next to the target, flushes
//! it to disk and then renames it over the target, so a crash leaves either the old checkpoint or
//! the new one, never half of one. The files it writes are laid out as the reference implementation lays them out
//! (tensors sorted by name, compact JSON, the header padded with spaces to a multiple of 8 bytes).

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A tensor with its name, as stored in a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    /// The dimensions; `[]` for a scalar (one value).
    pub shape: Vec<usize>,
    /// The values in row-major order: as many as the product of `shape`.
    pub values: Vec<f64>,
}

/// How [`write()`] stores values in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// 32-bit floats: each value is rounded to the nearest `f32` (values beyond its range become
    /// infinities).
    F32,
    /// 64-bit floats: values are stored exactly.
    F64,
}

impl DType {
    fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F64 => "F64",
        }
    }
}

/// The largest header accepted, as in the reference implementation.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// The key of the optional metadata object in the header; no tensor may be called this.
pub const METADATA_KEY: &str = "__metadata__";

/// An error reading or writing a safetensors file: the file it concerns and what is wrong.
#[derive(Debug)]
pub struct SafetensorsError {
    file: String,
    kind: Box<ErrorKind>,
}

/// What is wrong; see [`SafetensorsError`]. Byte positions count from the start of the file.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An I/O operation failed: `action` says which ("read", "create temporary file", ...).
    Io { action: &'static str, path: PathBuf, source: io::Error },
    /// The file is shorter than the 8-byte header length.
    TooShort { len: usize },
    /// The header length exceeds [`MAX_HEADER_LEN`].
    HeaderTooLarge { header_len: u64 },
    /// The header length runs past the end of the file.
    HeaderBeyondFile { header_len: u64, file_len: usize },
    /// The header is not valid UTF-8: the first bad byte is at `position`.
    HeaderNotUtf8 { position: usize },
    /// The header is not valid JSON (or not a JSON object): the problem is at `position`.
    HeaderSyntax { position: usize, message: String },
    /// Two header entries (tensors) have the same name; the second one's key is at `position`.
    DuplicateName { name: String, position: usize },
    /// A tensor entry lacks one of `dtype`, `shape`, `data_offsets`.
    MissingField { tensor: String, field: &'static str },
    /// A header entry is malformed: a field of the wrong type, a shape dimension that is not a
    /// non-negative integer, an unknown field, a metadata value that is not a string, ...
    InvalidEntry { entry: String, message: String },
    /// A dtype the safetensors format does not define.
    UnknownDType { tensor: String, dtype: String },
    /// A dtype of the format that this reader does not convert (`U8`, `BOOL`, ...).
    UnsupportedDType { tensor: String, dtype: String },
    /// `data_offsets` do not span `product(shape) × size of dtype` bytes.
    SizeMismatch { tensor: String, dtype: String, shape: Vec<usize>, expected_bytes: u128, begin: u64, end: u64 },
    /// Two tensors' byte ranges overlap.
    Overlap { tensor: String, begin: u64, end: u64, previous: String, previous_end: u64 },
    /// Bytes between the end of one tensor (or the buffer start) and the next tensor belong to none.
    Gap { tensor: String, begin: u64, expected: u64 },
    /// The tensors end at byte `expected` of the buffer but the buffer has `actual` bytes.
    BufferLength { expected: u64, actual: u64 },
    /// [`write()`]: a tensor's value count differs from the product of its shape.
    ValueCount { tensor: String, shape: Vec<usize>, values: usize },
    /// [`write()`]: a tensor is called [`METADATA_KEY`].
    ReservedName,
    /// [`write()`]: two tensors have the same name.
    DuplicateTensor { name: String },
    /// [`write()`]: two metadata entries have the same key.
    DuplicateMetadataKey { key: String },
}

impl SafetensorsError {
    fn new(file: &str, kind: ErrorKind) -> SafetensorsError {
        SafetensorsError { file: file.to_string(), kind: Box::new(kind) }
    }

    /// The file concerned: the path given to [`read`] or [`write()`], or the name given to [`parse`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

impl fmt::Display for SafetensorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        match &*self.kind {
            ErrorKind::Io { action, path, source } => {
                if path.display().to_string() == self.file {
                    write!(f, "cannot {action}: {source}")
                } else {
                    write!(f, "cannot {action} {}: {source}", path.display())
                }
            }
            ErrorKind::TooShort { len } => write!(
                f,
                "too short to be a safetensors file: {len} bytes, fewer than the 8 of the header length"
            ),
            // A file of anything else (text, an image) ends here: its first 8 bytes read as a
            // huge length. Say what the file is not before the number.
            ErrorKind::HeaderTooLarge { .. } => write!(
                f,
                "not a safetensors file: its first 8 bytes are not a header length (at most {MAX_HEADER_LEN} bytes)"
            ),
            ErrorKind::HeaderBeyondFile { header_len, file_len } => write!(
                f,
                "not a safetensors file: its first 8 bytes, read as the header length, give {header_len}, past the end of the file (only {} bytes follow)",
                file_len.saturating_sub(8)
            ),
            ErrorKind::HeaderNotUtf8 { position } => {
                write!(f, "header is not valid UTF-8 at byte {position}")
            }
            ErrorKind::HeaderSyntax { position, message } => {
                write!(f, "header is not valid JSON at byte {position}: {message}")
            }
            ErrorKind::DuplicateName { name, position } => {
                write!(f, "tensor {name:?} appears twice in the header (again at byte {position})")
            }
            ErrorKind::MissingField { tensor, field } => {
                write!(f, "tensor {tensor:?} has no \"{field}\"")
            }
            ErrorKind::InvalidEntry { entry, message } => {
                if entry == METADATA_KEY {
                    write!(f, "\"{METADATA_KEY}\": {message}")
                } else {
                    write!(f, "tensor {entry:?}: {message}")
                }
            }
            ErrorKind::UnknownDType { tensor, dtype } => {
                write!(f, "tensor {tensor:?} has unknown dtype {dtype:?}")
            }
            ErrorKind::UnsupportedDType { tensor, dtype } => write!(
                f,
                "tensor {tensor:?} has dtype {dtype}, which is not supported (only F64, F32, F16, BF16, I64 and I32 are)"
            ),
            ErrorKind::SizeMismatch { tensor, dtype, shape, expected_bytes, begin, end } => write!(
                f,
                "tensor {tensor:?} of dtype {dtype} and shape {} needs {expected_bytes} bytes but its data_offsets [{begin}, {end}] span {}",
                shape_text(shape),
                end - begin
            ),
            ErrorKind::Overlap { tensor, begin, end, previous, previous_end } => write!(
                f,
                "tensor {tensor:?} (data_offsets [{begin}, {end}]) overlaps tensor {previous:?}, which ends at {previous_end}"
            ),
            ErrorKind::Gap { tensor, begin, expected } => {
                if *expected == 0 {
                    write!(f, "the data buffer does not start with a tensor: the first, {tensor:?}, begins at {begin}")
                } else {
                    write!(
                        f,
                        "bytes {expected}..{begin} of the data buffer belong to no tensor (tensor {tensor:?} begins at {begin})"
                    )
                }
            }
            ErrorKind::BufferLength { expected, actual } => write!(
                f,
                "the tensors take {expected} bytes but the data buffer after the header has {actual}"
            ),
            ErrorKind::ValueCount { tensor, shape, values } => {
                let elements: Option<usize> = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                match elements {
                    Some(n) => write!(
                        f,
                        "tensor {tensor:?} has shape {} ({n} element{}) but {values} values",
                        shape_text(shape),
                        if n == 1 { "" } else { "s" }
                    ),
                    None => write!(f, "tensor {tensor:?} has shape {}, too many elements", shape_text(shape)),
                }
            }
            ErrorKind::ReservedName => write!(f, "a tensor cannot be called \"{METADATA_KEY}\""),
            ErrorKind::DuplicateTensor { name } => write!(f, "two tensors are called {name:?}"),
            ErrorKind::DuplicateMetadataKey { key } => write!(f, "metadata key {key:?} is given twice"),
        }
    }
}

impl std::error::Error for SafetensorsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The tensor called `name` in `tensors`, if any.
pub fn find<'a>(tensors: &'a [NamedTensor], name: &str) -> Option<&'a NamedTensor> {
    tensors.iter().find(|t| t.name == name)
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Appends `s` as a JSON string, escaped as serde_json (and so the reference implementation) does.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The serialized file without its data: the header bytes (8-byte length + padded JSON), and the
/// tensors in the order their data follows.
fn build_header<'a>(
    file: &str,
    tensors: &'a [NamedTensor],
    dtype: DType,
    metadata: &[(String, String)],
) -> Result<(Vec<u8>, Vec<&'a NamedTensor>), SafetensorsError> {
    let err = |kind| Err(SafetensorsError::new(file, kind));
    for (i, (key, _)) in metadata.iter().enumerate() {
        if metadata[..i].iter().any(|(k, _)| k == key) {
            return err(ErrorKind::DuplicateMetadataKey { key: key.clone() });
        }
    }
    let mut sorted: Vec<&NamedTensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in sorted.windows(2) {
        if pair[0].name == pair[1].name {
            return err(ErrorKind::DuplicateTensor { name: pair[0].name.clone() });
        }
    }
    let elem_size: u64 = match dtype {
        DType::F32 => 4,
        DType::F64 => 8,
    };

    let mut json = String::from("{");
    if !metadata.is_empty() {
        push_json_string(&mut json, METADATA_KEY);
        json.push_str(":{");
        for (i, (key, value)) in metadata.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            push_json_string(&mut json, key);
            json.push(':');
            push_json_string(&mut json, value);
        }
        json.push('}');
    }
    let mut offset: u64 = 0;
    for (i, t) in sorted.iter().enumerate() {
        if t.name == METADATA_KEY {
            return err(ErrorKind::ReservedName);
        }
        let elements = t.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if elements != Some(t.values.len()) {
            return err(ErrorKind::ValueCount {
                tensor: t.name.clone(),
                shape: t.shape.clone(),
                values: t.values.len(),
            });
        }
        let end = offset + t.values.len() as u64 * elem_size;
        if i > 0 || !metadata.is_empty() {
            json.push(',');
        }
        push_json_string(&mut json, &t.name);
        json.push_str(":{\"dtype\":\"");
        json.push_str(dtype.name());
        json.push_str("\",\"shape\":[");
        let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        json.push_str(&dims.join(","));
        json.push_str(&format!("],\"data_offsets\":[{offset},{end}]}}"));
        offset = end;
    }
    json.push('}');
    while !json.len().is_multiple_of(8) {
        json.push(' ');
    }
    let mut header = Vec::with_capacity(8 + json.len());
    header.extend_from_slice(&(json.len() as u64).to_le_bytes());
    header.extend_from_slice(json.as_bytes());
    Ok((header, sorted))
}

/// The bytes of a safetensors file holding `tensors` (stored as `dtype`) and `metadata`, exactly as
/// [`write()`] writes them. `name` is used in error messages.
pub fn serialize(
    name: &str,
    tensors: &[NamedTensor],
    dtype: DType,
    metadata: &[(String, String)],
) -> Result<Vec<u8>, SafetensorsError> {
    let (mut bytes, sorted) = build_header(name, tensors, dtype, metadata)?;
    for t in sorted {
        // Writing into a Vec cannot fail.
        let _ = write_values(&mut bytes, &t.values, dtype);
    }
    Ok(bytes)
}

fn write_values(out: &mut (impl Write + ?Sized), values: &[f64], dtype: DType) -> io::Result<()> {
    const CHUNK: usize = 8192;
    let mut buf = Vec::with_capacity(CHUNK * 8);
    for chunk in values.chunks(CHUNK) {
        buf.clear();
        match dtype {
            DType::F32 => chunk.iter().for_each(|&v| buf.extend_from_slice(&(v as f32).to_le_bytes())),
            DType::F64 => chunk.iter().for_each(|&v| buf.extend_from_slice(&v.to_le_bytes())),
        }
        out.write_all(&buf)?;
    }
    Ok(())
}

/// Writes `tensors`, stored as `dtype`, and `metadata` (string key → string value, written in the
/// order given; keys must be distinct) to the safetensors file `path`, replacing any file there.
///
/// Tensors are written sorted by name; names must be distinct and none may be `"__metadata__"`;
/// each tensor must have as many values as its shape has elements. Nothing is written when any
/// of this fails.
///
/// The write goes through [`crate::files::output::write_with`]: a regular file is replaced atomically
/// (a temporary file flushed to disk and renamed; removed on any error, `path` left as it was),
/// a device or FIFO is written directly, a symbolic link is written through, `-` is standard
/// output.
pub fn write(
    path: &Path,
    tensors: &[NamedTensor],
    dtype: DType,
    metadata: &[(String, String)],
) -> Result<(), SafetensorsError> {
    let file = path.display().to_string();
    let (header, sorted) = build_header(&file, tensors, dtype, metadata)?;
    crate::files::output::write_with(path, |out| {
        out.write_all(&header)?;
        for t in &sorted {
            write_values(out, &t.values, dtype)?;
        }
        Ok(())
    })
    .map_err(|e| SafetensorsError::new(&file, ErrorKind::Io { action: e.action, path: e.path, source: e.source }))
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Reads the safetensors file at `path`: its tensors, in the order of their data in the file,
/// and its metadata, in header order (empty when the file has none).
#[allow(clippy::type_complexity)]
pub fn read(path: &Path) -> Result<(Vec<NamedTensor>, Vec<(String, String)>), SafetensorsError> {
    let file = path.display().to_string();
    let bytes = crate::files::input::read(path).map_err(|source| {
        SafetensorsError::new(&file, ErrorKind::Io { action: "read", path: path.to_path_buf(), source })
    })?;
    parse(&file, &bytes)
}

/// Parses the bytes of a safetensors file, as [`read`] does; `name` stands for the file in errors.
#[allow(clippy::type_complexity)]
pub fn parse(name: &str, bytes: &[u8]) -> Result<(Vec<NamedTensor>, Vec<(String, String)>), SafetensorsError> {
    let fail = |kind| SafetensorsError::new(name, kind);
    if bytes.len() < 8 {
        return Err(fail(ErrorKind::TooShort { len: bytes.len() }));
    }
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if header_len > MAX_HEADER_LEN {
        return Err(fail(ErrorKind::HeaderTooLarge { header_len }));
    }
    if header_len > (bytes.len() - 8) as u64 {
        return Err(fail(ErrorKind::HeaderBeyondFile { header_len, file_len: bytes.len() }));
    }
    let header_end = 8 + header_len as usize;
    let text = std::str::from_utf8(&bytes[8..header_end])
        .map_err(|e| fail(ErrorKind::HeaderNotUtf8 { position: 8 + e.valid_up_to() }))?;
    let entries = json::parse_header(text).map_err(|e| match e {
        json::Error::Syntax { position, message } => fail(ErrorKind::HeaderSyntax { position: 8 + position, message }),
        json::Error::DuplicateTopKey { key, position } => {
            fail(ErrorKind::DuplicateName { name: key, position: 8 + position })
        }
    })?;

    let mut metadata = Vec::new();
    let mut infos: Vec<Info> = Vec::new();
    for (key, value) in entries {
        if key == METADATA_KEY {
            metadata = parse_metadata(value)
                .map_err(|message| fail(ErrorKind::InvalidEntry { entry: METADATA_KEY.to_string(), message }))?;
        } else {
            infos.push(parse_info(key, value).map_err(fail)?);
        }
    }

    // Sizes must agree with the offsets, and the offsets must tile the buffer.
    for info in &infos {
        let expected_bytes =
            info.shape.iter().try_fold(info.dtype.size() as u128, |n, &d| n.checked_mul(d as u128)).ok_or_else(
                || {
                    fail(ErrorKind::InvalidEntry {
                        entry: info.name.clone(),
                        message: format!("shape {} has too many elements", shape_text(&info.shape)),
                    })
                },
            )?;
        if expected_bytes != (info.end - info.begin) as u128 {
            return Err(fail(ErrorKind::SizeMismatch {
                tensor: info.name.clone(),
                dtype: info.dtype.name().to_string(),
                shape: info.shape.clone(),
                expected_bytes,
                begin: info.begin,
                end: info.end,
            }));
        }
    }
    infos.sort_by_key(|i| (i.begin, i.end));
    let mut expected: u64 = 0;
    for (i, info) in infos.iter().enumerate() {
        if info.begin < expected {
            let previous = &infos[i - 1];
            return Err(fail(ErrorKind::Overlap {
                tensor: info.name.clone(),
                begin: info.begin,
                end: info.end,
                previous: previous.name.clone(),
                previous_end: previous.end,
            }));
        }
        if info.begin > expected {
            return Err(fail(ErrorKind::Gap { tensor: info.name.clone(), begin: info.begin, expected }));
        }
        expected = info.end;
    }
    let data = &bytes[header_end..];
    if expected != data.len() as u64 {
        return Err(fail(ErrorKind::BufferLength { expected, actual: data.len() as u64 }));
    }

    let tensors = infos
        .into_iter()
        .map(|info| {
            let raw = &data[info.begin as usize..info.end as usize];
            NamedTensor { values: info.dtype.decode(raw), name: info.name, shape: info.shape }
        })
        .collect();
    Ok((tensors, metadata))
}

/// The dtypes the reader converts.
#[derive(Clone, Copy, Debug)]
enum ReadDType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
}

/// The dtypes the safetensors format defines that the reader does not convert.
const UNSUPPORTED_DTYPES: &[&str] = &[
    "BOOL", "U8", "I8", "U16", "I16", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
];

impl ReadDType {
    fn from_name(name: &str) -> Option<ReadDType> {
        Some(match name {
            "F64" => ReadDType::F64,
            "F32" => ReadDType::F32,
            "F16" => ReadDType::F16,
            "BF16" => ReadDType::BF16,
            "I64" => ReadDType::I64,
            "I32" => ReadDType::I32,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ReadDType::F64 => "F64",
            ReadDType::F32 => "F32",
            ReadDType::F16 => "F16",
            ReadDType::BF16 => "BF16",
            ReadDType::I64 => "I64",
            ReadDType::I32 => "I32",
        }
    }

    fn size(self) -> usize {
        match self {
            ReadDType::F64 | ReadDType::I64 => 8,
            ReadDType::F32 | ReadDType::I32 => 4,
            ReadDType::F16 | ReadDType::BF16 => 2,
        }
    }

    fn decode(self, raw: &[u8]) -> Vec<f64> {
        let size = self.size();
        raw.chunks_exact(size)
            .map(|b| match self {
                ReadDType::F64 => f64::from_le_bytes(b.try_into().unwrap()),
                ReadDType::F32 => f32::from_le_bytes(b.try_into().unwrap()) as f64,
                ReadDType::F16 => half::f16::from_le_bytes(b.try_into().unwrap()).to_f64(),
                ReadDType::BF16 => half::bf16::from_le_bytes(b.try_into().unwrap()).to_f64(),
                ReadDType::I64 => i64::from_le_bytes(b.try_into().unwrap()) as f64,
                ReadDType::I32 => i32::from_le_bytes(b.try_into().unwrap()) as f64,
            })
            .collect()
    }
}

/// One tensor entry of the header, checked on its own.
struct Info {
    name: String,
    dtype: ReadDType,
    shape: Vec<usize>,
    begin: u64,
    end: u64,
}

fn parse_metadata(value: json::Value) -> Result<Vec<(String, String)>, String> {
    match value {
        json::Value::Object(members) => members
            .into_iter()
            .map(|(k, v)| match v {
                json::Value::String(s) => Ok((k, s)),
                other => Err(format!("the value of {k:?} must be a string, not {}", other.describe())),
            })
            .collect(),
        other => Err(format!("must be an object of strings, not {}", other.describe())),
    }
}

/// A non-negative integer that fits a `u64`, from a JSON number's text.
fn to_u64(v: &json::Value) -> Result<u64, String> {
    match v {
        json::Value::Number(text) => {
            if text.starts_with('-') {
                // "-0" is not a valid size either: it reads as a float in most JSON libraries.
                return Err(format!("{text} is negative"));
            }
            if text.contains(['.', 'e', 'E']) {
                return Err(format!("{text} is not an integer"));
            }
            text.parse::<u64>().map_err(|_| format!("{text} is too large"))
        }
        other => Err(format!("expected a non-negative integer, found {}", other.describe())),
    }
}

fn parse_info(name: String, value: json::Value) -> Result<Info, ErrorKind> {
    let invalid = |name: &str, message: String| ErrorKind::InvalidEntry { entry: name.to_string(), message };
    let members = match value {
        json::Value::Object(m) => m,
        other => {
            return Err(invalid(
                &name,
                format!("must be an object with dtype, shape and data_offsets, not {}", other.describe()),
            ))
        }
    };
    let (mut dtype, mut shape, mut offsets) = (None, None, None);
    for (key, v) in members {
        match key.as_str() {
            "dtype" => dtype = Some(v),
            "shape" => shape = Some(v),
            "data_offsets" => offsets = Some(v),
            _ => return Err(invalid(&name, format!("unknown field {key:?}"))),
        }
    }
    let missing = |field| ErrorKind::MissingField { tensor: name.clone(), field };
    let dtype = dtype.ok_or_else(|| missing("dtype"))?;
    let shape = shape.ok_or_else(|| missing("shape"))?;
    let offsets = offsets.ok_or_else(|| missing("data_offsets"))?;

    let dtype = match dtype {
        json::Value::String(s) => match ReadDType::from_name(&s) {
            Some(d) => d,
            None if UNSUPPORTED_DTYPES.contains(&s.as_str()) => {
                return Err(ErrorKind::UnsupportedDType { tensor: name, dtype: s })
            }
            None => return Err(ErrorKind::UnknownDType { tensor: name, dtype: s }),
        },
        other => return Err(invalid(&name, format!("dtype must be a string, not {}", other.describe()))),
    };
    let shape = match shape {
        json::Value::Array(dims) => dims
            .iter()
            .enumerate()
            .map(|(i, d)| {
                to_u64(d)
                    .and_then(|d| usize::try_from(d).map_err(|_| format!("{d} is too large")))
                    .map_err(|m| invalid(&name, format!("shape[{i}]: {m}")))
            })
            .collect::<Result<Vec<usize>, ErrorKind>>()?,
        other => return Err(invalid(&name, format!("shape must be an array, not {}", other.describe()))),
    };
    let (begin, end) = match offsets {
        json::Value::Array(pair) if pair.len() == 2 => {
            let begin = to_u64(&pair[0]).map_err(|m| invalid(&name, format!("data_offsets[0]: {m}")))?;
            let end = to_u64(&pair[1]).map_err(|m| invalid(&name, format!("data_offsets[1]: {m}")))?;
            (begin, end)
        }
        other => {
            return Err(invalid(
                &name,
                format!("data_offsets must be an array of two integers, not {}", other.describe()),
            ))
        }
    };
    if end < begin {
        return Err(invalid(&name, format!("data_offsets [{begin}, {end}] end before they begin")));
    }
    Ok(Info { name, dtype, shape, begin, end })
}

mod json;
