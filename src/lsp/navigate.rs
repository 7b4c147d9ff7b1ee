//! `textDocument/definition` and `textDocument/documentSymbol`.

use super::analysis::{Analysis, ROOT};
use crate::check::index::Target;
use crate::front::ast::{Item, Stmt, StmtKind};
use crate::source::Span;
use lsp_types::{DocumentSymbol, Location, Position, SymbolKind};

/// Where the name under the cursor is defined: a binding, a circuit (in the stdlib too), an
/// imported module's file (from a use of the module or from the `import` itself).
pub fn definition(a: &Analysis, pos: Position) -> Option<Location> {
    let offset = a.offset(pos) as u32;
    let within = |s: Span| s.file == ROOT && s.start <= offset && offset <= s.end;
    if let Some((span, _)) = a.index.definition_at(ROOT, offset) {
        return a.location(span);
    }
    if let Some((_, target)) = a.index.reference_at(ROOT, offset) {
        return match target {
            Target::Def(span) => a.location(span),
            Target::Module(m) => a.module_location(m),
        };
    }
    let root = a.checked.program.modules.first()?;
    for item in &root.ast.items {
        match item {
            Item::Import(imp)
                if [Some(&imp.module), imp.alias.as_ref()].into_iter().flatten().any(|i| within(i.span)) =>
            {
                return root.imports.get(&imp.local_name().name).and_then(|&m| a.module_location(m));
            }
            Item::Circuit(c) if within(c.name.span) => return a.location(c.name.span),
            Item::Model(m) if within(m.name.span) => return a.location(m.name.span),
            _ => {}
        }
    }
    None
}

/// The document's outline: imports, then each circuit (its arguments, inputs, parameters and
/// values) and model (its data, parameters and values), in file order.
#[allow(deprecated)] // `DocumentSymbol::deprecated` must be set; `tags` replaces it.
pub fn symbols(a: &Analysis) -> Vec<DocumentSymbol> {
    let Some(root) = a.checked.program.modules.first() else { return Vec::new() };
    let symbol = |name: &str, detail: Option<String>, kind, range: Span, selection: Span, children| DocumentSymbol {
        name: if name.is_empty() { "?".to_string() } else { name.to_string() },
        detail,
        kind,
        tags: None,
        deprecated: None,
        range: a.range(range.to(selection)),
        selection_range: a.range(selection),
        children,
    };
    let mut out = Vec::new();
    for item in &root.ast.items {
        match item {
            Item::Import(imp) => {
                let local = imp.local_name();
                out.push(symbol(&local.name, None, SymbolKind::MODULE, imp.span, local.span, None));
            }
            Item::Circuit(c) => {
                let mut children = Vec::new();
                for s in &c.statics {
                    let detail = a
                        .text(ROOT)
                        .get(s.span.range())
                        .and_then(|t| t.split_once(':'))
                        .map(|(_, k)| k.trim().to_string());
                    children.push(symbol(&s.name.name, detail, SymbolKind::TYPE_PARAMETER, s.span, s.name.span, None));
                }
                for i in &c.inputs {
                    let detail = Some(a.checked.program.sources.text(i.ty.span).to_string());
                    children.push(symbol(
                        &i.name.name,
                        detail,
                        SymbolKind::VARIABLE,
                        i.name.span.to(i.ty.span),
                        i.name.span,
                        None,
                    ));
                }
                statements(a, &c.body, &mut children, &symbol);
                let detail = a.text(ROOT).get(c.span.start as usize..c.ret.span.end as usize).map(|h| {
                    let h = h.split_whitespace().collect::<Vec<_>>().join(" ");
                    h.strip_prefix("circuit ")
                        .and_then(|h| h.strip_prefix(c.name.name.as_str()))
                        .unwrap_or(&h)
                        .to_string()
                });
                out.push(symbol(&c.name.name, detail, SymbolKind::FUNCTION, c.span, c.name.span, Some(children)));
            }
            Item::Model(m) => {
                let mut children = Vec::new();
                statements(a, &m.body, &mut children, &symbol);
                out.push(symbol(&m.name.name, None, SymbolKind::CLASS, m.span, m.name.span, Some(children)));
            }
        }
    }
    out
}

type MakeSymbol<'a> =
    dyn Fn(&str, Option<String>, SymbolKind, Span, Span, Option<Vec<DocumentSymbol>>) -> DocumentSymbol + 'a;

fn statements(a: &Analysis, body: &[Stmt], out: &mut Vec<DocumentSymbol>, symbol: &MakeSymbol<'_>) {
    for stmt in body {
        match &stmt.kind {
            StmtKind::Data { name, ty, .. } => {
                let detail = Some(a.checked.program.sources.text(ty.span).to_string());
                out.push(symbol(&name.name, detail, SymbolKind::FIELD, stmt.span, name.span, None));
            }
            StmtKind::Param { name, ty, .. } => {
                let detail = Some(a.checked.program.sources.text(ty.span).to_string());
                out.push(symbol(&name.name, detail, SymbolKind::PROPERTY, stmt.span, name.span, None));
            }
            StmtKind::Let { name, .. } => {
                // The type the checker inferred, from its first (or only) elaboration.
                let detail = a.index.defs.get(&name.span).and_then(|d| d.facts.first()).and_then(|f| {
                    let first = f.lines().next()?;
                    let rest = first.split_once(name.name.as_str())?.1;
                    Some(rest.trim_start_matches([':', ' ']).to_string())
                });
                out.push(symbol(&name.name, detail, SymbolKind::VARIABLE, stmt.span, name.span, None));
            }
            StmtKind::Repeat { body, .. } => statements(a, body, out, symbol),
            _ => {}
        }
    }
}
