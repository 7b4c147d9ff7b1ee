//! One open document, checked: its program (root file and imports), the checker's diagnostics
//! and index of names, and the mapping between the checker's byte spans and LSP positions
//! (lines and UTF-16 columns, the encoding every client supports).

use super::uri;
use crate::check::index::Index;
use crate::diagnostic::{Diagnostic, Severity};
use crate::driver::Checked;
use crate::front::ast::Item;
use crate::front::loader::{ModuleId, STDLIB};
use crate::source::{FileId, Span};
use lsp_types::{DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Position, Range, Uri};
use std::path::{Path, PathBuf};

/// The root file of every analysis is the first file the loader adds.
pub const ROOT: FileId = FileId(0);

/// Line starts of one file, for converting byte offsets to positions and back.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// The position of byte `offset` (clamped to the text, and back to a character boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let col = text[self.starts[line]..offset].encode_utf16().count();
        Position::new(line as u32, col as u32)
    }

    /// The byte offset of a position; a line past the end is the end of the text, a column past
    /// the end of its line is the line's end, a column inside a surrogate pair is its character.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else {
            return text.len();
        };
        let end = self.starts.get(pos.line as usize + 1).map_or(text.len(), |&e| e - 1);
        let line = text[start..end].strip_suffix('\r').unwrap_or(&text[start..end]);
        let mut units = 0;
        for (i, c) in line.char_indices() {
            if units + c.len_utf16() > pos.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        start + line.len()
    }
}

pub struct Analysis {
    /// The document's URI, as the client gave it.
    pub uri: Uri,
    pub checked: Checked,
    pub index: Index,
    lines: Vec<LineIndex>,
    /// Where the stdlib modules are served as files (see `uri.rs`).
    stdlib_dir: Option<PathBuf>,
}

impl Analysis {
    /// Checks `text` as the document `uri`. A `file:` document's imports are looked up next to
    /// it (on disk: unsaved edits of another open file are not seen); others import only the stdlib.
    pub fn new(uri: Uri, text: &str, stdlib_dir: Option<&Path>) -> Analysis {
        let path = uri::to_path(&uri);
        let name = path.as_ref().map_or_else(|| uri.as_str().to_string(), |p| p.display().to_string());
        let (checked, index) = crate::driver::check_for_editor(&name, path, text);
        let lines = checked.program.sources.files().map(|(_, f)| LineIndex::new(&f.text)).collect();
        Analysis { uri, checked, index, lines, stdlib_dir: stdlib_dir.map(Path::to_path_buf) }
    }

    pub fn text(&self, file: FileId) -> &str {
        &self.checked.program.sources.file(file).text
    }

    pub fn position(&self, file: FileId, offset: usize) -> Position {
        self.lines[file.0 as usize].position(self.text(file), offset)
    }

    /// The byte offset of a position in the document.
    pub fn offset(&self, pos: Position) -> usize {
        self.lines[ROOT.0 as usize].offset(self.text(ROOT), pos)
    }

    pub fn range(&self, span: Span) -> Range {
        Range::new(self.position(span.file, span.start as usize), self.position(span.file, span.end as usize))
    }

    /// The URI an editor opens for a file of the program: the document itself, a module next to
    /// it, or the stdlib's served copy.
    pub fn file_uri(&self, file: FileId) -> Option<Uri> {
        if file == ROOT {
            return Some(self.uri.clone());
        }
        if let Some(p) = &self.checked.program.sources.file(file).path {
            let p = p.canonicalize().unwrap_or_else(|_| p.clone());
            return uri::from_path(&p);
        }
        let module = self.checked.program.modules.iter().find(|m| m.file == file)?;
        let (name, _) = STDLIB.iter().find(|(n, _)| *n == module.name)?;
        uri::from_path(&self.stdlib_dir.as_ref()?.join(format!("{name}.circ")))
    }

    pub fn location(&self, span: Span) -> Option<Location> {
        Some(Location::new(self.file_uri(span.file)?, self.range(span)))
    }

    /// The start of a module's file.
    pub fn module_location(&self, m: ModuleId) -> Option<Location> {
        let file = self.checked.program.modules.get(m.0 as usize)?.file;
        Some(Location::new(self.file_uri(file)?, Range::default()))
    }

    /// The document's diagnostics, for `textDocument/publishDiagnostics`.
    pub fn diagnostics(&self) -> Vec<lsp_types::Diagnostic> {
        self.checked.diagnostics.iter().map(|d| self.convert(d)).collect()
    }

    /// One diagnostic in LSP terms: the primary label's range and text, each secondary label as
    /// related information, help and notes as lines of the message. A diagnostic whose primary
    /// span lies in an imported file is shown on the import that brings that file in.
    fn convert(&self, d: &Diagnostic) -> lsp_types::Diagnostic {
        let mut message = d.message.clone();
        let primary = d.labels.iter().find(|l| l.primary).or(d.labels.first());
        if let Some(l) = primary.filter(|l| !l.message.is_empty()) {
            message.push_str(&format!("\n{}", l.message));
        }
        for h in &d.helps {
            message.push_str(&format!("\nhelp: {h}"));
        }
        for n in &d.notes {
            message.push_str(&format!("\nnote: {n}"));
        }
        let mut related = Vec::new();
        let range = match primary.map(|l| l.span) {
            Some(span) if span.file == ROOT => self.range(span),
            Some(span) => {
                let file = &self.checked.program.sources.file(span.file).name;
                message = format!("in {file}: {message}");
                if let Some(location) = self.location(span) {
                    let text = primary.map_or(String::new(), |l| l.message.clone());
                    related.push(DiagnosticRelatedInformation {
                        location,
                        message: if text.is_empty() { d.message.clone() } else { text },
                    });
                }
                self.import_leading_to(span.file).map_or_else(Range::default, |s| self.range(s))
            }
            None => Range::default(),
        };
        for l in d.labels.iter().filter(|l| Some(*l) != primary) {
            if let Some(location) = self.location(l.span) {
                related.push(DiagnosticRelatedInformation { location, message: l.message.clone() });
            }
        }
        lsp_types::Diagnostic {
            range,
            severity: Some(match d.severity {
                Severity::Error => DiagnosticSeverity::ERROR,
                Severity::Warning => DiagnosticSeverity::WARNING,
            }),
            code: Some(NumberOrString::String(d.code.to_string())),
            source: Some("circ".to_string()),
            message,
            related_information: (!related.is_empty()).then_some(related),
            ..Default::default()
        }
    }

    /// The span of the root file's import that loads `file`, directly or through other modules
    /// (the first such import).
    fn import_leading_to(&self, file: FileId) -> Option<Span> {
        let modules = &self.checked.program.modules;
        let target = modules.iter().position(|m| m.file == file)?;
        let root = modules.first()?;
        let mut first_import = None;
        for item in &root.ast.items {
            let Item::Import(imp) = item else { continue };
            first_import.get_or_insert(imp.span);
            let Some(&m) = root.imports.get(&imp.local_name().name) else { continue };
            if self.reaches(m, target, &mut vec![false; modules.len()]) {
                return Some(imp.span);
            }
        }
        first_import
    }

    fn reaches(&self, from: ModuleId, target: usize, seen: &mut [bool]) -> bool {
        let i = from.0 as usize;
        if i == target {
            return true;
        }
        if seen.get(i).copied().unwrap_or(true) {
            return false;
        }
        seen[i] = true;
        self.checked.program.modules[i].imports.values().any(|&m| self.reaches(m, target, seen))
    }

    /// The identifier (letters, digits, `_`) around byte `offset` of the document, with its span.
    pub fn word_at(&self, offset: usize) -> Option<(&str, Span)> {
        let text = self.text(ROOT);
        let is_word = |c: char| c.is_alphanumeric() || c == '_';
        let offset = offset.min(text.len());
        if !text.is_char_boundary(offset) {
            return None;
        }
        let start =
            text[..offset].char_indices().rev().take_while(|(_, c)| is_word(*c)).last().map_or(offset, |(i, _)| i);
        let end = text[offset..].char_indices().find(|(_, c)| !is_word(*c)).map_or(text.len(), |(i, _)| offset + i);
        (start < end).then(|| (&text[start..end], Span::new(ROOT, start, end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units() {
        let text = "ab\n# é𝄞x\r\nlast";
        let idx = LineIndex::new(text);
        // `x` follows `é` (1 unit, 2 bytes) and `𝄞` (2 units, 4 bytes).
        let x = text.find('x').unwrap();
        assert_eq!(idx.position(text, x), Position::new(1, 5));
        assert_eq!(idx.offset(text, Position::new(1, 5)), x);
        // Inside the surrogate pair: the character's start.
        assert_eq!(idx.offset(text, Position::new(1, 4)), text.find('𝄞').unwrap());
        // Past the end of a line: before its `\r\n`; past the last line: the end.
        assert_eq!(idx.offset(text, Position::new(1, 99)), x + 1);
        assert_eq!(idx.offset(text, Position::new(9, 0)), text.len());
        assert_eq!(idx.position(text, text.len()), Position::new(2, 4));
        // Offsets inside a character go back to its start.
        assert_eq!(idx.position(text, text.find('é').unwrap() + 1), Position::new(1, 2));
        for (i, _) in text.char_indices().filter(|(_, c)| !matches!(c, '\r' | '\n')) {
            assert_eq!(idx.offset(text, idx.position(text, i)), i, "offset {i}");
        }
    }
}
