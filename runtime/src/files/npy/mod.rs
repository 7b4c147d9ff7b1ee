//! Reading NumPy [`.npy`](https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html)
//! array files.
//!
//! The format:
//!
//! - 6 bytes: the magic string `\x93NUMPY`;
//! - 2 bytes: the format version, major then minor: 1.0, 2.0 or 3.0;
//! - the header length `N`: a little-endian `u16` in version 1.0, a `u32` in 2.0 and 3.0;
//! - `N` bytes: the header, a Python dict literal such as
//!   `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`, padded with spaces and ended
//!   by a newline. It is Latin-1 text in versions 1.0 and 2.0 and UTF-8 in 3.0;
//! - the rest of the file: the values, `product(shape)` of them, in the byte order and type that
//!   `descr` gives, in row-major (C) order, or column-major when `fortran_order` is `True`.
//!
//! [`read_npy`] and [`parse_npy`] return an [`Array`]: the shape and the values converted to `f64`
//! in row-major order (a Fortran-ordered file is transposed on reading). Supported dtypes are
//! floats (`f2`, `f4`, `f8`), signed and unsigned integers of 1, 2, 4 and 8 bytes (an 8-byte
//! integer beyond ±2^53 is rounded to the nearest `f64`) and booleans (`b1`: 0 or 1), each in
//! either byte order. Object arrays, structured (record) dtypes, strings, complex numbers, dates
//! and extended-precision floats are rejected.
//!
//! The reader is strict: the header is parsed by a small parser of Python literals of this module
//! (strings, integers, `True`/`False`/`None`, tuples, lists and dicts), must be a dict with exactly
//! the keys `descr`, `fortran_order` and `shape`, each given once, and the data must have exactly
//! the length that the shape and dtype call for. Every error names the file and what is wrong with
//! it ([`NpyError`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An array read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// The dimensions; `[]` for a scalar (one value).
    pub shape: Vec<usize>,
    /// The values in row-major order: as many as the product of `shape`.
    pub values: Vec<f64>,
}

/// The magic string every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// An error reading a `.npy` file: the file it concerns and what is wrong.
#[derive(Debug)]
pub struct NpyError {
    file: String,
    kind: Box<ErrorKind>,
}

/// What is wrong; see [`NpyError`]. Byte positions count from the start of the file.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading the file failed.
    Io { path: PathBuf, source: io::Error },
    /// The file does not start with [`MAGIC`]; `found` is what it starts with (up to 6 bytes).
    BadMagic { found: Vec<u8> },
    /// The file ends (after `len` bytes) before the end of `part`, which needs `needed` bytes.
    Truncated { part: &'static str, needed: u64, len: usize },
    /// A format version other than 1.0, 2.0 and 3.0.
    UnsupportedVersion { major: u8, minor: u8 },
    /// A version 3.0 header that is not valid UTF-8: the first bad byte is at `position`.
    HeaderNotUtf8 { position: usize },
    /// The header is not a Python literal (as far as this reader understands them): the problem is
    /// at `position`.
    HeaderSyntax { position: usize, message: String },
    /// The header is a Python literal but not a dict: `found` says what it is.
    HeaderNotDict { found: String },
    /// The header dict lacks one of `descr`, `fortran_order`, `shape`.
    MissingKey { key: &'static str },
    /// The header dict has a key other than `descr`, `fortran_order`, `shape` (`key` is its repr).
    UnknownKey { key: String },
    /// The header dict gives a key twice.
    DuplicateKey { key: String },
    /// The value of a header key has the wrong type or is out of range: `found` is its repr.
    InvalidValue { key: &'static str, expected: &'static str, found: String },
    /// `descr` is a dtype this reader does not convert, or not a dtype at all; `reason` says which.
    UnsupportedDType { descr: String, reason: String },
    /// The data after the header is not `expected` bytes long, as `shape` and `descr` require.
    DataLength { expected: u128, shape: Vec<usize>, descr: String, found: usize },
}

impl NpyError {
    fn new(file: &str, kind: ErrorKind) -> NpyError {
        NpyError { file: file.to_string(), kind: Box::new(kind) }
    }

    /// The file concerned: the path given to [`read_npy`] or the name given to [`parse_npy`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

/// A shape as Python writes it: `()`, `(3,)`, `(3, 4)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

impl fmt::Display for NpyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        match &*self.kind {
            ErrorKind::Io { path, source } => {
                if path.display().to_string() == self.file {
                    write!(f, "cannot read: {source}")
                } else {
                    write!(f, "cannot read {}: {source}", path.display())
                }
            }
            ErrorKind::BadMagic { found } if found.is_empty() => write!(f, "not a .npy file: it is empty"),
            ErrorKind::BadMagic { found } => write!(
                f,
                "not a .npy file: it starts with b\"{}\" instead of the magic string b\"\\x93NUMPY\"",
                found.escape_ascii()
            ),
            ErrorKind::Truncated { part, needed, len } => {
                write!(
                    f,
                    "truncated .npy file: it ends after {len} bytes, inside the {part} (which ends at byte {needed})"
                )
            }
            ErrorKind::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported .npy format version {major}.{minor} (only 1.0, 2.0 and 3.0 are supported)")
            }
            ErrorKind::HeaderNotUtf8 { position } => {
                write!(f, "the header of a version 3.0 file must be UTF-8, but byte {position} is not")
            }
            ErrorKind::HeaderSyntax { position, message } => {
                write!(f, "the header is not a valid Python literal at byte {position}: {message}")
            }
            ErrorKind::HeaderNotDict { found } => write!(f, "the header is not a dict but {found}"),
            ErrorKind::MissingKey { key } => write!(f, "the header has no '{key}' key"),
            ErrorKind::UnknownKey { key } => write!(
                f,
                "the header has an unexpected key {key} (only 'descr', 'fortran_order' and 'shape' are allowed)"
            ),
            ErrorKind::DuplicateKey { key } => write!(f, "the header gives the key {key} twice"),
            ErrorKind::InvalidValue { key, expected, found } => {
                write!(f, "the header's '{key}' must be {expected}, not {found}")
            }
            ErrorKind::UnsupportedDType { descr, reason } => write!(
                f,
                "unsupported dtype {descr}: {reason} (supported: f2, f4, f8, i1, i2, i4, i8, u1, u2, u4, u8 and b1, in either byte order)"
            ),
            ErrorKind::DataLength { expected, shape, descr, found } => write!(
                f,
                "data length mismatch: expected {expected} bytes for shape {} of dtype '{descr}', found {found}",
                shape_text(shape)
            ),
        }
    }
}

impl std::error::Error for NpyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Read the `.npy` file at `path`.
pub fn read_npy(path: &Path) -> Result<Array, NpyError> {
    let name = path.display().to_string();
    let bytes = crate::files::input::read(path)
        .map_err(|source| NpyError::new(&name, ErrorKind::Io { path: path.to_path_buf(), source }))?;
    parse_npy(&name, &bytes)
}

/// Parse the contents of a `.npy` file; `name` is the file's name, used in error messages.
pub fn parse_npy(name: &str, bytes: &[u8]) -> Result<Array, NpyError> {
    let err = |kind| NpyError::new(name, kind);
    let truncated = |part, needed: usize| err(ErrorKind::Truncated { part, needed: needed as u64, len: bytes.len() });

    // Magic string and version.
    let prefix = &bytes[..bytes.len().min(MAGIC.len())];
    if prefix != &MAGIC[..prefix.len()] || bytes.is_empty() {
        return Err(err(ErrorKind::BadMagic { found: prefix.to_vec() }));
    }
    if bytes.len() < 8 {
        return Err(truncated("magic string and version", 8));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_size, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => return Err(err(ErrorKind::UnsupportedVersion { major, minor })),
    };

    // Header.
    let start = 8 + len_size;
    if bytes.len() < start {
        return Err(truncated("header length", start));
    }
    let header_len = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let end = start + header_len;
    if bytes.len() < end {
        return Err(truncated("header", end));
    }
    let header = &bytes[start..end];
    if utf8 {
        if let Err(e) = std::str::from_utf8(header) {
            return Err(err(ErrorKind::HeaderNotUtf8 { position: start + e.valid_up_to() }));
        }
    }
    let literal = literal::parse(header, utf8)
        .map_err(|e| err(ErrorKind::HeaderSyntax { position: start + e.position, message: e.message }))?;
    let Header { dtype, descr, fortran_order, shape } = Header::from_literal(literal).map_err(err)?;

    // Data.
    let data = &bytes[end..];
    let count = shape.iter().try_fold(1u128, |n, &d| n.checked_mul(d as u128));
    let expected = count.and_then(|n| n.checked_mul(dtype.size as u128));
    let Some(expected) = expected else {
        return Err(err(ErrorKind::InvalidValue {
            key: "shape",
            expected: "a shape with fewer than 2^128 bytes of data",
            found: shape_text(&shape),
        }));
    };
    if expected != data.len() as u128 {
        return Err(err(ErrorKind::DataLength { expected, shape, descr, found: data.len() }));
    }
    let values = dtype.decode(data);
    let values = if fortran_order { fortran_to_row_major(values, &shape) } else { values };
    Ok(Array { shape, values })
}

/// The element type of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    UInt,
    Bool,
}

#[derive(Clone, Copy, Debug)]
struct DType {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl DType {
    /// The dtype a simple `descr` string such as `'<f8'` names; `Err` says why it is not supported.
    fn parse(descr: &str) -> Result<DType, String> {
        let native_big = cfg!(target_endian = "big");
        let (big_endian, rest) = match descr.as_bytes().first() {
            Some(b'<') => (false, &descr[1..]),
            Some(b'>') => (true, &descr[1..]),
            Some(b'=' | b'|') => (native_big, &descr[1..]),
            _ => (native_big, descr),
        };
        let mut chars = rest.chars();
        let Some(letter) = chars.next() else { return Err("not a dtype".into()) };
        let digits = chars.as_str();
        let size: Option<usize> =
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && digits.len() < 6 {
                digits.parse().ok()
            } else {
                None
            };
        let unsupported = |what: &str| Err(format!("{what} are not supported"));
        let kind = match letter {
            'f' => Kind::Float,
            'i' => Kind::Int,
            'u' => Kind::UInt,
            'b' => Kind::Bool,
            'O' => return unsupported("object arrays (Python objects, readable only with pickle)"),
            'U' => return unsupported("unicode string arrays"),
            'S' | 'a' => return unsupported("byte string arrays"),
            'V' => return unsupported("void (raw bytes) arrays"),
            'c' => return unsupported("complex numbers"),
            'M' => return unsupported("datetimes"),
            'm' => return unsupported("timedeltas"),
            _ => return Err("not a dtype this reader knows".into()),
        };
        let ok = match (kind, size) {
            (Kind::Float, Some(2 | 4 | 8)) | (Kind::Int | Kind::UInt, Some(1 | 2 | 4 | 8)) | (Kind::Bool, Some(1)) => {
                true
            }
            (Kind::Float, Some(10 | 12 | 16)) => return unsupported("extended-precision floats (long double)"),
            _ => false,
        };
        if !ok {
            return Err("not a dtype this reader knows".into());
        }
        Ok(DType { kind, size: size.unwrap_or(0), big_endian })
    }

    /// The values stored in `data`, whose length is a multiple of the size.
    fn decode(self, data: &[u8]) -> Vec<f64> {
        data.chunks_exact(self.size)
            .map(|chunk| {
                let mut b = [0u8; 8];
                b[..self.size].copy_from_slice(chunk);
                if self.big_endian {
                    b[..self.size].reverse();
                }
                // `b` now holds the value little-endian in its first `size` bytes.
                match (self.kind, self.size) {
                    (Kind::Float, 2) => half::f16::from_le_bytes([b[0], b[1]]).to_f64(),
                    (Kind::Float, 4) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                    (Kind::Float, _) => f64::from_le_bytes(b),
                    (Kind::Int, 1) => b[0] as i8 as f64,
                    (Kind::Int, 2) => i16::from_le_bytes([b[0], b[1]]) as f64,
                    (Kind::Int, 4) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                    (Kind::Int, _) => i64::from_le_bytes(b) as f64,
                    (Kind::UInt, _) => u64::from_le_bytes(b) as f64,
                    (Kind::Bool, _) => {
                        if b[0] != 0 {
                            1.0
                        } else {
                            0.0
                        }
                    }
                }
            })
            .collect()
    }
}

/// Reorder column-major `values` of `shape` into row-major order.
fn fortran_to_row_major(values: Vec<f64>, shape: &[usize]) -> Vec<f64> {
    if shape.len() < 2 || values.is_empty() {
        return values;
    }
    // Column-major strides, in elements.
    let mut strides = Vec::with_capacity(shape.len());
    let mut stride = 1usize;
    for &d in shape {
        strides.push(stride);
        stride *= d;
    }
    let mut out = Vec::with_capacity(values.len());
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..values.len() {
        out.push(values[offset]);
        // Advance the row-major index, last axis fastest.
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            offset -= strides[axis] * shape[axis];
            index[axis] = 0;
        }
    }
    out
}

/// The checked contents of the header dict.
struct Header {
    dtype: DType,
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl Header {
    fn from_literal(value: literal::Value) -> Result<Header, ErrorKind> {
        use literal::Value;
        let Value::Dict(entries) = value else {
            return Err(ErrorKind::HeaderNotDict { found: value.describe() });
        };
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        for (key, value) in entries {
            let slot = match &key {
                Value::Str(k) if k == "descr" => &mut descr,
                Value::Str(k) if k == "fortran_order" => &mut fortran_order,
                Value::Str(k) if k == "shape" => &mut shape,
                _ => return Err(ErrorKind::UnknownKey { key: key.repr() }),
            };
            if slot.is_some() {
                return Err(ErrorKind::DuplicateKey { key: key.repr() });
            }
            *slot = Some(value);
        }
        let descr = descr.ok_or(ErrorKind::MissingKey { key: "descr" })?;
        let fortran_order = fortran_order.ok_or(ErrorKind::MissingKey { key: "fortran_order" })?;
        let shape = shape.ok_or(ErrorKind::MissingKey { key: "shape" })?;

        let (dtype, descr) = match descr {
            Value::Str(s) => match DType::parse(&s) {
                Ok(dtype) => (dtype, s),
                Err(reason) => return Err(ErrorKind::UnsupportedDType { descr: Value::Str(s).repr(), reason }),
            },
            list @ Value::List(_) => {
                return Err(ErrorKind::UnsupportedDType {
                    descr: list.repr(),
                    reason: "structured dtypes (records with named fields) are not supported".into(),
                })
            }
            other => {
                return Err(ErrorKind::InvalidValue {
                    key: "descr",
                    expected: "a dtype string such as '<f8'",
                    found: other.repr(),
                })
            }
        };
        let fortran_order = match fortran_order {
            Value::Bool(b) => b,
            other => {
                return Err(ErrorKind::InvalidValue {
                    key: "fortran_order",
                    expected: "True or False",
                    found: other.repr(),
                })
            }
        };
        let bad_shape = |v: &Value| ErrorKind::InvalidValue {
            key: "shape",
            expected: "a tuple of non-negative integers",
            found: v.repr(),
        };
        let shape = match &shape {
            Value::Tuple(dims) => dims
                .iter()
                .map(|d| match d {
                    Value::Int(n) => usize::try_from(*n).map_err(|_| bad_shape(&shape)),
                    _ => Err(bad_shape(&shape)),
                })
                .collect::<Result<Vec<usize>, _>>()?,
            _ => return Err(bad_shape(&shape)),
        };
        Ok(Header { dtype, descr, fortran_order, shape })
    }
}

mod literal;
