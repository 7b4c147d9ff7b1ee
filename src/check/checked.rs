//! The checker's output: one elaborated model per `model` item. Circuits are inlined, parameters
//! carry their hierarchical names (`l1.w`), every value is a typed node, and every prior, likelihood
//! and optimizer setting is evaluated to numbers. Later stages (graph IR, autodiff) start here.
//!
//! Invariants: node inputs always precede the node (`nodes` is in topological order); every shape
//! is concrete or symbolic, never `Dim::Any`; every span points at the source that produced it.

use super::types::{SymNames, Ty};
use crate::source::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

#[derive(Clone, Debug, PartialEq)]
pub struct CheckedModel {
    pub name: String,
    pub span: Span,
    /// Symbolic dimensions, by `SymId` index.
    pub syms: Vec<String>,
    pub data: Vec<DataDecl>,
    pub params: Vec<ParamDecl>,
    pub nodes: Vec<Node>,
    pub observations: Vec<Observation>,
    pub activation_priors: Vec<ActivationPrior>,
    /// The tensor `let` values of the model's own body (not those inside circuits), by name: the
    /// last binding of each name, so a value rebound in a `repeat` is its final one. In order of
    /// first binding. `circ run --values` reads them.
    pub values: Vec<NamedValue>,
    pub train: TrainSettings,
}

/// A `let` value of a model's body (see [`CheckedModel::values`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedValue {
    pub name: String,
    pub node: NodeId,
    pub span: Span,
}

impl SymNames for CheckedModel {
    fn sym_name(&self, s: super::types::SymId) -> &str {
        &self.syms[s.0 as usize]
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DataDecl {
    pub name: String,
    pub ty: Ty,
    pub source: DataSource,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// CSV columns named one by one (a 1-D datum with no source reads the column of its own name).
    Columns(Vec<String>),
    /// CSV columns from `first` to `last` inclusive, in file order.
    ColumnRange(String, String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// Hierarchical name: the chain of instance names, then the parameter's own.
    pub name: String,
    pub ty: Ty,
    /// A fixed starting value (broadcast to the shape) instead of a draw from the prior.
    pub init: Option<f64>,
    pub prior: Prior,
    /// Where a start drawn at random comes from when it is not the prior (`init normal(0, 0.1)`).
    pub draw: Option<Prior>,
    /// The parameter's own update rule; `None` means the model's `train { optimizer }`.
    pub update: Option<UpdateRule>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Prior {
    Flat,
    Normal { mu: f64, sigma: f64 },
    Laplace { mu: f64, b: f64 },
    LogNormal { mu: f64, sigma: f64 },
    Uniform { low: f64, high: f64 },
}

impl Prior {
    /// Precision (inverse variance) of the prior: the starting precision of `newton` and `bayes`.
    pub fn precision(&self) -> f64 {
        match *self {
            Prior::Flat => 0.0,
            Prior::Normal { sigma, .. } | Prior::LogNormal { sigma, .. } => 1.0 / (sigma * sigma),
            Prior::Laplace { b, .. } => 1.0 / (2.0 * b * b),
            Prior::Uniform { low, high } => 12.0 / ((high - low) * (high - low)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    Sgd,
    Adam,
    Egd,
    Newton,
    Bayes,
}

impl UpdateKind {
    pub fn name(self) -> &'static str {
        match self {
            UpdateKind::Sgd => "sgd",
            UpdateKind::Adam => "adam",
            UpdateKind::Egd => "egd",
            UpdateKind::Newton => "newton",
            UpdateKind::Bayes => "bayes",
        }
    }
}

/// An optimizer with every hyperparameter given (defaults filled in), in declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateRule {
    pub kind: UpdateKind,
    pub hyper: Vec<(&'static str, f64)>,
}

impl UpdateRule {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.hyper.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct TrainSettings {
    pub optimizer: Option<UpdateRule>,
    pub epochs: Option<u64>,
    pub batch: Option<u64>,
    pub valid: Option<f64>,
    pub seed: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub ty: Ty,
    pub span: Span,
    /// For a node inlined from a circuit: the application in the model that brought it in (the
    /// outermost one when circuits apply circuits), since `span` points into the circuit's body.
    pub via: Option<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryFn {
    Neg,
    Exp,
    Log,
    Relu,
    Sigmoid,
    Tanh,
    Softplus,
    Sqrt,
    Abs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryFn {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceFn {
    Sum,
    Mean,
    Max,
}

/// One index of `x[…]`: keep a range of an axis, or pick one position and drop the axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slice {
    Range { start: i64, end: Option<i64> },
    At(i64),
}

/// The operations of checked models. Shapes are in each node's `ty`; attributes are resolved
/// (axes non-negative, reshape targets explicit).
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Data(usize),
    Param(usize),
    /// A scalar constant.
    Const(f64),
    Unary(UnaryFn),
    /// Elementwise with numpy broadcasting.
    Binary(BinaryFn),
    MatMul,
    Reduce {
        f: ReduceFn,
        axes: Vec<usize>,
        keepdims: bool,
    },
    Softmax {
        axis: usize,
    },
    LogSumExp {
        axis: usize,
        keepdims: bool,
    },
    Reshape,
    Transpose {
        perm: Vec<usize>,
    },
    Concat {
        axis: usize,
    },
    Index {
        items: Vec<Slice>,
    },
    /// Keeps the k largest entries of each row (last axis), zeroes the rest.
    KMax {
        k: u64,
    },
    /// sign(x)·max(|x|−θ, 0), θ broadcast to x.
    Shrink,
    OneHot {
        classes: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Index into `data`.
    pub data: usize,
    pub likelihood: Likelihood,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Scale {
    Const(f64),
    /// Learned, per-example: a node broadcast to the observation's shape.
    Node(NodeId),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Likelihood {
    Normal { mean: NodeId, sigma: Scale },
    Laplace { mean: NodeId, b: Scale },
    Categorical { logits: NodeId },
    Bernoulli { logits: NodeId },
}

/// `h ~ laplace(0, b)` on a hidden value: its negative log density joins the loss.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationPrior {
    /// The name the value had where the prior was stated (with its instance prefix).
    pub name: String,
    pub node: NodeId,
    pub prior: Prior,
    pub span: Span,
}

impl CheckedModel {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    /// Total number of scalar parameters.
    pub fn param_count(&self) -> u64 {
        self.params.iter().filter_map(|p| p.ty.known_len()).fold(0u64, u64::saturating_add)
    }

    /// The node that reads data input `i`.
    pub fn data_node(&self, i: usize) -> NodeId {
        self.leaf(|op| *op == Op::Data(i))
    }

    /// The node that holds parameter `i`.
    pub fn param_node(&self, i: usize) -> NodeId {
        self.leaf(|op| *op == Op::Param(i))
    }

    fn leaf(&self, is: impl Fn(&Op) -> bool) -> NodeId {
        let i = self.nodes.iter().position(|n| is(&n.op)).expect("every datum and parameter has a node");
        NodeId(i as u32)
    }
}
