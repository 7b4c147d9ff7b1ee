//! Loading a program: the root file and, transitively, every module it imports. A module is
//! looked up next to the importing file (`name.circ`), then in the standard library bundled into
//! the binary (stdlib/). Import cycles and missing modules are diagnostics.

use super::ast::{Item, Module};
use super::parser::parse;
use crate::diagnostic::Diagnostic;
use crate::source::{FileId, SourceMap, Span};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The standard library, compiled into the binary so `import nn` works from any directory.
pub const STDLIB: &[(&str, &str)] = &[("nn", include_str!("../../stdlib/nn.circ"))];

/// Index of a module in [`Program::modules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(pub u32);

pub struct LoadedModule {
    pub name: String,
    pub file: FileId,
    pub ast: Module,
    /// Local name → module, one entry per import that resolved.
    pub imports: HashMap<String, ModuleId>,
}

/// Every module of one compilation; the root is module 0.
pub struct Program {
    pub sources: SourceMap,
    pub modules: Vec<LoadedModule>,
}

impl Program {
    pub fn module(&self, id: ModuleId) -> &LoadedModule {
        &self.modules[id.0 as usize]
    }
}

/// Loads a root file from disk. Returns `Err` only when the root file itself cannot be read; a
/// file that is not UTF-8 is read, and reported by a diagnostic (E0107).
pub fn load_file(path: &Path) -> Result<(Program, Vec<Diagnostic>), std::io::Error> {
    let bytes = circ_runtime::files::input::read(path)?;
    Ok(load_bytes(&path.display().to_string(), Some(path.to_path_buf()), bytes))
}

/// Loads a program whose root is the given text (`path` is where imports are looked up from).
pub fn load_source(name: &str, path: Option<PathBuf>, text: &str) -> (Program, Vec<Diagnostic>) {
    load_bytes(name, path, text.as_bytes().to_vec())
}

/// Loads a program whose root is the given bytes: UTF-8 text, or an error E0107 at the first byte
/// that is not.
pub fn load_bytes(name: &str, path: Option<PathBuf>, bytes: Vec<u8>) -> (Program, Vec<Diagnostic>) {
    let mut loader =
        Loader { sources: SourceMap::new(), modules: Vec::new(), diags: Vec::new(), by_key: HashMap::new() };
    let stem =
        path.as_ref().and_then(|p| p.file_stem()).map_or("main".to_string(), |s| s.to_string_lossy().into_owned());
    loader.add_file(stem, name.to_string(), path, bytes, None, &mut Vec::new());
    (Program { sources: loader.sources, modules: loader.modules }, loader.diags)
}

/// The text of a source file and no diagnostic, or the text with each invalid sequence replaced
/// by U+FFFD and a diagnostic at the first one. The bytes before it are unchanged, so its line and
/// column are those of the file.
fn decode(file: FileId, bytes: Vec<u8>) -> (String, Option<Diagnostic>) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let bad = invalid_len(&bytes[at..]);
            let shown: Vec<String> = bytes[at..at + bad].iter().map(|b| format!("0x{b:02X}")).collect();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let diag = Diagnostic::error("E0107", "this file is not valid UTF-8")
                .label(
                    Span::new(file, at, at + '\u{FFFD}'.len_utf8()),
                    format!("byte{} {} here", if bad == 1 { "" } else { "s" }, shown.join(" ")),
                )
                .help("circ reads source files as UTF-8: convert the file (e.g. `iconv -f latin1 -t utf-8`)");
            (text, Some(diag))
        }
    }
}

/// Length of the invalid sequence at the start of `bytes` (at least 1).
fn invalid_len(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Err(e) => e.error_len().unwrap_or(bytes.len()).max(1),
        Ok(_) => 1,
    }
}

struct Loader {
    sources: SourceMap,
    modules: Vec<LoadedModule>,
    diags: Vec<Diagnostic>,
    /// Canonical location → module, so a module imported twice is loaded once.
    by_key: HashMap<String, ModuleId>,
}

impl Loader {
    /// Adds a file read from disk (or given as the root) and loads it as a module. A file that is
    /// not UTF-8 gets its diagnostic and is not parsed: it becomes a module with nothing in it.
    fn add_file(
        &mut self,
        module: String,
        name: String,
        path: Option<PathBuf>,
        bytes: Vec<u8>,
        imported_at: Option<Span>,
        stack: &mut Vec<String>,
    ) -> ModuleId {
        let file = self.sources.add(name, path.clone(), String::new());
        match decode(file, bytes) {
            (text, None) => {
                self.sources.set_text(file, text);
                self.add_module(module, file, path, stack)
            }
            (text, Some(diag)) => {
                self.sources.set_text(file, text);
                self.diags.push(match imported_at {
                    Some(span) => diag.secondary(span, "imported here"),
                    None => diag,
                });
                let id = ModuleId(self.modules.len() as u32);
                self.modules.push(LoadedModule {
                    name: module.clone(),
                    file,
                    ast: Module { items: Vec::new() },
                    imports: HashMap::new(),
                });
                self.by_key.insert(module_key(&module, path.as_deref()), id);
                id
            }
        }
    }

    fn add_module(&mut self, name: String, file: FileId, path: Option<PathBuf>, stack: &mut Vec<String>) -> ModuleId {
        let (ast, diags) = parse(file, &self.sources.file(file).text);
        self.diags.extend(diags);
        // Reserve the slot first: imported modules are appended after it.
        let id = ModuleId(self.modules.len() as u32);
        self.modules.push(LoadedModule { name, file, ast: Module { items: Vec::new() }, imports: HashMap::new() });
        let key = module_key(&self.modules[id.0 as usize].name, path.as_deref());
        self.by_key.insert(key.clone(), id);
        stack.push(key);
        let dir = path.as_ref().and_then(|p| p.parent().map(Path::to_path_buf));
        let mut imports = HashMap::new();
        let mut import_spans: HashMap<String, Span> = HashMap::new();
        for item in &ast.items {
            let Item::Import(imp) = item else { continue };
            let local = imp.local_name();
            if let Some(prev) = import_spans.get(&local.name) {
                self.diags.push(
                    Diagnostic::error("E0202", format!("`{}` is imported twice", local.name))
                        .label(local.span, "imported again here")
                        .secondary(*prev, "first imported here")
                        .help("import it once, or use `import … as other_name`"),
                );
                continue;
            }
            import_spans.insert(local.name.clone(), local.span);
            if let Some(m) = self.resolve(&imp.module.name, imp.module.span, dir.as_deref(), stack) {
                imports.insert(local.name.clone(), m);
            }
        }
        stack.pop();
        let slot = &mut self.modules[id.0 as usize];
        slot.ast = ast;
        slot.imports = imports;
        id
    }

    fn resolve(&mut self, name: &str, span: Span, dir: Option<&Path>, stack: &mut Vec<String>) -> Option<ModuleId> {
        let local = dir.map(|d| d.join(format!("{name}.circ"))).filter(|p| p.is_file());
        let key = module_key(name, local.as_deref());
        if stack.contains(&key) {
            let chain: Vec<&str> = stack
                .iter()
                .filter_map(|k| self.by_key.get(k))
                .map(|id| self.modules[id.0 as usize].name.as_str())
                .chain([name])
                .collect();
            self.diags.push(
                Diagnostic::error("E0203", format!("module `{name}` imports itself"))
                    .label(span, "this import closes a cycle")
                    .note(format!("import chain: {}", chain.join(" -> "))),
            );
            return None;
        }
        if let Some(id) = self.by_key.get(&key) {
            return Some(*id);
        }
        if let Some(path) = local {
            return match circ_runtime::files::input::read(&path) {
                Ok(bytes) => {
                    let shown = path.display().to_string();
                    Some(self.add_file(name.to_string(), shown, Some(path.clone()), bytes, Some(span), stack))
                }
                Err(e) => {
                    self.diags.push(
                        Diagnostic::error("E0201", format!("cannot read module `{name}`"))
                            .label(span, format!("{}: {e}", path.display())),
                    );
                    None
                }
            };
        }
        if let Some((_, text)) = STDLIB.iter().find(|(n, _)| *n == name) {
            let file = self.sources.add(format!("<stdlib>/{name}.circ"), None, *text);
            return Some(self.add_module(name.to_string(), file, None, stack));
        }
        let stdlib: Vec<&str> = STDLIB.iter().map(|(n, _)| *n).collect();
        self.diags.push(
            Diagnostic::error("E0201", format!("unknown module `{name}`")).label(span, "no such module").note(format!(
                "modules are looked up as `{name}.circ` next to this file, then in the standard library ({})",
                stdlib.join(", ")
            )),
        );
        None
    }
}

fn module_key(name: &str, path: Option<&Path>) -> String {
    match path {
        Some(p) => p.canonicalize().unwrap_or_else(|_| p.to_path_buf()).display().to_string(),
        None => format!("<stdlib>/{name}"),
    }
}
