//! The syntax tree of a `.circ` file, as parsed. Names are not resolved and shapes are not known
//! here; see `check` for that. Every node carries the span it was parsed from.
//!
//! Invariant: expression trees are at most [`MAX_EXPR_DEPTH`] deep (the parser replaces deeper
//! ones with `ExprKind::Error` and reports it), so recursive walks over them cannot overflow.

use crate::source::Span;

/// Deepest expression tree the parser builds.
pub const MAX_EXPR_DEPTH: u32 = 100;

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Import(Import),
    Circuit(Circuit),
    Model(Model),
}

/// `import nn` or `import nn as layers`.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub module: Ident,
    pub alias: Option<Ident>,
    pub span: Span,
}

impl Import {
    /// The name the module is known by in the importing file.
    pub fn local_name(&self) -> &Ident {
        self.alias.as_ref().unwrap_or(&self.module)
    }
}

/// `circuit dense(i: int, o: int)(x: [B, i]) -> [B, o] { … }`: a reusable sub-circuit. The first
/// list holds compile-time arguments, the second the tensor inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Circuit {
    pub name: Ident,
    pub statics: Vec<StaticParam>,
    pub inputs: Vec<Input>,
    pub ret: TypeExpr,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticKind {
    Int,
    Float,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StaticParam {
    pub name: Ident,
    pub kind: StaticKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub name: Ident,
    pub ty: TypeExpr,
}

/// `model name { … }`: data, parameters and the likelihood of one trainable model.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub name: Ident,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    Float,
    Int,
}

/// `[N, 64]` (float), `int[N]`, `float[]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub elem: ElemType,
    /// Each dimension is an expression: a literal, a name (static or symbolic), or arithmetic.
    pub dims: Vec<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `data x: [N, 64] = csv("a" .. "b")`
    Data { name: Ident, ty: TypeExpr, source: Option<Expr> },
    /// `param w: [i, o] ~ normal(0, 1) init normal(0, 0.1) update adam(lr = 1e-3)`; `= 0.5`
    /// instead of `init …` fixes the start.
    Param {
        name: Ident,
        ty: TypeExpr,
        init: Option<Expr>,
        prior: Option<Expr>,
        draw: Option<Expr>,
        update: Option<Expr>,
    },
    /// `let h = relu(x @ w)`
    Let { name: Ident, value: Expr },
    /// `y ~ normal(mean, 1)`: an observation (on data) or an activation prior (on a value).
    Tilde { target: Ident, dist: Expr },
    /// `return expr` (circuits only).
    Return(Expr),
    /// `repeat 5 { … }`: the body written out that many times.
    Repeat { count: Expr, body: Vec<Stmt> },
    /// `train { epochs = 30, batch = 64 }`
    Train { settings: Vec<Setting> },
    /// A statement that failed to parse; its error is already reported.
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub key: Ident,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Height of the tree below and including this node (a leaf is 1).
    pub depth: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    MatMul,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::MatMul => "@",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    /// A name, possibly qualified: `x`, `nn.dense`, `l1.w`.
    Path(Vec<Ident>),
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Neg(Box<Expr>),
    /// `x[i, a:b, :]`
    Index {
        base: Box<Expr>,
        indices: Vec<IndexItem>,
    },
    /// `[a, b, c]`: a list (shapes for reshape, axes for reductions).
    List(Vec<Expr>),
    /// `"pixel_0_0" .. "pixel_7_7"`: a range of CSV columns.
    Range(Box<Expr>, Box<Expr>),
    /// An expression that failed to parse; its error is already reported.
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// `lr = 1e-3` has a name; positional arguments have none.
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// `x[3]`: picks one position and drops the axis.
    At(Expr),
    /// `x[a:b]`, `x[:]`, `x[a:]`: keeps the axis.
    Slice { start: Option<Expr>, end: Option<Expr>, span: Span },
}

impl Expr {
    /// Builds a node; a node deeper than [`MAX_EXPR_DEPTH`] becomes `Error` (the parser reports it).
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        let depth = 1 + kind.children().map(|c| c.depth).max().unwrap_or(0);
        if depth > MAX_EXPR_DEPTH {
            return Expr { kind: ExprKind::Error, span, depth: MAX_EXPR_DEPTH + 1 };
        }
        Expr { kind, span, depth }
    }

    pub fn is_too_deep(&self) -> bool {
        self.depth > MAX_EXPR_DEPTH
    }

    /// The dotted name if this is a plain path: `nn.dense` → `"nn.dense"`.
    pub fn path_name(&self) -> Option<String> {
        match &self.kind {
            ExprKind::Path(p) => Some(p.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(".")),
            _ => None,
        }
    }
}

impl ExprKind {
    /// Direct sub-expressions, in source order.
    pub fn children(&self) -> Box<dyn Iterator<Item = &Expr> + '_> {
        match self {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) | ExprKind::Path(_) | ExprKind::Error => {
                Box::new(std::iter::empty())
            }
            ExprKind::Call { callee, args } => {
                Box::new(std::iter::once(&**callee).chain(args.iter().map(|a| &a.value)))
            }
            ExprKind::Binary { lhs, rhs, .. } | ExprKind::Range(lhs, rhs) => Box::new([&**lhs, &**rhs].into_iter()),
            ExprKind::Neg(e) => Box::new(std::iter::once(&**e)),
            ExprKind::Index { base, indices } => Box::new(std::iter::once(&**base).chain(indices.iter().flat_map(
                |i| -> Box<dyn Iterator<Item = &Expr>> {
                    match i {
                        IndexItem::At(e) => Box::new(std::iter::once(e)),
                        IndexItem::Slice { start, end, .. } => Box::new(start.iter().chain(end.iter())),
                    }
                },
            ))),
            ExprKind::List(items) => Box::new(items.iter()),
        }
    }
}

/// A binary node (used by the grammar).
pub fn bin(op: BinOp, lhs: Expr, rhs: Expr, span: Span) -> Expr {
    Expr::new(ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span)
}

/// Chains of at most this many operators keep the left-to-right grouping they were written with.
pub const FLAT_CHAIN: usize = 32;

/// A chain of operators of one precedence, `first op₁ t₁ op₂ t₂ …` (each `tᵢ` with the end of
/// its span), starting at byte `l` of `file`. A chain is a flat list, not nesting: a short one
/// is grouped from the left as written; a longer one of `+` and `-` becomes
/// `(sum of the added terms) - (sum of the subtracted ones)`, of `*` and `/`
/// `(product) / (product)`, each a balanced tree, so that a sum of 10 000 terms is about 14
/// deep. Chains with `@` stay grouped from the left (deep ones are reported).
pub fn chain(file: crate::source::FileId, l: usize, first: Expr, rest: Vec<(BinOp, Expr, usize)>) -> Expr {
    let additive = rest.iter().all(|(op, ..)| matches!(op, BinOp::Add | BinOp::Sub));
    let multiplicative = rest.iter().all(|(op, ..)| matches!(op, BinOp::Mul | BinOp::Div));
    if rest.len() <= FLAT_CHAIN || !(additive || multiplicative) {
        return rest.into_iter().fold(first, |acc, (op, e, r)| bin(op, acc, e, Span::new(file, l, r)));
    }
    let end = rest.last().map_or(first.span.end as usize, |(_, _, r)| *r);
    let (plus, minus) = if additive { (BinOp::Add, BinOp::Sub) } else { (BinOp::Mul, BinOp::Div) };
    let mut kept = vec![first];
    let mut inverted = Vec::new();
    for (op, e, _) in rest {
        if op == plus {
            kept.push(e);
        } else {
            inverted.push(e);
        }
    }
    let span = Span::new(file, l, end);
    let lhs = balanced(plus, kept);
    if inverted.is_empty() {
        return Expr { span, ..lhs };
    }
    bin(minus, lhs, balanced(plus, inverted), span)
}

/// A balanced tree of `op` over `terms` (at least one), in order; depth log₂ of their number.
fn balanced(op: BinOp, mut terms: Vec<Expr>) -> Expr {
    if terms.len() == 1 {
        return terms.pop().expect("one term");
    }
    let right = terms.split_off(terms.len() / 2);
    let (l, r) = (balanced(op, terms), balanced(op, right));
    let span = Span { file: l.span.file, start: l.span.start, end: r.span.end };
    Expr::new(ExprKind::Binary { op, lhs: Box::new(l), rhs: Box::new(r) }, span)
}
