//! The tensor graph: a petgraph `StableGraph` behind newtype ids, so ids stay valid across
//! rewrites. Edges run from operand to user and carry the operand's position, so operands are
//! ordered and one node may use another twice (`x * x`).

use super::op::Op;
use crate::check::checked::{Prior, UpdateRule};
use crate::check::types::{Dim, Elem, SymNames};
use crate::source::Span;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use petgraph::Direction;
use rustc_hash::FxHashSet as HashSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub NodeIndex<u32>);

impl NodeId {
    pub fn index(self) -> usize {
        self.0.index()
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "%{}", self.0.index())
    }
}

/// Where a node came from: its source span and, for a node inlined from a circuit, the
/// application in the model that brought it in, since the span points into the circuit's body,
/// which every application shares (`nn.circ:7:11 via mlp_digits.circ:21:19`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub span: Span,
    pub via: Option<Span>,
}

impl From<Span> for Origin {
    fn from(span: Span) -> Origin {
        Origin { span, via: None }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub elem: Elem,
    pub shape: Vec<Dim>,
    /// The source the node came from; `None` for nodes a pass made up from several.
    pub span: Option<Origin>,
    /// A name for people: a parameter's, a datum's, or the role of a loss term.
    pub label: Option<String>,
}

/// A data input of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct DataInfo {
    pub name: String,
    pub elem: Elem,
    pub shape: Vec<Dim>,
    /// CSV columns to read, or a first..last range.
    pub source: crate::check::checked::DataSource,
}

/// How a parameter gets its first value: fixed, or drawn from its prior with the graph's seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Fixed(f64),
    Draw(Prior),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Vec<u64>,
    pub prior: Prior,
    pub init: Init,
    pub update: Option<UpdateRule>,
}

/// An extra host-fed input: a tangent direction, optimizer state.
#[derive(Clone, Debug, PartialEq)]
pub struct InputInfo {
    pub name: String,
    pub shape: Vec<u64>,
}

/// One term of the loss, as second-order methods need to know it: which likelihood or prior, on
/// what. Values are named by output (`Graph::output`), so the record survives graph rewrites.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// A likelihood on data input `data`; `prediction` names the output holding the mean or logits.
    Likelihood { data: usize, dist: Likelihood, prediction: String },
    /// The prior of parameter `param`.
    ParamPrior { param: usize, prior: Prior },
    /// The prior of a hidden value, named by output.
    ActivationPrior { value: String, prior: Prior },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Likelihood {
    /// `scale` is σ: a constant, or the name of the output that predicts it.
    Normal {
        scale: Scale,
    },
    Laplace {
        scale: Scale,
    },
    Categorical,
    Bernoulli,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Scale {
    Const(f64),
    Output(String),
}

/// A named result the runtime reads back (the loss, predictions, predicted scales).
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub name: String,
    pub node: NodeId,
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    g: StableDiGraph<Node, u32>,
    pub syms: Vec<String>,
    pub data: Vec<DataInfo>,
    pub params: Vec<ParamInfo>,
    pub inputs: Vec<InputInfo>,
    /// The loss terms, for second-order methods.
    pub terms: Vec<Term>,
    /// `outputs[0]` is the total loss, a scalar; the rest are predictions.
    pub outputs: Vec<Output>,
    /// Seed of the parameter draws.
    pub seed: u64,
    /// The label of the loss's one term (`likelihood y ~ normal`) when the loss is that term's
    /// node itself, whose label is then `loss`: what `circ eval` prints for the term.
    pub loss_term: Option<String>,
}

impl SymNames for Graph {
    fn sym_name(&self, s: crate::check::types::SymId) -> &str {
        self.syms.get(s.0 as usize).map_or("?", String::as_str)
    }
}

impl Graph {
    pub fn add(&mut self, node: Node, operands: &[NodeId]) -> NodeId {
        let id = self.g.add_node(node);
        for (pos, o) in operands.iter().enumerate() {
            self.g.add_edge(o.0, id, pos as u32);
        }
        NodeId(id)
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id.0]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.g[id.0]
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.g.contains_node(id.0)
    }

    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    /// Operands in order.
    pub fn operands(&self, id: NodeId) -> Vec<NodeId> {
        let mut es: Vec<(u32, NodeId)> =
            self.g.edges_directed(id.0, Direction::Incoming).map(|e| (*e.weight(), NodeId(e.source()))).collect();
        es.sort_unstable_by_key(|e| e.0);
        es.into_iter().map(|e| e.1).collect()
    }

    /// Nodes that use `id` (each once, in id order).
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let mut us: Vec<NodeId> = self.g.neighbors_directed(id.0, Direction::Outgoing).map(NodeId).collect();
        us.sort_unstable();
        us.dedup();
        us
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.g.node_indices().map(NodeId).collect()
    }

    /// Nodes in an order where operands come first (ties by id, so the order is deterministic).
    pub fn topo_order(&self) -> Vec<NodeId> {
        // Indexed by node index (vacant slots stay 0 and are never pushed): called by every pass,
        // so no hashing and no per-node operand vectors.
        let mut indegree = vec![0u32; self.g.node_bound()];
        for e in (&self.g).edge_references() {
            indegree[e.target().index()] += 1;
        }
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<NodeId>> =
            self.g.node_indices().filter(|n| indegree[n.index()] == 0).map(|n| std::cmp::Reverse(NodeId(n))).collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(std::cmp::Reverse(n)) = ready.pop() {
            order.push(n);
            for e in self.g.edges_directed(n.0, Direction::Outgoing) {
                let d = &mut indegree[e.target().index()];
                *d -= 1;
                if *d == 0 {
                    ready.push(std::cmp::Reverse(NodeId(e.target())));
                }
            }
        }
        order
    }

    /// Makes every user of `old` (and every output naming it) use `new` instead.
    pub fn replace_uses(&mut self, old: NodeId, new: NodeId) {
        if old == new {
            return;
        }
        let edges: Vec<(NodeIndex<u32>, u32, petgraph::stable_graph::EdgeIndex<u32>)> =
            self.g.edges_directed(old.0, Direction::Outgoing).map(|e| (e.target(), *e.weight(), e.id())).collect();
        for (target, pos, e) in edges {
            self.g.remove_edge(e);
            self.g.add_edge(new.0, target, pos);
        }
        for o in &mut self.outputs {
            if o.node == old {
                o.node = new;
            }
        }
    }

    /// Replaces a node's operands (keeping its id, op and shape).
    pub fn set_operands(&mut self, id: NodeId, operands: &[NodeId]) {
        let edges: Vec<_> = self.g.edges_directed(id.0, Direction::Incoming).map(|e| e.id()).collect();
        for e in edges {
            self.g.remove_edge(e);
        }
        for (pos, o) in operands.iter().enumerate() {
            self.g.add_edge(o.0, id.0, pos as u32);
        }
    }

    pub fn remove(&mut self, id: NodeId) {
        self.g.remove_node(id.0);
    }

    /// Removes many nodes at once, in time linear in the graph. Removing nodes one by one walks,
    /// for each edge, the edge list of its other end: quadratic when the removed nodes share an
    /// operand with thousands of users (the one `0.5` of an unrolled chain after CSE). Node ids
    /// are kept (the survivors' and the vacant ones').
    pub fn remove_all(&mut self, dead: &HashSet<NodeId>) {
        if dead.is_empty() {
            return;
        }
        let g = std::mem::take(&mut self.g);
        self.g = g.filter_map_owned(|i, n| (!dead.contains(&NodeId(i))).then_some(n), |_, e| Some(e));
    }

    pub fn loss(&self) -> NodeId {
        self.outputs[0].node
    }

    pub fn output(&self, name: &str) -> Option<NodeId> {
        self.outputs.iter().find(|o| o.name == name).map(|o| o.node)
    }
}
