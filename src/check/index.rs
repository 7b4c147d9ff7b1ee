//! What the checker learns about names, kept for editors (`circ lsp`): where each name it
//! resolved is defined, and what each definition held (its type with symbolic sizes, a
//! parameter's prior, start and update rule). Recorded only when asked for
//! ([`super::check_with_index`]): `circ check` and the other commands pay nothing for it.
//!
//! A definition inside a circuit is elaborated once on its own (sizes shown by their names,
//! `[B, o]`) and again at every application (`[N, 128]` in `l1`); each distinct result is kept.

use super::checked::{Op, ParamDecl};
use super::elaborate::{BindKind, Checker, Scope, Static, Value};
use crate::front::ast;
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

/// Recording into the index while the checker elaborates (nothing when no index is kept).
impl Checker<'_> {
    /// Records a use of a name and what it resolved to (when an index is kept).
    pub(super) fn index_ref(&mut self, at: Span, target: Target) {
        if let Some(index) = &mut self.index {
            index.reference(at, target);
        }
    }

    /// Lists a new parameter on the `let` of every instance it belongs to (`net.l1.w` on `net`
    /// and on `net.l1`).
    pub(super) fn index_member(&mut self, full: &str, param: usize) {
        let p = &self.b.params[param];
        let mut line = format!("param {full}: {}", self.show(&p.ty));
        line.push_str(&format!(" ~ {}", super::signature::prior(&p.prior)));
        match (p.init, &p.draw) {
            (Some(x), _) => line.push_str(&format!(" = {}", super::signature::num(x))),
            (None, Some(d)) => line.push_str(&format!(" init {}", super::signature::prior(d))),
            (None, None) => {}
        }
        if let Some(u) = &p.update {
            line.push_str(&format!(" update {}", super::signature::update(u)));
        }
        let owners: Vec<Span> =
            full.match_indices('.').filter_map(|(i, _)| self.instance_defs.get(&full[..i]).copied()).collect();
        if let Some(index) = &mut self.index {
            for owner in owners {
                index.member(owner, &line);
            }
        }
    }

    /// Records what a new binding holds, as the hover of an editor shows it: its full name
    /// (with the instance prefix), its type, and for a parameter its prior, start and update.
    pub(super) fn index_def(&mut self, scope: &Scope, name: &ast::Ident, value: &Value, kind: BindKind) {
        let full = format!("{}{}", scope.prefix, name.name);
        let def_kind = match kind {
            BindKind::Data => DefKind::Data,
            BindKind::Param => DefKind::Param,
            BindKind::Let => DefKind::Let,
            BindKind::Static => DefKind::Static,
            BindKind::Input => DefKind::Input,
            BindKind::Instance => DefKind::Instance,
        };
        let word = def_kind.keyword();
        let fact = match value {
            Value::Tensor(node) => {
                let shown = self.show(self.ty(*node));
                match self.b.nodes[node.0 as usize].op {
                    // Checked on its own, a circuit's priors have unknown arguments: shape only.
                    Op::Param(i) if !self.generic => param_fact(&full, &shown, &self.b.params[i]),
                    _ => format!("{word} {full}: {shown}"),
                }
            }
            Value::Static(Static::Int(n)) => format!("{word} {full} = {n}"),
            Value::Static(Static::Float(f)) => format!("{word} {full} = {}", super::signature::num(*f)),
            Value::Static(Static::Dim(_)) => format!("{word} {full}: int"),
            Value::Static(Static::Unknown) => format!("{word} {full}: float"),
            Value::Instance(inst) => {
                if !self.generic {
                    self.instance_defs.insert(inst.name.clone(), name.span);
                }
                let c = inst.circuit;
                let module = if c.module == scope.module {
                    String::new()
                } else {
                    format!("{}.", self.prog.module(c.module).name)
                };
                let args: Vec<String> = inst
                    .statics
                    .iter()
                    .map(|s| match s {
                        Static::Int(n) => n.to_string(),
                        Static::Float(f) => super::signature::num(*f),
                        Static::Dim(d) => super::types::ShowDim(*d, &self.b).to_string(),
                        Static::Unknown => "?".to_string(),
                    })
                    .collect();
                format!("{word} {full} = {module}{}({})", self.circuit(c).name.name, args.join(", "))
            }
            Value::Circuit(c) => format!("{word} {full} = circuit {}", self.circuit(*c).name.name),
            Value::Module(m) => format!("{word} {full} = module {}", self.prog.module(*m).name),
            Value::Poison => return,
        };
        if let Some(index) = &mut self.index {
            index.define(name.span, def_kind, &name.name, fact);
        }
    }
}

/// A parameter as a hover shows it: shape, prior, start and update rule.
fn param_fact(full: &str, shown: &str, p: &ParamDecl) -> String {
    use super::signature::{num, prior, update};
    let start = match (p.init, &p.draw) {
        (Some(x), _) => format!("= {}", num(x)),
        (None, Some(d)) => format!("drawn from {}", prior(d)),
        (None, None) => "drawn from the prior".to_string(),
    };
    let rule = match &p.update {
        Some(u) => update(u),
        None => "the model's optimizer (`train { optimizer = … }`)".to_string(),
    };
    format!("param {full}: {shown}\n  prior  {}\n  start  {start}\n  update {rule}", prior(&p.prior))
}
