//! A parser of the Python literals that `.npy` headers are written in: strings (single- or
//! double-quoted, with escapes), integers (with an optional Python 2 `L` suffix, as old files have),
//! `True`, `False`, `None`, tuples, lists and dicts. Whitespace may surround tokens; nothing but
//! whitespace may follow the literal.

use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// What kind of value this is, with an article: "a tuple", "an integer", ...
    pub fn describe(&self) -> String {
        match self {
            Value::Str(_) => "a string".into(),
            Value::Int(_) => "an integer".into(),
            Value::Bool(_) => "a bool".into(),
            Value::None => "None".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::List(_) => "a list".into(),
            Value::Dict(_) => "a dict".into(),
        }
    }

    /// The value as Python's `repr` writes it, cut short if very long.
    pub fn repr(&self) -> String {
        let mut s = String::new();
        self.write_repr(&mut s);
        if s.chars().count() > 80 {
            s = s.chars().take(77).collect::<String>() + "...";
        }
        s
    }

    fn write_repr(&self, out: &mut String) {
        let items = |out: &mut String, items: &[Value]| {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                v.write_repr(out);
            }
        };
        match self {
            Value::Str(s) => {
                let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
                out.push(quote);
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if c == quote => {
                            out.push('\\');
                            out.push(c);
                        }
                        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                            let _ = write!(out, "\\x{:02x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push(quote);
            }
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Value::None => out.push_str("None"),
            Value::Tuple(v) => {
                out.push('(');
                items(out, v);
                if v.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            Value::List(v) => {
                out.push('[');
                items(out, v);
                out.push(']');
            }
            Value::Dict(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
        }
    }
}

/// A syntax error at byte `position` of the text.
#[derive(Debug)]
pub struct Error {
    pub position: usize,
    pub message: String,
}

/// Nesting deeper than this is rejected (it never occurs in real headers).
const MAX_DEPTH: usize = 32;

/// Parse `text`: UTF-8 when `utf8` (and already checked to be valid), Latin-1 otherwise.
pub fn parse(text: &[u8], utf8: bool) -> Result<Value, Error> {
    let mut p = Parser { text, pos: 0, utf8 };
    p.skip_space();
    let value = p.value(0)?;
    p.skip_space();
    if p.pos < text.len() {
        return Err(p.error(format!("unexpected {} after the end of the literal", p.describe_here())));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    utf8: bool,
}

impl Parser<'_> {
    fn error(&self, message: String) -> Error {
        Error { position: self.pos, message }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    /// The character at the current position, for messages.
    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of header".into(),
            Some(b) if b.is_ascii_graphic() => format!("character '{}'", b as char),
            Some(b) => format!("byte 0x{b:02x}"),
        }
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        match self.peek() {
            Some(b'{') => self.dict(depth),
            Some(b'(') => self.tuple(depth),
            Some(b'[') => {
                let items = self.sequence(b']', depth)?;
                Ok(Value::List(items))
            }
            Some(b'\'' | b'"') => self.string(),
            Some(b'0'..=b'9' | b'-' | b'+') => self.integer(),
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.name(),
            _ => Err(self.error(format!("expected a value, found {}", self.describe_here()))),
        }
    }

    /// `[` or `(` already peeked: items separated by commas, an optional trailing comma, then
    /// `close`. Returns the items and whether a comma was seen.
    fn items(&mut self, close: u8, depth: usize) -> Result<(Vec<Value>, bool), Error> {
        self.pos += 1;
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            self.skip_space();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, comma));
            }
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    comma = true;
                }
                Some(c) if c == close => {}
                _ => {
                    return Err(self.error(format!(
                        "expected ',' or '{}', found {}",
                        close as char,
                        self.describe_here()
                    )))
                }
            }
        }
    }

    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<Value>, Error> {
        Ok(self.items(close, depth)?.0)
    }

    /// A tuple, or a parenthesized value: `(3)` is the integer 3, as in Python.
    fn tuple(&mut self, depth: usize) -> Result<Value, Error> {
        let (mut items, comma) = self.items(b')', depth)?;
        if items.len() == 1 && !comma {
            return Ok(items.pop().unwrap());
        }
        Ok(Value::Tuple(items))
    }

    fn dict(&mut self, depth: usize) -> Result<Value, Error> {
        self.pos += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_space();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Value::Dict(entries));
            }
            let key_pos = self.pos;
            let key = self.value(depth + 1)?;
            if matches!(key, Value::List(_) | Value::Dict(_)) {
                return Err(Error { position: key_pos, message: format!("{} cannot be a dict key", key.describe()) });
            }
            self.skip_space();
            if self.peek() != Some(b':') {
                return Err(self.error(format!("expected ':' after a dict key, found {}", self.describe_here())));
            }
            self.pos += 1;
            self.skip_space();
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.error(format!("expected ',' or '}}', found {}", self.describe_here()))),
            }
        }
    }

    fn name(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'_' {
                self.pos += 1;
            } else {
                break;
            }
        }
        match &self.text[start..self.pos] {
            b"True" => Ok(Value::Bool(true)),
            b"False" => Ok(Value::Bool(false)),
            b"None" => Ok(Value::None),
            other => Err(Error {
                position: start,
                message: format!(
                    "unexpected name '{}' (only True, False and None are literals)",
                    String::from_utf8_lossy(other)
                ),
            }),
        }
    }

    fn integer(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        let mut negative = false;
        if let Some(sign @ (b'-' | b'+')) = self.peek() {
            negative = sign == b'-';
            self.pos += 1;
            self.skip_space();
        }
        let digits_start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        let digits = &self.text[digits_start..self.pos];
        if digits.is_empty() {
            return Err(self.error(format!("expected digits, found {}", self.describe_here())));
        }
        if digits.len() > 1 && digits[0] == b'0' && digits.iter().any(|&d| d != b'0') {
            return Err(Error { position: digits_start, message: "integers cannot have leading zeros".into() });
        }
        // Python 2 wrote long integers with an `L` suffix.
        if let Some(b'L' | b'l') = self.peek() {
            self.pos += 1;
        }
        if let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' {
                return Err(self
                    .error(format!("unexpected {} in a number (only integers are supported)", self.describe_here())));
            }
        }
        let text = std::str::from_utf8(digits).expect("ASCII digits");
        let magnitude: i128 =
            text.parse().map_err(|_| Error { position: start, message: format!("integer {text} is too large") })?;
        Ok(Value::Int(if negative { -magnitude } else { magnitude }))
    }

    fn string(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        let quote = self.text[self.pos];
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(Error { position: start, message: "unterminated string".into() });
            };
            match b {
                _ if b == quote => {
                    self.pos += 1;
                    return Ok(Value::Str(out));
                }
                b'\n' | b'\r' => return Err(self.error("line break inside a string".into())),
                b'\\' => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                _ if b < 0x80 || !self.utf8 => {
                    // ASCII, or a Latin-1 byte, which is the code point of the same value.
                    out.push(b as char);
                    self.pos += 1;
                }
                _ => {
                    // A UTF-8 sequence; the whole header was checked to be valid UTF-8.
                    let len = match b {
                        0xf0.. => 4,
                        0xe0.. => 3,
                        _ => 2,
                    };
                    let s = std::str::from_utf8(&self.text[self.pos..self.pos + len]).expect("valid UTF-8");
                    out.push_str(s);
                    self.pos += len;
                }
            }
        }
    }

    /// After a backslash inside a string.
    fn escape(&mut self, out: &mut String) -> Result<(), Error> {
        let Some(b) = self.peek() else {
            return Err(self.error("unterminated string".into()));
        };
        self.pos += 1;
        let simple = match b {
            b'\\' => Some('\\'),
            b'\'' => Some('\''),
            b'"' => Some('"'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'0' => Some('\0'),
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            return Ok(());
        }
        let digits = match b {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => {
                // Point at the backslash.
                self.pos -= 2;
                let sequence =
                    if b.is_ascii_graphic() { format!("\\{}", b as char) } else { format!("\\ and byte 0x{b:02x}") };
                return Err(self.error(format!("unsupported escape sequence {sequence}")));
            }
        };
        let hex = self.text.get(self.pos..self.pos + digits).unwrap_or_default();
        let code = std::str::from_utf8(hex)
            .ok()
            .filter(|h| h.len() == digits && h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                self.pos += digits;
                Ok(())
            }
            None => Err(self.error(format!("invalid \\{} escape", b as char))),
        }
    }
}
