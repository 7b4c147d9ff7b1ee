//! A strict JSON parser (RFC 8259) for the header, with byte positions in its errors.

/// A JSON value. Numbers keep their text: the header only needs non-negative integers, and
/// callers report anything else as it was written.
#[derive(Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in document order; keys are distinct.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// What the value is, for messages: `a string`, `the number 2.5`, ...
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".to_string(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Number(n) => format!("the number {n}"),
            Value::String(s) => format!("the string {s:?}"),
            Value::Array(_) => "an array".to_string(),
            Value::Object(_) => "an object".to_string(),
        }
    }
}

#[derive(Debug)]
pub enum Error {
    Syntax {
        position: usize,
        message: String,
    },
    /// A key repeated in the top-level object.
    DuplicateTopKey {
        key: String,
        position: usize,
    },
}

/// Deeper nesting than this is an error rather than a risk to the stack.
const MAX_DEPTH: usize = 64;

/// Parses `text`, which must be one JSON object (surrounded by whitespace at most): its members
/// in order.
pub fn parse_header(text: &str) -> Result<Vec<(String, Value)>, Error> {
    let mut p = Parser { bytes: text.as_bytes(), pos: 0 };
    p.skip_ws();
    if p.peek() != Some(b'{') {
        return Err(p.error(format!("the header must be a JSON object, but it starts with {}", p.found())));
    }
    let members = p.object(0, true)?;
    p.skip_ws();
    if p.pos < p.bytes.len() {
        return Err(p.error(format!("unexpected {} after the header object", p.found())));
    }
    Ok(members)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: String) -> Error {
        Error::Syntax { position: self.pos, message }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// The text at the current position, for messages.
    fn found(&self) -> String {
        let rest = &self.bytes[self.pos..];
        let Some(&b) = rest.first() else {
            return "the end of the header".to_string();
        };
        if b.is_ascii_alphabetic() {
            let word: String = rest.iter().take_while(|c| c.is_ascii_alphanumeric()).map(|&c| c as char).collect();
            return format!("`{word}`");
        }
        // A whole character: the header is valid UTF-8 and `pos` is at a character boundary.
        let s = std::str::from_utf8(rest).unwrap_or("?");
        format!("{:?}", s.chars().next().unwrap_or('?'))
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), Error> {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, found {}", self.found())))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        self.skip_ws();
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        match self.peek() {
            Some(b'{') => Ok(Value::Object(self.object(depth, false)?)),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b) if b.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    self.pos += 1;
                }
                match &self.bytes[start..self.pos] {
                    b"true" => Ok(Value::Bool(true)),
                    b"false" => Ok(Value::Bool(false)),
                    b"null" => Ok(Value::Null),
                    word => {
                        let word = String::from_utf8_lossy(word).into_owned();
                        self.pos = start;
                        Err(self.error(format!("`{word}` is not a JSON value")))
                    }
                }
            }
            _ => Err(self.error(format!("expected a value, found {}", self.found()))),
        }
    }

    /// An object; at the top level a repeated key is reported as such.
    fn object(&mut self, depth: usize, top: bool) -> Result<Vec<(String, Value)>, Error> {
        self.pos += 1; // '{'
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(members);
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error(format!("expected a string key, found {}", self.found())));
            }
            let key_pos = self.pos;
            let key = self.string()?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err(if top {
                    Error::DuplicateTopKey { key, position: key_pos }
                } else {
                    Error::Syntax { position: key_pos, message: format!("duplicate key {key:?}") }
                });
            }
            self.expect(b':', "':' after an object key")?;
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(members);
                }
                _ => return Err(self.error(format!("expected ',' or '}}' in an object, found {}", self.found()))),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, Error> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error(format!("expected ',' or ']' in an array, found {}", self.found()))),
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos - s
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.error("a number cannot have a leading zero".to_string()));
                }
            }
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.error(format!("expected a digit, found {}", self.found()))),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.error(format!("expected a digit after '.', found {}", self.found())));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.error(format!("expected a digit in the exponent, found {}", self.found())));
            }
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).expect("ASCII");
        Ok(Value::Number(text.to_string()))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self.peek().and_then(|c| (c as char).to_digit(16));
            match d {
                Some(d) => {
                    v = v * 16 + d;
                    self.pos += 1;
                }
                None => return Err(self.error(format!("expected 4 hex digits after \\u, found {}", self.found()))),
            }
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, Error> {
        self.pos += 1; // '"'
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while self.peek().is_some_and(|c| c != b'"' && c != b'\\' && c >= 0x20) {
                self.pos += 1;
            }
            // The header is valid UTF-8 and the run stops at an ASCII byte.
            out.push_str(std::str::from_utf8(&self.bytes[run_start..self.pos]).expect("UTF-8"));
            match self.peek() {
                None => return Err(self.error("unterminated string".to_string())),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escape_start = self.pos;
                    self.pos += 1;
                    let c = self.peek();
                    self.pos += 1;
                    match c {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{08}'),
                        Some(b'f') => out.push('\u{0c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let first = self.hex4()?;
                            let code = match first {
                                0xD800..=0xDBFF => {
                                    if self.bytes[self.pos..].starts_with(b"\\u") {
                                        self.pos += 2;
                                        let second = self.hex4()?;
                                        if !(0xDC00..=0xDFFF).contains(&second) {
                                            self.pos = escape_start;
                                            return Err(self.error(
                                                "a high surrogate \\u escape must be followed by a low one".to_string(),
                                            ));
                                        }
                                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                                    } else {
                                        self.pos = escape_start;
                                        return Err(self.error("unpaired surrogate in a \\u escape".to_string()));
                                    }
                                }
                                0xDC00..=0xDFFF => {
                                    self.pos = escape_start;
                                    return Err(self.error("unpaired surrogate in a \\u escape".to_string()));
                                }
                                c => c,
                            };
                            out.push(char::from_u32(code).expect("a scalar value"));
                        }
                        _ => {
                            self.pos = escape_start + 1;
                            let message = format!("invalid escape: backslash followed by {}", self.found());
                            self.pos = escape_start;
                            return Err(self.error(message));
                        }
                    }
                }
                Some(c) => {
                    return Err(self.error(format!("control character U+{c:04X} inside a string must be escaped")));
                }
            }
        }
    }
}
