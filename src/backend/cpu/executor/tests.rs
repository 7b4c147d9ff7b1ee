//! The executor's own promises: carried state (in place or copied), and threads repeating their bits.

mod carry {
    use super::super::*;

    /// The training step of `examples/mlp_digits.circ` with sgd, and a batch of `n` rows.
    fn step_and_batch(n: usize) -> (Graph, Vec<HostTensor>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let text = include_str!("../../../../examples/mlp_digits.circ");
        let checked = crate::driver::check_source("mlp_digits.circ", text);
        let rule = crate::driver::parse_update_rule("sgd(lr = 0.1)").expect("a rule");
        let g = crate::train::step::build(&checked.models[0], 0, &rule).graph;
        let data = |rows: usize| {
            let pixels = HostTensor::new(vec![rows, 64], (0..rows * 64).map(|i| (i * 37 % 17) as f64).collect());
            let labels = HostTensor::new(vec![rows], (0..rows).map(|i| (i % 10) as f64).collect());
            vec![pixels, labels]
        };
        let params = crate::ir::init::initial_values(&g);
        // sgd has no state: the inputs are `batch_scale` and `step`.
        let inputs = g.inputs.iter().map(|_| vec![1.0]).collect();
        (g, data(n), params, inputs)
    }

    #[test]
    fn carried_parameters_equal_a_host_round_trip_across_batch_sizes() {
        let (g, big, params0, inputs) = step_and_batch(16);
        let small: Vec<HostTensor> = crate::train::run::select(&big, &[3, 1, 4, 1, 5]);
        let links: Vec<(String, NodeId)> = g
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let leaf =
                    g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Param(i)).expect("every param is read");
                (format!("new.{}", p.name), leaf)
            })
            .collect();
        let refs: Vec<(&str, NodeId)> = links.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        let mut carried = Executor::new(&g).unwrap();
        carried.carry(&refs).unwrap();
        carried.run(&big, &params0, &inputs).unwrap();
        // Every update is the last reader of its parameter (the partition runs updates last).
        assert_eq!(carried.in_place_updates(), g.params.len(), "updates written in place");
        carried.carry(&refs).unwrap();
        let mut host = Executor::new(&g).unwrap();
        let mut params = params0.clone();
        for batch in [&big, &small, &small, &big] {
            carried.run(batch, &params0, &inputs).unwrap();
            let out = host.run(batch, &params, &inputs).unwrap();
            for (i, p) in g.params.iter().enumerate() {
                params[i] = out.get(&format!("new.{}", p.name)).unwrap().data.iter().map(|x| *x as f64).collect();
            }
            let values = carried.carried_values();
            for (i, (name, v)) in values.iter().enumerate() {
                let want: Vec<f32> = params[i].iter().map(|x| *x as f32).collect();
                assert_eq!(v, &want, "{name}");
            }
        }
        assert!(
            carried.run(&big, &params0, &inputs).unwrap().get("new.l1.w").is_none(),
            "carried outputs are not returned"
        );
    }

    /// A step whose loss is not finite stops before its first in-place update: the carried
    /// parameters keep the previous step's values.
    #[test]
    fn a_non_finite_loss_leaves_the_carried_parameters_as_they_were() {
        let (g, batch, params0, inputs) = step_and_batch(8);
        let leaf = |i: usize| g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Param(i)).unwrap();
        let names: Vec<String> = g.params.iter().map(|p| format!("new.{}", p.name)).collect();
        let refs: Vec<(&str, NodeId)> = names.iter().enumerate().map(|(i, n)| (n.as_str(), leaf(i))).collect();
        let mut exec = Executor::new(&g).unwrap();
        exec.carry(&refs).unwrap();
        exec.run(&batch, &params0, &inputs).unwrap();
        assert!(exec.in_place_updates() > 0);
        let before = exec.carried_values();
        let mut bad = batch.clone();
        bad[0].values[5] = f64::NAN;
        let out = exec.run(&bad, &params0, &inputs).unwrap();
        assert!(!out.loss().is_finite());
        assert_eq!(exec.carried_values(), before, "nothing committed");
        // And the next good step goes on from there, like a fresh executor given those values.
        let host: Vec<Vec<f64>> = before.iter().map(|(_, v)| v.iter().map(|x| *x as f64).collect()).collect();
        exec.run(&batch, &params0, &inputs).unwrap();
        let mut fresh = Executor::new(&g).unwrap();
        fresh.carry(&refs).unwrap();
        fresh.run(&batch, &host, &inputs).unwrap();
        assert_eq!(exec.carried_values(), fresh.carried_values());
    }
}

mod threads {
    use super::super::*;

    /// Big elementwise kernels run in bands of rows on two threads, and reductions over rows
    /// (column sums, the loss) into a partial result per band, added in band order: each thread
    /// count gives the same bits on every run, and two threads round within 1e-5 of one.
    #[test]
    fn bands_of_rows_repeat_their_bits_and_round_like_one_thread() {
        let text = "model wide {\n  data x: [N, 300] = csv(\"a0\" .. \"a299\")\n  data y: [N]\n  \
                    param w: [300] ~ normal(0, 1)\n  param c: [300] ~ normal(0, 1)\n  \
                    let z = tanh(x * w)\n  let s = sum(exp(x - c), axis = 0)\n  \
                    y ~ normal(sum(z, axis = 1) + sum(s) / 1000, 1)\n}\n";
        let checked = crate::driver::check_source("wide.circ", text);
        assert!(!checked.has_errors(), "{}", checked.render(false));
        let mut g = crate::ir::lower::lower(&checked.models[0], 0);
        crate::autodiff::add_param_gradients(&mut g);
        crate::passes::optimize(&mut g);
        let n = 500;
        let x = HostTensor::new(vec![n, 300], (0..n * 300).map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0).collect());
        let y = HostTensor::new(vec![n], (0..n).map(|i| (i % 7) as f64).collect());
        let params = crate::ir::init::initial_values(&g);
        let one = Options { threads: 1, ..Options::default() };
        let two = Options { threads: 2, ..Options::default() };
        let data = [x, y];
        let a = Executor::with_options(&g, &one).unwrap().run(&data, &params, &[]).unwrap();
        // 3 kernels split their rows, 3 more reduce over them (6 since 2026-11-26). Another test
        // may hold the process's 2-thread team for a moment (a run then goes serial, by design):
        // run again until one ran banded.
        let run_banded = |exec: &mut Executor| {
            for _ in 0..1000 {
                let before = exec.stats().banded_runs;
                let out = exec.run(&data, &params, &[]).unwrap();
                match exec.stats().banded_runs - before {
                    6 => return out,
                    0 => std::thread::sleep(std::time::Duration::from_millis(2)),
                    k => panic!("{k} kernels banded, 6 expected: {:?}", exec.stats()),
                }
            }
            panic!("the 2-thread team was never free");
        };
        let b = run_banded(&mut Executor::with_options(&g, &two).unwrap());
        let again = run_banded(&mut Executor::with_options(&g, &two).unwrap());
        for (((name, ta), (_, tb)), (_, tc)) in a.iter().zip(b.iter()).zip(again.iter()) {
            assert_eq!(tb.data, tc.data, "{name}: two threads, two runs");
            let scale = ta.data.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (u, v) in ta.data.iter().zip(&tb.data) {
                assert!((u - v).abs() <= 1e-5 * scale, "{name}: {u} on one thread, {v} on two");
            }
        }
    }
}
