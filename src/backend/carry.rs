//! Outputs a training step carries into its leaves between runs (a parameter's new value, an
//! optimizer's new state), as both compiled executors keep them: the links checked once, and
//! the ones a buffer plan may write over their leaves in place.

use super::cpu::BackendError;
use crate::ir::{Graph, NodeId, Op};
use crate::kernel::Partition;

/// An output carried into a leaf between runs.
pub struct Carried {
    pub name: String,
    pub output: NodeId,
    pub leaf: NodeId,
}

/// Checks each `(output name, leaf)`: the output exists, the leaf is a parameter or an extra
/// input of the output's shape.
pub fn check(g: &Graph, links: &[(&str, NodeId)]) -> Result<Vec<Carried>, BackendError> {
    let mut carried = Vec::with_capacity(links.len());
    for (name, leaf) in links {
        let output = g
            .outputs
            .iter()
            .find(|o| o.name == *name)
            .ok_or_else(|| BackendError::Run(format!("no output `{name}` to carry")))?
            .node;
        let ok = g.node_ids().contains(leaf)
            && matches!(g.node(*leaf).op, Op::Param(_) | Op::Input(_))
            && g.node(*leaf).shape == g.node(output).shape;
        if !ok {
            return Err(BackendError::Run(format!("`{name}` cannot be carried into {leaf}")));
        }
        carried.push(Carried { name: name.to_string(), output, leaf: *leaf });
    }
    Ok(carried)
}

/// The carried outputs that may overwrite their leaves, as `(leaf, output)`: those a kernel
/// after the loss's writes, so that a non-finite loss is seen before any leaf changes.
pub fn updates(g: &Graph, p: &Partition, carried: &[Carried]) -> Vec<(NodeId, NodeId)> {
    let kernel_of = p.kernel_of();
    let Some(loss) = g.outputs.first().and_then(|o| kernel_of.get(&p.base(o.node))) else {
        return Vec::new();
    };
    carried.iter().filter(|c| kernel_of.get(&c.output).is_some_and(|k| k > loss)).map(|c| (c.leaf, c.output)).collect()
}
