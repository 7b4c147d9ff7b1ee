//! `textDocument/hover`: what the checker knows about the name under the cursor.
//!
//! A binding (data, param, let, circuit argument or input; at its definition or a use) shows
//! the checker's facts: its type with symbolic sizes, a parameter's prior, start and update
//! rule; inside a circuit one line per distinct elaboration. A circuit shows its signature and
//! the comment above it, a model its `circ check -v` signature, an import its module's file, and
//! a name of the language (built-in, distribution, update rule, setting) its line of docs.

use super::analysis::{Analysis, ROOT};
use super::docs;
use crate::check::index::{Def, Target};
use crate::front::ast::{self, Item};
use crate::source::Span;
use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind, Position};

pub fn hover(a: &Analysis, pos: Position) -> Option<Hover> {
    let offset = a.offset(pos);
    let (text, span) = hover_text(a, offset as u32)?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: text }),
        range: Some(a.range(span)),
    })
}

/// The Markdown of a hover at byte `offset` of the document, and the span it is about.
pub fn hover_text(a: &Analysis, offset: u32) -> Option<(String, Span)> {
    if let Some((span, def)) = a.index.definition_at(ROOT, offset) {
        return Some((binding(def), span));
    }
    if let Some((span, target)) = a.index.reference_at(ROOT, offset) {
        let text = match target {
            Target::Def(def) => match a.index.defs.get(&def) {
                Some(d) => binding(d),
                None => circuit_at(a, def).map(|c| circuit(a, c))?,
            },
            Target::Module(m) => module(a, m),
        };
        return Some((text, span));
    }
    if let Some(found) = item_name_at(a, offset) {
        return Some(found);
    }
    let (word, span) = a.word_at(offset as usize)?;
    let (sig, doc) = docs::lookup(word)?;
    Some((format!("```circ\n{sig}\n```\n{doc}"), span))
}

fn binding(d: &Def) -> String {
    let mut s = format!("```circ\n{}\n```", d.facts.join("\n"));
    if d.facts.is_empty() {
        s = format!("```circ\n{} {}\n```", d.kind.keyword(), d.name);
    }
    if !d.members.is_empty() {
        s.push_str(&format!("\nParameters:\n```circ\n{}\n```", d.members.join("\n")));
    }
    if d.facts.len() > 1 {
        s.push_str("\nOne line per elaboration: the circuit checked on its own, then each instance.");
    }
    if d.truncated {
        s.push_str(&format!("\n(only the first {} shown)", crate::check::index::MAX_FACTS));
    }
    s
}

/// A circuit's signature, the comment lines just above it, and where it lives.
fn circuit(a: &Analysis, c: &ast::Circuit) -> String {
    let file = c.name.span.file;
    let text = a.text(file);
    let header = text.get(c.span.start as usize..c.ret.span.end as usize).unwrap_or("");
    let header = header.split_whitespace().collect::<Vec<_>>().join(" ");
    let before = text.get(..c.span.start as usize).unwrap_or("");
    let mut comment: Vec<&str> = before
        .lines()
        .rev()
        .skip(usize::from(!before.ends_with('\n')))
        .take_while(|l| l.trim_start().starts_with('#'))
        .map(|l| l.trim_start().trim_start_matches('#').trim())
        .collect();
    comment.reverse();
    let mut s = format!("```circ\n{header}\n```");
    if !comment.is_empty() {
        s.push('\n');
        s.push_str(&comment.join(" "));
    }
    if file != ROOT {
        s.push_str(&format!("\n\n*{}*", a.checked.program.sources.file(file).name));
    }
    s
}

fn module(a: &Analysis, m: crate::front::loader::ModuleId) -> String {
    let module = a.checked.program.module(m);
    let file = &a.checked.program.sources.file(module.file).name;
    format!("```circ\nimport {}\n```\n*{file}*", module.name)
}

/// The circuit whose name is at `span`, in any module of the program.
pub fn circuit_at(a: &Analysis, span: Span) -> Option<&ast::Circuit> {
    a.checked.program.modules.iter().flat_map(|m| &m.ast.items).find_map(|i| match i {
        Item::Circuit(c) if c.name.span == span => Some(c),
        _ => None,
    })
}

fn contains(span: Span, offset: u32) -> bool {
    span.file == ROOT && span.start <= offset && offset <= span.end
}

/// Hovers on the names of the document's items: a circuit's or model's name, an import.
fn item_name_at(a: &Analysis, offset: u32) -> Option<(String, Span)> {
    let root = a.checked.program.modules.first()?;
    for item in &root.ast.items {
        match item {
            Item::Circuit(c) if contains(c.name.span, offset) => return Some((circuit(a, c), c.name.span)),
            Item::Model(m) if contains(m.name.span, offset) => {
                let checked = a.checked.models.iter().find(|cm| cm.span == m.span);
                let text = match checked {
                    Some(cm) => format!("```\n{}```", cm),
                    None => format!("```circ\nmodel {}\n```\n(not checked: it has errors)", m.name.name),
                };
                return Some((text, m.name.span));
            }
            Item::Import(imp) => {
                let local = imp.local_name();
                for id in [Some(&imp.module), imp.alias.as_ref()].into_iter().flatten() {
                    if contains(id.span, offset) {
                        let text = match root.imports.get(&local.name) {
                            Some(&m) => module(a, m),
                            None => format!("```circ\nimport {}\n```\n(not found)", imp.module.name),
                        };
                        return Some((text, id.span));
                    }
                }
            }
            _ => {}
        }
    }
    None
}
