//! Lexer: logos tokens plus automatic statement separators.
//!
//! A newline ends a statement (the lexer inserts `;`) when the line's last token can end one
//! (a name, a literal, `)`, `]` or `}`) and the newline is not inside `(…)` or `[…]`. So a
//! statement continues onto the next line after an operator or comma, or inside brackets.
//! Bracket nesting deeper than [`MAX_NESTING`] is an error, so no input can overflow a stack.

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};
use logos::Logos;
use std::fmt;

/// Deepest allowed nesting of brackets.
pub const MAX_NESTING: usize = 128;

#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\f]+")]
#[logos(skip(r"#[^\n]*", allow_greedy = true))]
pub enum Tok {
    #[token("import")]
    Import,
    #[token("as")]
    As,
    #[token("circuit")]
    Circuit,
    #[token("model")]
    Model,
    #[token("data")]
    Data,
    #[token("param")]
    Param,
    #[token("let")]
    Let,
    #[token("return")]
    Return,
    #[token("repeat")]
    Repeat,
    #[token("train")]
    Train,
    #[token("update")]
    Update,
    #[token("init")]
    Init,
    #[token("int")]
    IntType,
    #[token("float")]
    FloatType,

    #[regex(r"[\p{XID_Start}_][\p{XID_Continue}]*", |lex| lex.slice().to_string())]
    Ident(String),
    #[regex(r"[0-9]+", |lex| lex.slice().to_string(), priority = 3)]
    Int(String),
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+", |lex| lex.slice().to_string())]
    Float(String),
    #[regex(r#""[^"\n]*""#, |lex| { let s = lex.slice(); s[1..s.len() - 1].to_string() })]
    Str(String),

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(";")]
    Semi,
    #[token("=")]
    Eq,
    #[token("~")]
    Tilde,
    #[token("->")]
    Arrow,
    #[token("..")]
    DotDot,
    #[token(".")]
    Dot,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("@")]
    At,
    #[token("\n")]
    Newline,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Tok::Ident(s) => return write!(f, "`{s}`"),
            Tok::Int(s) | Tok::Float(s) => return write!(f, "`{s}`"),
            Tok::Str(s) => return write!(f, "\"{s}\""),
            Tok::Semi => return write!(f, "end of statement"),
            Tok::Newline => return write!(f, "newline"),
            other => token_text(other),
        };
        write!(f, "`{s}`")
    }
}

/// The spelling of a fixed token.
pub fn token_text(t: &Tok) -> &'static str {
    match t {
        Tok::Import => "import",
        Tok::As => "as",
        Tok::Circuit => "circuit",
        Tok::Model => "model",
        Tok::Data => "data",
        Tok::Param => "param",
        Tok::Let => "let",
        Tok::Return => "return",
        Tok::Repeat => "repeat",
        Tok::Train => "train",
        Tok::Update => "update",
        Tok::Init => "init",
        Tok::IntType => "int",
        Tok::FloatType => "float",
        Tok::Ident(_) => "identifier",
        Tok::Int(_) => "integer",
        Tok::Float(_) => "number",
        Tok::Str(_) => "string",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::Comma => ",",
        Tok::Colon => ":",
        Tok::Semi => ";",
        Tok::Eq => "=",
        Tok::Tilde => "~",
        Tok::Arrow => "->",
        Tok::DotDot => "..",
        Tok::Dot => ".",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::At => "@",
        Tok::Newline => "newline",
    }
}

/// A token with its byte offsets, as the generated parser wants it.
pub type SpannedTok = (usize, Tok, usize);

/// Lexes a whole file. Lexical errors are collected in `errors`; the bad bytes are skipped.
pub fn lex(file: FileId, src: &str, errors: &mut Vec<Diagnostic>) -> Vec<SpannedTok> {
    let mut out: Vec<SpannedTok> = Vec::new();
    let mut brackets: Vec<(Tok, usize)> = Vec::new();
    let mut lexer = Tok::lexer(src);
    let mut too_deep = false;
    while let Some(res) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(file, range.start, range.end);
        let tok = match res {
            Ok(t) => t,
            Err(()) if src[range.start..].starts_with('"') => {
                // An unterminated string runs to the end of its line: keep it as one token so
                // the brackets around it still match.
                let rest = &src[range.end..];
                let len = rest.find('\n').unwrap_or(rest.len());
                lexer.bump(len);
                let end = range.end + len;
                errors.push(lex_error(src, Span::new(file, range.start, end)));
                out.push((range.start, Tok::Str(src[range.start + 1..end].to_string()), end));
                continue;
            }
            Err(()) => {
                errors.push(lex_error(src, span));
                continue;
            }
        };
        match &tok {
            Tok::Newline => {
                let in_parens = matches!(brackets.last(), Some((Tok::LParen | Tok::LBracket, _)));
                if !in_parens && ends_statement(out.last()) {
                    out.push((range.start, Tok::Semi, range.start));
                }
                continue;
            }
            Tok::LBrace if matches!(out.last(), Some((l, Tok::Semi, r)) if l == r) => {
                // `{` on the line after a header: the inserted `;` was wrong, take it back.
                out.pop();
                brackets.push((tok.clone(), range.start));
            }
            Tok::LParen | Tok::LBracket | Tok::LBrace => {
                brackets.push((tok.clone(), range.start));
                if brackets.len() > MAX_NESTING && !too_deep {
                    too_deep = true;
                    errors.push(
                        Diagnostic::error("E0104", "brackets nested too deeply")
                            .label(span, format!("this is nesting level {}", brackets.len()))
                            .note(format!("circ allows at most {MAX_NESTING} levels of nesting")),
                    );
                }
            }
            Tok::RParen | Tok::RBracket | Tok::RBrace => {
                // Closers are matched leniently; the parser reports mismatches.
                brackets.pop();
            }
            Tok::Int(s) if s.parse::<i64>().is_err() => {
                errors.push(
                    Diagnostic::error("E0103", "integer literal is too large").label(span, "does not fit in 64 bits"),
                );
                out.push((range.start, Tok::Int("0".into()), range.end));
                continue;
            }
            Tok::Float(s) if !s.parse::<f64>().is_ok_and(f64::is_finite) => {
                errors.push(
                    Diagnostic::error("E0103", "number literal is too large")
                        .label(span, "beyond the largest f64 (about 1.8e308): it would be infinite")
                        .help("write a finite number"),
                );
                out.push((range.start, Tok::Float("0.0".into()), range.end));
                continue;
            }
            _ => {}
        }
        out.push((range.start, tok, range.end));
    }
    if ends_statement(out.last()) {
        out.push((src.len(), Tok::Semi, src.len()));
    }
    if too_deep {
        // The parser would only add noise about the same place.
        out.clear();
    }
    out
}

fn ends_statement(last: Option<&SpannedTok>) -> bool {
    matches!(
        last.map(|t| &t.1),
        Some(
            Tok::Ident(_)
                | Tok::Int(_)
                | Tok::Float(_)
                | Tok::Str(_)
                | Tok::RParen
                | Tok::RBracket
                | Tok::RBrace
                | Tok::IntType
                | Tok::FloatType
        )
    )
}

fn lex_error(src: &str, span: Span) -> Diagnostic {
    let text = src.get(span.range()).unwrap_or("");
    if text.starts_with('"') {
        return Diagnostic::error("E0102", "unterminated string literal")
            .label(span, "this string has no closing `\"` on its line")
            .help("strings cannot span lines; close it with `\"`");
    }
    let c = text.chars().next().unwrap_or('?');
    let mut d = Diagnostic::error("E0101", format!("unexpected character `{}`", c.escape_debug()))
        .label(span, "not part of the circ language");
    let hint = match c {
        '^' => Some("for powers, write `pow(x, p)`"),
        '%' => Some("circ has no modulo operator"),
        '\'' => Some("strings use double quotes: \"…\""),
        '<' | '>' | '!' | '&' | '|' => Some("circ has no comparison or boolean operators"),
        _ => None,
    };
    if let Some(h) = hint {
        d = d.help(h);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let toks = lex(FileId(0), src, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        toks.into_iter().map(|(_, t, _)| token_text(&t).to_string()).collect()
    }

    #[test]
    fn newline_ends_statement_after_operand() {
        assert_eq!(
            kinds("let a = b\nlet c = d"),
            ["let", "identifier", "=", "identifier", ";", "let", "identifier", "=", "identifier", ";"]
        );
    }

    #[test]
    fn newline_continues_after_operator_and_inside_parens() {
        assert_eq!(kinds("a +\nb"), ["identifier", "+", "identifier", ";"]);
        assert_eq!(kinds("f(a\n)"), ["identifier", "(", "identifier", ")", ";"]);
        assert_eq!(kinds("{\na\n}"), ["{", "identifier", ";", "}", ";"]);
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        assert_eq!(kinds("a # note\n\n\nb"), ["identifier", ";", "identifier", ";"]);
    }

    #[test]
    fn numbers() {
        assert_eq!(kinds("1 1.5 1e-3 2.0E+4"), ["integer", "number", "number", "number", ";"]);
        assert_eq!(kinds("\"a\" .. \"b\""), ["string", "..", "string", ";"]);
    }

    #[test]
    fn too_deep_nesting_is_one_error() {
        let mut errors = Vec::new();
        let src = "(".repeat(10_000);
        let toks = lex(FileId(0), &src, &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "E0104");
        assert!(toks.is_empty());
    }

    #[test]
    fn bad_characters_are_reported_and_skipped() {
        let mut errors = Vec::new();
        let toks = lex(FileId(0), "a ^ b", &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "E0101");
        assert_eq!(toks.len(), 3);
    }
}
