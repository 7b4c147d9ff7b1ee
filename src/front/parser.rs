//! Parsing one file: lexer → generated LALRPOP parser → AST, with every syntax error turned into a
//! diagnostic. The parser recovers at statement and item boundaries, so one file can report several.

use super::ast::{self, Expr, Module, Stmt, StmtKind};
use super::lexer::{self, token_text, Tok};
use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};
use lalrpop_util::{ErrorRecovery, ParseError};

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, unused_parens, dead_code)]
    grammar,
    "/circ.rs"
);

/// Syntax errors reported per file before giving up.
pub const MAX_SYNTAX_ERRORS: usize = 100;

/// Parses a file. Always returns a module (possibly partial) and the diagnostics found.
pub fn parse(file: FileId, src: &str) -> (Module, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let tokens = lexer::lex(file, src, &mut diags);
    let lexed_ok = diags.is_empty();
    let mut recovered: Vec<ErrorRecovery<usize, Tok, ()>> = Vec::new();
    let result = grammar::ModuleParser::new().parse(file, &mut recovered, tokens);
    let mut syntax: Vec<Diagnostic> = Vec::new();
    for r in recovered {
        syntax.push(parse_error(file, src, r.error));
    }
    let module = match result {
        Ok(m) => m,
        Err(e) => {
            syntax.push(parse_error(file, src, e));
            Module { items: Vec::new() }
        }
    };
    // After a lexical error the parser's complaints are about the same mistake.
    if lexed_ok {
        diags.extend(syntax);
    }
    report_deep_expressions(&module, &mut diags);
    if diags.len() > MAX_SYNTAX_ERRORS {
        diags.truncate(MAX_SYNTAX_ERRORS);
        let last = diags.pop().map(|d| d.note(format!("stopping after {MAX_SYNTAX_ERRORS} syntax errors")));
        diags.extend(last);
    }
    (module, diags)
}

fn parse_error(file: FileId, src: &str, e: ParseError<usize, Tok, ()>) -> Diagnostic {
    match e {
        ParseError::InvalidToken { location } => Diagnostic::error("E0101", "invalid token")
            .label(Span::new(file, location, location + 1), "not part of the circ language"),
        ParseError::UnrecognizedEof { location, expected } => {
            let span = Span::new(file, location, location);
            Diagnostic::error("E0105", "unexpected end of file")
                .label(span, format!("expected {} here", describe_expected(&expected)))
                .help("check for an unclosed `{`, `(` or `[`")
        }
        ParseError::UnrecognizedToken { token: (l, tok, r), expected } => {
            unexpected_token(file, src, l, tok, r, &expected)
        }
        ParseError::ExtraToken { token: (l, tok, r) } => {
            Diagnostic::error("E0106", format!("unexpected {tok}")).label(Span::new(file, l, r), "not expected here")
        }
        ParseError::User { .. } => Diagnostic::error("E0101", "invalid input"),
    }
}

fn unexpected_token(file: FileId, src: &str, l: usize, tok: Tok, r: usize, expected: &[String]) -> Diagnostic {
    // An inserted `;` is zero-width: point at the end of the line it ends instead.
    let (span, found) = if tok == Tok::Semi && l == r {
        let line_start = src[..l].rfind('\n').map_or(0, |i| i + 1);
        let last = src[line_start..l].trim_end();
        let end = line_start + last.len();
        // The line's last character, which may be several bytes long.
        let start = line_start + last.char_indices().last().map_or(0, |(i, _)| i);
        (Span::new(file, start, end), "end of line".to_string())
    } else {
        (Span::new(file, l, r), tok.to_string())
    };
    let mut d = Diagnostic::error("E0106", format!("unexpected {found}"))
        .label(span, format!("expected {}", describe_expected(expected)));
    if tok == Tok::Semi && l == r {
        d = d.help("a line ends a statement after a name, a number or a closing bracket; put an operator at the end of the line to continue it");
    }
    let line_start = src[..l.min(src.len())].rfind('\n').map_or(0, |i| i + 1);
    let starts_line = src[line_start..l.min(src.len())].trim().is_empty() && line_start > 0;
    if starts_line && matches!(tok, Tok::Plus | Tok::Minus | Tok::Star | Tok::Slash | Tok::At | Tok::DotDot) {
        d = d.help(format!(
            "the previous line already ended the statement; to continue it, end that line with `{}` instead",
            token_text(&tok)
        ));
    }
    let is_keyword = token_text(&tok).chars().all(|c| c.is_ascii_lowercase()) && !matches!(tok, Tok::Ident(_));
    if is_keyword && expected.iter().any(|e| e == "IDENT") {
        d = d.help(format!("`{}` is a keyword and cannot be used as a name", token_text(&tok)));
    }
    if matches!(tok, Tok::Eq) && expected.iter().any(|e| e == "\"~\"") {
        d = d.help("bind a value with `let name = …`");
    }
    d
}

/// "`)` or `,`": the parser's expected terminals in the words of the language.
fn describe_expected(expected: &[String]) -> String {
    let mut words: Vec<String> = expected
        .iter()
        .map(|e| match e.as_str() {
            "IDENT" => "a name".to_string(),
            "INT" => "an integer".to_string(),
            "FLOAT" => "a number".to_string(),
            "STR" => "a string".to_string(),
            "\";\"" => "end of statement".to_string(),
            other => format!("`{}`", other.trim_matches('"')),
        })
        .collect();
    words.dedup();
    // Long lists help nobody: say what kind of thing fits.
    if words.len() > 6 {
        let has = |t: &str| expected.iter().any(|e| e.trim_matches('"') == t);
        if has("INT") && has("IDENT") {
            return "an expression".into();
        }
        if has("+") || has("@") {
            let closers: Vec<&str> = [",", ")", "]", ";", "}"].into_iter().filter(|c| has(c)).collect();
            let mut words = vec!["an operator".to_string()];
            words.extend(
                closers.iter().map(|c| if *c == ";" { "end of statement".to_string() } else { format!("`{c}`") }),
            );
            let last = words.pop().unwrap_or_default();
            return if words.is_empty() { last } else { format!("{} or {last}", words.join(", ")) };
        }
        return "a statement".into();
    }
    match words.len() {
        0 => "nothing".into(),
        1 => words.remove(0),
        _ => {
            let last = words.pop().unwrap_or_default();
            format!("{} or {}", words.join(", "), last)
        }
    }
}

fn report_deep_expressions(module: &Module, diags: &mut Vec<Diagnostic>) {
    for item in &module.items {
        match item {
            ast::Item::Circuit(c) => {
                for i in &c.inputs {
                    check_exprs(i.ty.dims.iter(), diags);
                }
                check_exprs(c.ret.dims.iter(), diags);
                check_stmts(&c.body, diags);
            }
            ast::Item::Model(m) => check_stmts(&m.body, diags),
            ast::Item::Import(_) => {}
        }
    }
}

fn check_stmts(stmts: &[Stmt], diags: &mut Vec<Diagnostic>) {
    for s in stmts {
        match &s.kind {
            StmtKind::Data { ty, source, .. } => check_exprs(ty.dims.iter().chain(source), diags),
            StmtKind::Param { ty, init, prior, draw, update, .. } => {
                check_exprs(ty.dims.iter().chain(init).chain(prior).chain(draw).chain(update), diags)
            }
            StmtKind::Let { value, .. } => check_exprs([value], diags),
            StmtKind::Tilde { dist, .. } => check_exprs([dist], diags),
            StmtKind::Return(e) => check_exprs([e], diags),
            StmtKind::Repeat { count, body } => {
                check_exprs([count], diags);
                check_stmts(body, diags);
            }
            StmtKind::Train { settings } => check_exprs(settings.iter().map(|s| &s.value), diags),
            StmtKind::Error => {}
        }
    }
}

fn check_exprs<'a>(exprs: impl IntoIterator<Item = &'a Expr>, diags: &mut Vec<Diagnostic>) {
    for e in exprs {
        if e.is_too_deep() {
            diags.push(
                Diagnostic::error("E0104", "expression nested too deeply")
                    .label(e.span, "this expression")
                    .note(format!("circ allows expressions at most {} levels deep", ast::MAX_EXPR_DEPTH))
                    .help("split it into several `let` bindings"),
            );
        }
    }
}
