//! Compile work grows linearly with an unrolled chain (issue 16), counted, not timed: the
//! partition's groups stay of bounded size, and the identical pieces of a chain are compiled
//! once, so the functions handed to Cranelift do not grow with the chain's length.

use circ::backend::cpu::executor::Executor;
use circ::backend::cpu::jit::compiled_functions;
use circ::passes::fusion::MAX_GROUP_NODES;

fn chain(k: usize) -> String {
    let rep = if k > 1000 {
        format!("repeat {} {{ repeat 1000 {{ let h = tanh(h) * 0.5 + h * 0.5 }} }}", k / 1000)
    } else {
        format!("repeat {k} {{ let h = tanh(h) * 0.5 + h * 0.5 }}")
    };
    format!(
        "model chain {{\n  data x: [N, 2] = csv(\"x1\" .. \"x2\")\n  data y: [N]\n  param w: [2] ~ normal(0, 1)\n  let h = x @ w\n  {rep}\n  y ~ normal(h, 1)\n}}\n"
    )
}

/// (kernels, functions compiled) of the training step of the chain of `k`.
fn work(k: usize) -> (usize, usize) {
    let checked = circ::driver::check_source("chain.circ", &chain(k));
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let rule = circ::driver::parse_update_rule("sgd(lr = 0.01)").unwrap();
    let g = circ::train::step::build(&checked.models[0], 0, &rule).graph;
    let before = compiled_functions();
    let exec = Executor::new(&g).unwrap();
    let p = exec.partition();
    assert!(p.kernels.iter().all(|k| k.nodes.len() <= MAX_GROUP_NODES + 2), "a kernel above the cap");
    (p.kernels.len(), compiled_functions() - before)
}

#[test]
fn the_pieces_of_a_long_chain_are_compiled_once() {
    let (k1, f1) = work(500);
    let (k4, f4) = work(2000);
    // Four times the chain: about four times the kernels, but no more distinct functions than
    // the shorter chain's plus a few (the pieces at the ends and the seams differ).
    assert!(k4 >= 3 * k1, "kernels {k1} → {k4}");
    assert!(f4 <= f1 + 8, "functions compiled {f1} → {f4}: identical pieces compiled again");
    assert!(f4 * 4 < k4, "functions compiled {f4} of {k4} kernels");
}
