//! Dead code elimination: removes every node no output depends on.

use crate::ir::{Graph, NodeId};
use rustc_hash::FxHashSet as HashSet;

pub fn run(g: &mut Graph) -> bool {
    let mut live: HashSet<NodeId> = HashSet::default();
    let mut stack: Vec<NodeId> = g.outputs.iter().map(|o| o.node).collect();
    while let Some(n) = stack.pop() {
        if live.insert(n) {
            stack.extend(g.operands(n));
        }
    }
    let dead: HashSet<NodeId> = g.node_ids().into_iter().filter(|n| !live.contains(n)).collect();
    g.remove_all(&dead);
    !dead.is_empty()
}
