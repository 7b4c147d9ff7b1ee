//! Diagnostics: an error code, a message, labelled spans, help and notes; rendered with ariadne
//! in the style of rustc. Every stage reports through this type and keeps going where it can.

use crate::source::{FileId, SourceMap, Span};
use ariadne::{Color, Config, IndexType, Label, Report, ReportKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiagLabel {
    pub span: Span,
    pub message: String,
    /// The primary label marks the offending code; secondary ones give context.
    pub primary: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code such as `E0301`; the list lives in docs/language.md.
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<DiagLabel>,
    pub helps: Vec<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: Vec::new(),
            helps: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    /// The primary label: what is wrong, and where.
    pub fn label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(DiagLabel { span, message: message.into(), primary: true });
        self
    }

    /// A secondary label: context that explains the primary one.
    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(DiagLabel { span, message: message.into(), primary: false });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.helps.push(help.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).or(self.labels.first()).map(|l| l.span)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic as text; `color` adds ANSI colours for terminals.
    pub fn render(&self, sources: &SourceMap, color: bool) -> String {
        self.render_with(&mut SourceCache::new(sources), color)
    }

    /// [`Diagnostic::render`] with a cache built once for many diagnostics.
    fn render_with(&self, cache: &mut SourceCache<'_>, color: bool) -> String {
        let Some(main) = self.primary_span() else {
            let kind = match self.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let mut s = format!("{kind}[{}]: {}\n", self.code, self.message);
            for h in &self.helps {
                s.push_str(&format!("  help: {h}\n"));
            }
            for n in &self.notes {
                s.push_str(&format!("  note: {n}\n"));
            }
            return s;
        };
        let kind = match self.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        let config = Config::default().with_color(color).with_index_type(IndexType::Byte);
        let mut report = Report::build(kind, (main.file, main.range()))
            .with_config(config)
            .with_code(self.code)
            .with_message(&self.message);
        // In source order: ariadne starts a new snippet whenever a label goes back up the file.
        let mut labels: Vec<&DiagLabel> = self.labels.iter().collect();
        labels.sort_by_key(|l| (l.span.file != main.file, l.span.file, l.span.start));
        for l in labels {
            let mut label = Label::new((l.span.file, l.span.range())).with_message(&l.message);
            if color {
                label = label.with_color(if l.primary { Color::Red } else { Color::Blue });
            }
            report = report.with_label(label);
        }
        for h in &self.helps {
            report = report.with_help(h);
        }
        for n in &self.notes {
            report = report.with_note(n);
        }
        let mut out = Vec::new();
        // Writing into a Vec cannot fail; a failure here would be a bug in the cache.
        if report.finish().write(&mut *cache, &mut out).is_err() {
            return format!("error[{}]: {}\n", self.code, self.message);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Adapts a [`SourceMap`] to ariadne's cache interface.
struct SourceCache<'a> {
    map: &'a SourceMap,
    sources: Vec<ariadne::Source<&'a str>>,
}

impl<'a> SourceCache<'a> {
    fn new(map: &'a SourceMap) -> Self {
        let sources = map.files().map(|(_, f)| ariadne::Source::from(f.text.as_str())).collect();
        SourceCache { map, sources }
    }
}

impl<'a> ariadne::Cache<FileId> for SourceCache<'a> {
    type Storage = &'a str;

    fn fetch(&mut self, id: &FileId) -> Result<&ariadne::Source<&'a str>, impl std::fmt::Debug> {
        self.sources.get(id.0 as usize).ok_or("unknown file")
    }

    fn display<'b>(&self, id: &'b FileId) -> Option<impl std::fmt::Display + 'b> {
        Some(self.map.file(*id).name.clone())
    }
}

/// Renders many diagnostics, sorted by position, errors and warnings as they came.
pub fn render_all(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by_key(|d| d.primary_span().map(|s| (s.file, s.start)));
    let mut cache = SourceCache::new(sources);
    sorted.iter().map(|d| d.render_with(&mut cache, color)).collect::<Vec<_>>().join("\n")
}
