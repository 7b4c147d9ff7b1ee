//! A reader for numeric CSV files: the data a compiled circuit trains on.
//!
//! The format accepted:
//!
//! - UTF-8 text, with or without a byte-order mark; lines end in `\n` or `\r\n` (a `\r` elsewhere
//!   is an error), and the last line may lack its line ending.
//! - Exactly one header row of column names, then one record per line. Fields are separated by
//!   commas. Column names must be non-empty and distinct.
//! - A field may be enclosed in double quotes, with `""` standing for one quote inside. A quoted
//!   field cannot span lines (no value this reader accepts contains a line break).
//! - Whitespace around a field, and inside its quotes, is ignored.
//! - Every data field is a finite number as Rust's `f64` parser reads it (`3`, `-0.0`, `1.5e-3`,
//!   `.5`, `+2`). Empty fields, text, `nan` and `inf` (or a value that overflows `f64`) are errors.
//! - Blank lines at the end of the file are ignored; a blank line before the last record is an error.
//! - [`read_csv_columns`] and [`parse_csv_columns`] parse the values of selected columns only:
//!   the fields of the others may hold anything (text, `NA`, nothing) and read as NaN. Every record
//!   must still have one field per column.
//!
//! Every error names the file, the 1-based line and, where it concerns one field, the 1-based field
//! number and the column's header name: `data.csv:17:3 (column "bmi"): cannot read "abc" as a number`.

use std::fmt;
use std::path::Path;

/// A table of numbers read from a CSV file.
///
/// Values are stored **column-major**: column `c` occupies `data[c * rows .. (c + 1) * rows]`, so a
/// whole column is one contiguous slice ([`Table::column`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The header names, in file order.
    pub columns: Vec<String>,
    /// The number of data rows (the header not counted).
    pub rows: usize,
    /// Column-major values: `columns.len() * rows` of them.
    data: Vec<f64>,
    /// The name the table was read under (a path or the `name` given to [`parse_csv`]), for messages.
    name: String,
}

impl Table {
    /// The name the table was read under: the path given to [`read_csv`] or the name given to
    /// [`parse_csv`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of columns.
    pub fn ncols(&self) -> usize {
        self.columns.len()
    }

    /// The 0-based index of the column called `name` (exact, case-sensitive match).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The values of the column called `name`, one per row, in file order.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.column_index(name).and_then(|c| self.column_at_checked(c))
    }

    /// The values of column `col` (0-based), one per row. Panics when `col` is out of range.
    pub fn column_at(&self, col: usize) -> &[f64] {
        match self.column_at_checked(col) {
            Some(values) => values,
            None => panic!("column {col} is out of range: {} has {} columns", self.name, self.columns.len()),
        }
    }

    fn column_at_checked(&self, col: usize) -> Option<&[f64]> {
        let start = col.checked_mul(self.rows)?;
        self.data.get(start..start.checked_add(self.rows)?)
    }

    /// The value at `row`, `col` (both 0-based). Panics when either is out of range.
    pub fn get(&self, row: usize, col: usize) -> f64 {
        if row >= self.rows || col >= self.columns.len() {
            panic!(
                "({row}, {col}) is out of range: {} has {} rows and {} columns",
                self.name,
                self.rows,
                self.columns.len()
            );
        }
        self.data[col * self.rows + row]
    }

    /// All values, column-major (see [`Table`]).
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// The indices of the columns from `first` to `last`, both included, in file order.
    ///
    /// Errors (as text, without the table's name) when either column is missing or `last` comes
    /// before `first` in the file.
    pub fn columns_range(&self, first: &str, last: &str) -> Result<Vec<usize>, String> {
        let mut missing: Vec<&str> = [first, last].into_iter().filter(|n| self.column_index(n).is_none()).collect();
        missing.dedup();
        if !missing.is_empty() {
            return Err(self.missing_message(&missing));
        }
        let (a, b) = (self.column_index(first).unwrap(), self.column_index(last).unwrap());
        if b < a {
            return Err(format!(
                "column range \"{first}\" .. \"{last}\" is backwards: \"{last}\" is column {} and \"{first}\" is \
                 column {} of {}",
                b + 1,
                a + 1,
                self.name
            ));
        }
        Ok((a..=b).collect())
    }

    /// The indices of the columns called `names`, in the order given (a name may repeat).
    ///
    /// Errors (as text) listing every name that is not a column, each with a "did you mean" of the
    /// closest header name when one is close enough to be a likely typo.
    pub fn select(&self, names: &[String]) -> Result<Vec<usize>, String> {
        let mut found = Vec::with_capacity(names.len());
        let mut missing: Vec<&str> = Vec::new();
        for n in names {
            match self.column_index(n) {
                Some(i) => found.push(i),
                None if !missing.contains(&n.as_str()) => missing.push(n),
                None => {}
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(self.missing_message(&missing))
        }
    }

    /// `no column "agee" in data.csv (did you mean "age"?)`, or the same for several names.
    fn missing_message(&self, missing: &[&str]) -> String {
        let described: Vec<String> = missing
            .iter()
            .map(|n| match closest(n, &self.columns) {
                Some(c) => format!("\"{n}\" (did you mean \"{c}\"?)"),
                None => format!("\"{n}\""),
            })
            .collect();
        let mut msg = if described.len() == 1 {
            format!("no column {} in {}", described[0], self.name)
        } else {
            format!("no columns {} in {}", described.join(", "), self.name)
        };
        // When nothing was close, say what there is.
        if missing.iter().all(|n| closest(n, &self.columns).is_none()) {
            let n = self.columns.len();
            if n <= 12 {
                let list: Vec<String> = self.columns.iter().map(|c| format!("\"{c}\"")).collect();
                msg.push_str(&format!("; its columns are {}", list.join(", ")));
            } else {
                msg.push_str(&format!(
                    "; its {n} columns run from \"{}\" to \"{}\"",
                    self.columns[0],
                    self.columns[n - 1]
                ));
            }
        }
        msg
    }
}

/// The header name closest to `name`, if close enough to be a likely typo (a name differing only
/// in case always is): [`crate::files::suggest::closest`].
fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    crate::files::suggest::closest(name, candidates.iter().map(String::as_str))
}

/// An error reading a CSV file: where (file, line, field and column name, as far as they apply)
/// and what ([`CsvErrorKind`]).
#[derive(Debug)]
pub struct CsvError {
    /// The path or name the text was read under.
    pub file: String,
    /// The 1-based line, when the error concerns one line.
    pub line: Option<usize>,
    /// The 1-based field number within the line, when the error concerns one field.
    pub field: Option<usize>,
    /// The header name of that field's column, when the field is a data field within the header's
    /// width.
    pub column: Option<String>,
    pub kind: CsvErrorKind,
}

/// What went wrong; see [`CsvError`] for where.
#[derive(Debug)]
#[non_exhaustive]
pub enum CsvErrorKind {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file is not UTF-8 (`line` is where the first bad byte is).
    NotUtf8,
    /// The file is empty or blank: no header and no data.
    Empty,
    /// The header is there but no record follows it.
    NoDataRows,
    /// The first line is blank while more follows.
    BlankHeader,
    /// A carriage return that does not end a line: the file has old Mac (`\r`-only) line endings,
    /// or a stray `\r`.
    LoneCarriageReturn,
    /// A header name is empty (or only whitespace).
    EmptyColumnName,
    /// A header name repeats that of column `first` (1-based).
    DuplicateColumnName { name: String, first: usize },
    /// A quoted field has no closing quote on its line.
    UnterminatedQuote,
    /// Something other than whitespace follows a quoted field's closing quote.
    TextAfterQuote,
    /// A blank line comes before the last record.
    BlankLine,
    /// A record has a different number of fields than the header.
    FieldCount { expected: usize, found: usize },
    /// A data field is empty.
    EmptyField,
    /// A data field is not a number. `text` is the field's content, shortened when long.
    NotANumber { text: String },
    /// A data field reads as `nan`, an infinity or a number beyond the range of `f64`.
    NotFinite { text: String },
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let CsvErrorKind::Io(e) = &self.kind {
            return write!(f, "cannot read {}: {e}", self.file);
        }
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(field) = self.field {
                write!(f, ":{field}")?;
            }
        }
        if let Some(column) = &self.column {
            write!(f, " (column {column:?})")?;
        }
        f.write_str(": ")?;
        match &self.kind {
            CsvErrorKind::Io(_) => unreachable!("handled above"),
            CsvErrorKind::NotUtf8 => f.write_str("the file is not valid UTF-8 text"),
            CsvErrorKind::Empty => f.write_str("no data rows (the file is empty)"),
            CsvErrorKind::NoDataRows => f.write_str("no data rows"),
            CsvErrorKind::BlankHeader => f.write_str("the header line is blank"),
            CsvErrorKind::LoneCarriageReturn => {
                f.write_str("carriage return (\\r) inside a line: lines must end in \\n or \\r\\n")
            }
            CsvErrorKind::EmptyColumnName => f.write_str("empty column name in the header"),
            CsvErrorKind::DuplicateColumnName { name, first } => {
                write!(f, "duplicate column name {name:?} (also column {first})")
            }
            CsvErrorKind::UnterminatedQuote => f.write_str("unterminated quoted field (no closing quote on this line)"),
            CsvErrorKind::TextAfterQuote => f.write_str("unexpected text after the closing quote"),
            CsvErrorKind::BlankLine => {
                f.write_str("blank line between records (only blank lines at the end of the file are ignored)")
            }
            CsvErrorKind::FieldCount { expected, found } => {
                write!(f, "expected {expected} fields as in the header, found {found}")
            }
            CsvErrorKind::EmptyField => f.write_str("empty field"),
            CsvErrorKind::NotANumber { text } => {
                write!(f, "cannot read {text:?} as a number")?;
                if text.contains(';') {
                    f.write_str(" (fields must be separated by ',', not ';')")?;
                } else if text.contains('\t') {
                    f.write_str(" (fields must be separated by ',', not tabs)")?;
                }
                Ok(())
            }
            CsvErrorKind::NotFinite { text } => {
                let lower = text.to_ascii_lowercase();
                if lower.contains("inf") || lower.contains("nan") {
                    write!(f, "value is not finite ({text})")
                } else {
                    write!(f, "value is not finite ({text} is beyond the range of f64)")
                }
            }
        }
    }
}

impl std::error::Error for CsvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            CsvErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads the CSV file at `path` (see the module documentation for the format). Messages name the
/// file as `path` is written.
pub fn read_csv(path: &Path) -> Result<Table, CsvError> {
    read_csv_columns(path, &|columns| vec![true; columns.len()])
}

/// Which columns to parse, given the header's names: one flag per column.
pub type ColumnFilter<'a> = dyn Fn(&[String]) -> Vec<bool> + 'a;

/// Reads the CSV file at `path`, parsing only the values of the columns `parse` selects from the
/// header (the others hold NaN, whatever their text). Messages name the file as `path` is written.
pub fn read_csv_columns(path: &Path, parse: &ColumnFilter<'_>) -> Result<Table, CsvError> {
    let name = path.display().to_string();
    let bytes = crate::files::input::read(path).map_err(|e| CsvError::whole(&name, CsvErrorKind::Io(e)))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            return Err(CsvError { line: Some(line), ..CsvError::whole(&name, CsvErrorKind::NotUtf8) });
        }
    };
    parse_csv_columns(&name, &text, parse)
}

/// Parses CSV `text` (see the module documentation for the format); `name` stands for the file in
/// messages.
pub fn parse_csv(name: &str, text: &str) -> Result<Table, CsvError> {
    parse_csv_columns(name, text, &|columns| vec![true; columns.len()])
}

/// Parses CSV `text` like [`parse_csv`], parsing only the values of the columns `parse` selects
/// from the header; the others hold NaN, whatever their text.
pub fn parse_csv_columns(name: &str, text: &str, parse: &ColumnFilter<'_>) -> Result<Table, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Trailing blank lines (and trailing whitespace of the last line, which would be trimmed from
    // its last field anyway) are ignored.
    let text = text.trim_end();
    if text.is_empty() {
        return Err(CsvError::whole(name, CsvErrorKind::Empty));
    }
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut fields = Fields::new();

    // The header.
    let header_line = lines.next().unwrap_or("");
    if header_line.contains('\r') {
        return Err(CsvError::at(name, 1, None, None, CsvErrorKind::LoneCarriageReturn));
    }
    if header_line.trim().is_empty() {
        return Err(CsvError::at(name, 1, None, None, CsvErrorKind::BlankHeader));
    }
    fields.split(header_line).map_err(|(i, kind)| CsvError::at(name, 1, Some(i + 1), None, kind))?;
    let mut columns: Vec<String> = Vec::with_capacity(fields.len());
    for i in 0..fields.len() {
        let column = fields.get(i).to_string();
        if column.is_empty() {
            return Err(CsvError::at(name, 1, Some(i + 1), None, CsvErrorKind::EmptyColumnName));
        }
        columns.push(column);
    }
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        if let Some(&first) = seen.get(column.as_str()) {
            let kind = CsvErrorKind::DuplicateColumnName { name: column.clone(), first: first + 1 };
            return Err(CsvError::at(name, 1, Some(i + 1), None, kind));
        }
        seen.insert(column, i);
    }
    let ncols = columns.len();
    let mut wanted = parse(&columns);
    wanted.resize(ncols, true);

    // The records, row-major while reading.
    let field_error = |line: usize, i: usize, kind: CsvErrorKind| {
        CsvError::at(name, line, Some(i + 1), columns.get(i).cloned(), kind)
    };
    let line_count = 1 + text.bytes().filter(|&b| b == b'\n').count();
    let mut values: Vec<f64> = Vec::with_capacity(ncols * (line_count - 1));
    let mut rows = 0usize;
    let mut blank: Option<usize> = None;
    for (k, line) in lines.enumerate() {
        let line_no = k + 2;
        if line.contains('\r') {
            return Err(CsvError::at(name, line_no, None, None, CsvErrorKind::LoneCarriageReturn));
        }
        if line.trim().is_empty() {
            blank.get_or_insert(line_no);
            continue;
        }
        if let Some(b) = blank {
            // The text was trimmed at the end, so a record follows this blank line.
            return Err(CsvError::at(name, b, None, None, CsvErrorKind::BlankLine));
        }
        fields.split(line).map_err(|(i, kind)| field_error(line_no, i, kind))?;
        if fields.len() != ncols {
            return Err(CsvError::at(
                name,
                line_no,
                None,
                None,
                CsvErrorKind::FieldCount { expected: ncols, found: fields.len() },
            ));
        }
        for (i, &want) in wanted.iter().enumerate() {
            if !want {
                values.push(f64::NAN);
                continue;
            }
            let text = fields.get(i);
            if text.is_empty() {
                return Err(field_error(line_no, i, CsvErrorKind::EmptyField));
            }
            if let Some(v) = parse_simple(text) {
                values.push(v);
                continue;
            }
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => values.push(v),
                Ok(_) => return Err(field_error(line_no, i, CsvErrorKind::NotFinite { text: shorten(text) })),
                Err(_) => return Err(field_error(line_no, i, CsvErrorKind::NotANumber { text: shorten(text) })),
            }
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(CsvError::whole(name, CsvErrorKind::NoDataRows));
    }

    // Transpose to column-major.
    let mut data = vec![0.0; values.len()];
    for (r, row) in values.chunks_exact(ncols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            data[c * rows + r] = v;
        }
    }
    Ok(Table { columns, rows, data, name: name.to_string() })
}

impl CsvError {
    fn whole(file: &str, kind: CsvErrorKind) -> CsvError {
        CsvError { file: file.to_string(), line: None, field: None, column: None, kind }
    }

    fn at(file: &str, line: usize, field: Option<usize>, column: Option<String>, kind: CsvErrorKind) -> CsvError {
        CsvError { file: file.to_string(), line: Some(line), field, column, kind }
    }
}

/// Splits lines into fields with `csv-core`, the tokenizer of the `csv` crate, fed one line at a
/// time: this module owns the line structure (its checks of blank lines and lone `\r` come first)
/// and `csv-core` splits on commas and undoes quoting (`""` stands for `"`). Two rules of the
/// format are stricter than `csv-core`, which accepts anything: a quoted field must close on its
/// line and be followed by nothing but whitespace, and those are checked on each field's raw text
/// (`csv-core` says how many bytes each field used); and whitespace before an opening quote is
/// skipped before `csv-core` sees the field, so that the quote still opens a quoted field.
struct Fields {
    reader: csv_core::Reader,
    /// The unescaped contents of the line's fields, one after the other.
    out: Vec<u8>,
    /// Each field's content in `out`, surrounding whitespace excluded.
    spans: Vec<(usize, usize)>,
}

impl Fields {
    fn new() -> Fields {
        let mut reader = csv_core::ReaderBuilder::new()
            .delimiter(b',')
            .quote(b'"')
            .double_quote(true)
            .terminator(csv_core::Terminator::Any(b'\n'))
            .build();
        // csv-core drops a byte-order mark on its first read only; the caller has dropped the
        // file's own, so a first read of nothing keeps a second one as text, as on any later line.
        let _ = reader.read_field(b"\n", &mut []);
        Fields { reader, out: Vec::new(), spans: Vec::new() }
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    /// Field `i` of the last line split, trimmed.
    fn get(&self, i: usize) -> &str {
        let (start, end) = self.spans[i];
        // `split` checked that every field is UTF-8.
        std::str::from_utf8(&self.out[start..end]).unwrap_or_default()
    }

    /// Splits one line (no line ending, no `\r`) into fields. An error carries the 0-based index
    /// of the field it concerns.
    fn split(&mut self, line: &str) -> Result<(), (usize, CsvErrorKind)> {
        use csv_core::ReadFieldResult;
        let line = line.as_bytes();
        self.spans.clear();
        // A field's content is never longer than its text.
        self.out.clear();
        self.out.resize(line.len() + 1, 0);
        let (mut pos, mut o) = (0, 0);
        loop {
            let index = self.spans.len();
            while pos < line.len() && is_space(line[pos]) {
                pos += 1;
            }
            let (start, out_start) = (pos, o);
            if pos == line.len() {
                // An empty last field (`1,2,`): end the record without calling csv-core on no
                // input, which would mean the end of the file.
                let (_, _, nout) = self.reader.read_field(b"\n", &mut self.out[o..]);
                self.spans.push((o, o + nout));
                return Ok(());
            }
            let (result, nin, nout) = self.reader.read_field(&line[pos..], &mut self.out[o..]);
            pos += nin;
            o += nout;
            // Ended at a comma, or at the end of the line (csv-core waits for a line ending).
            let last = !matches!(result, ReadFieldResult::Field { record_end: false });
            let raw = &line[start..if last { pos } else { pos - 1 }];
            if raw.first() == Some(&b'"') {
                check_quoted(raw).map_err(|kind| (index, kind))?;
            }
            if matches!(result, ReadFieldResult::InputEmpty) {
                // The line ending this reader was not given ends the record; the field is
                // not quoted or its quote closed, so no content follows.
                let (_, _, nout) = self.reader.read_field(b"\n", &mut self.out[o..]);
                o += nout;
            }
            let text = std::str::from_utf8(&self.out[out_start..o]).map_err(|_| (index, CsvErrorKind::NotUtf8))?;
            let trimmed = text.trim_start();
            let s = out_start + (text.len() - trimmed.len());
            self.spans.push((s, s + trimmed.trim_end().len()));
            if last {
                return Ok(());
            }
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

/// The rules csv-core does not enforce on a quoted field's raw text (`raw` starts with the opening
/// quote and ends before the comma): the quote closes on this line, and only whitespace follows it.
fn check_quoted(raw: &[u8]) -> Result<(), CsvErrorKind> {
    let mut i = 1;
    let close = loop {
        match raw[i..].iter().position(|&b| b == b'"') {
            None => return Err(CsvErrorKind::UnterminatedQuote),
            Some(q) if raw.get(i + q + 1) == Some(&b'"') => i += q + 2,
            Some(q) => break i + q,
        }
    };
    if raw[close + 1..].iter().all(|&b| is_space(b)) {
        Ok(())
    } else {
        Err(CsvErrorKind::TextAfterQuote)
    }
}

/// A fast path for the common short decimals (`13.0`, `-0.25`, `7`): an optional sign, at most 15
/// digits in all with at most one `.` among them, and no exponent. Such a value is `m / 10^k` with
/// `m < 2^53` and `k <= 15`, both exact in `f64`, so one correctly rounded division gives exactly
/// what `str::parse` gives. Anything else returns `None` and goes to `str::parse`.
fn parse_simple(s: &str) -> Option<f64> {
    const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let bytes = s.as_bytes();
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut count = 0usize;
    let mut dot: Option<usize> = None;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
            }
            b'.' if dot.is_none() => dot = Some(count),
            _ => return None,
        }
    }
    if count == 0 || count > 15 {
        return None;
    }
    let decimals = dot.map_or(0, |d| count - d);
    let value = mantissa as f64 / POW10[decimals];
    Some(if negative { -value } else { value })
}

/// A field's text for a message: at most 40 characters, with `…` when cut.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_agrees_with_str_parse() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "+1",
            "13.0",
            "16",
            ".5",
            "5.",
            "-.5",
            "0.1",
            "0.2",
            "0.3",
            "1.7976",
            "123456789012345",
            "12345678901234.5",
            "0.000000000000001",
            "999999999999999",
            "-0.07871",
            "0.038075906433423026",
            "1.5e-3",
            ".",
            "-",
            "+",
            "",
            "1..2",
            "1.2.3",
            "1-2",
            "inf",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A deterministic spread of decimals with up to 15 digits and varied point positions.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = 1 + (x % 15) as usize;
            let m = (x >> 8) % 10u64.pow(digits as u32);
            let mut text = format!("{m:0digits$}");
            let point = ((x >> 4) % (digits as u64 + 1)) as usize;
            text.insert(point, '.');
            if x & 1 == 1 {
                text.insert(0, '-');
            }
            cases.push(text);
        }
        for case in &cases {
            let fast = parse_simple(case);
            match case.parse::<f64>() {
                Ok(v) if fast.is_some() => {
                    let f = fast.unwrap();
                    assert_eq!(f.to_bits(), v.to_bits(), "{case:?}: fast {f:e}, parse {v:e}");
                }
                Ok(_) => {}
                Err(_) => assert_eq!(fast, None, "{case:?}"),
            }
        }
        assert_eq!(parse_simple("13.0"), Some(13.0));
        assert!(parse_simple("-0.0").unwrap().is_sign_negative());
        assert_eq!(parse_simple("1e3"), None);
        assert_eq!(parse_simple("0.038075906433423026"), None); // too many digits: str::parse's job
    }
}
