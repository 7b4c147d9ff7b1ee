//! What the checker learns about names, kept for editors (`circ lsp`): where each name it
//! resolved is defined, and what each definition held (its type with symbolic sizes, a
//! parameter's prior, start and update rule). Recorded only when asked for
//! ([`super::check_with_index`]): `circ check` and the other commands pay nothing for it.
//!
//! A definition inside a circuit is elaborated once on its own (sizes shown by their names,
//! `[B, o]`) and again at every application (`[N, 128]` in `l1`); each distinct result is kept.

use crate::front::loader::ModuleId;
use crate::source::Span;
use std::collections::HashMap;

/// Most distinct facts kept per definition: a circuit applied a thousand times in a `repeat`
/// would otherwise keep a thousand copies of the same lines.
pub const MAX_FACTS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefKind {
    Data,
    Param,
    Let,
    /// A circuit's compile-time argument (`i: int`).
    Static,
    /// A circuit's tensor input.
    Input,
    /// A `let` bound to a circuit instance (`let l1 = nn.dense(64, 128)`).
    Instance,
}

impl DefKind {
    /// The keyword a hover shows before the name.
    pub fn keyword(self) -> &'static str {
        match self {
            DefKind::Data => "data",
            DefKind::Param => "param",
            DefKind::Let | DefKind::Instance => "let",
            DefKind::Static => "argument",
            DefKind::Input => "input",
        }
    }
}

/// What a resolved name refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A binding or a circuit, by the span of the name in its definition.
    Def(Span),
    /// An imported module.
    Module(ModuleId),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Def {
    pub kind: DefKind,
    pub name: String,
    /// Distinct descriptions, in the order met: the first is the circuit's own (generic) check
    /// when the definition sits in a circuit. Each is one or more lines.
    pub facts: Vec<String>,
    /// More distinct facts were met than [`MAX_FACTS`].
    pub truncated: bool,
    /// For an instance: the parameters it owns, its instances' included, one line each
    /// (`param l1.w: [64, 128] ~ normal(0, 1) init normal(0, 0.125)`); at most [`MAX_MEMBERS`].
    pub members: Vec<String>,
}

/// Most parameters listed per instance.
pub const MAX_MEMBERS: usize = 32;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Index {
    /// Each use of a name the checker resolved (by its span) and what it resolved to.
    pub refs: HashMap<Span, Target>,
    /// Each definition the checker bound, by the span of its name.
    pub defs: HashMap<Span, Def>,
}

impl Index {
    pub(super) fn reference(&mut self, at: Span, target: Target) {
        self.refs.insert(at, target);
    }

    pub(super) fn define(&mut self, at: Span, kind: DefKind, name: &str, fact: String) {
        let def = self.defs.entry(at).or_insert_with(|| Def {
            kind,
            name: name.to_string(),
            facts: Vec::new(),
            truncated: false,
            members: Vec::new(),
        });
        if def.facts.contains(&fact) {
            return;
        }
        if def.facts.len() < MAX_FACTS {
            def.facts.push(fact);
        } else {
            def.truncated = true;
        }
    }

    /// Lists a parameter under the instance defined at `owner` (already defined).
    pub(super) fn member(&mut self, owner: Span, line: &str) {
        if let Some(def) = self.defs.get_mut(&owner) {
            if def.members.len() < MAX_MEMBERS && !def.members.iter().any(|m| m == line) {
                def.members.push(line.to_string());
            }
        }
    }

    /// The innermost resolved name whose span holds byte `offset` of `file`.
    pub fn reference_at(&self, file: crate::source::FileId, offset: u32) -> Option<(Span, Target)> {
        self.refs
            .iter()
            .filter(|(s, _)| s.file == file && s.start <= offset && offset <= s.end)
            .min_by_key(|(s, _)| (s.end - s.start, s.start))
            .map(|(s, t)| (*s, *t))
    }

    /// The definition whose name's span holds byte `offset` of `file`.
    pub fn definition_at(&self, file: crate::source::FileId, offset: u32) -> Option<(Span, &Def)> {
        self.defs
            .iter()
            .filter(|(s, _)| s.file == file && s.start <= offset && offset <= s.end)
            .min_by_key(|(s, _)| (s.end - s.start, s.start))
            .map(|(s, d)| (*s, d))
    }
}
