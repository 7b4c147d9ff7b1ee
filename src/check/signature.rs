//! The signature of a checked model, as `circ check --verbose` prints it: its sizes, data,
//! parameters with shapes, priors and update rules, likelihoods, activation priors and settings.

use super::checked::*;
use super::types::ShowTy;
use std::fmt::{self, Write};

/// Formats a number the way a person would write it in a `.circ` file.
pub fn num(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        format!("{x:e}")
    } else {
        let s = format!("{x:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

pub fn prior(p: &Prior) -> String {
    match *p {
        Prior::Flat => "flat".into(),
        Prior::Normal { mu, sigma } => format!("normal({}, {})", num(mu), num(sigma)),
        Prior::Laplace { mu, b } => format!("laplace({}, {})", num(mu), num(b)),
        Prior::LogNormal { mu, sigma } => format!("lognormal({}, {})", num(mu), num(sigma)),
        Prior::Uniform { low, high } => format!("uniform({}, {})", num(low), num(high)),
    }
}

pub fn update(u: &UpdateRule) -> String {
    let args: Vec<String> = u.hyper.iter().map(|(n, v)| format!("{n} = {}", num(*v))).collect();
    format!("{}({})", u.kind.name(), args.join(", "))
}

impl fmt::Display for CheckedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = |t| ShowTy(t, self).to_string();
        writeln!(f, "model {}", self.name)?;
        if !self.syms.is_empty() {
            writeln!(f, "  sizes   {}", self.syms.join(", "))?;
        }
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for d in &self.data {
            let src = match &d.source {
                DataSource::Columns(c) if c.len() == 1 => format!("csv(\"{}\")", c[0]),
                DataSource::Columns(c) => format!("csv({} columns: \"{}\" … \"{}\")", c.len(), c[0], c[c.len() - 1]),
                DataSource::ColumnRange(a, b) => format!("csv(\"{a}\" .. \"{b}\")"),
            };
            rows.push((format!("data    {}", d.name), ty(&d.ty), src));
        }
        for p in &self.params {
            let mut s = String::new();
            if let Some(x) = p.init {
                let _ = write!(s, "= {} ", num(x));
            }
            let _ = write!(s, "~ {}", prior(&p.prior));
            if let Some(d) = &p.draw {
                let _ = write!(s, " init {}", prior(d));
            }
            if let Some(u) = &p.update {
                let _ = write!(s, "  update {}", update(u));
            }
            rows.push((format!("param   {}", p.name), ty(&p.ty), s));
        }
        for o in &self.observations {
            let data = &self.data[o.data];
            let shape = |n: NodeId| ty(&self.node(n).ty);
            let scale = |s: &Scale| match s {
                Scale::Const(x) => num(*x),
                Scale::Node(n) => format!("learned {}", shape(*n)),
            };
            let l = match &o.likelihood {
                Likelihood::Normal { mean, sigma } => {
                    format!("~ normal(mean {}, sigma {})", shape(*mean), scale(sigma))
                }
                Likelihood::Laplace { mean, b } => {
                    format!("~ laplace(mean {}, b {})", shape(*mean), scale(b))
                }
                Likelihood::Categorical { logits } => {
                    format!("~ categorical(logits {})", shape(*logits))
                }
                Likelihood::Bernoulli { logits } => {
                    format!("~ bernoulli(logits {})", shape(*logits))
                }
            };
            rows.push((format!("observe {}", data.name), ty(&data.ty), l));
        }
        for a in &self.activation_priors {
            rows.push((format!("prior   {}", a.name), ty(&self.node(a.node).ty), format!("~ {}", prior(&a.prior))));
        }
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        for (a, b, c) in rows {
            writeln!(f, "  {a:w0$}  {b:w1$}  {c}")?;
        }
        let t = &self.train;
        let mut settings = Vec::new();
        if let Some(o) = &t.optimizer {
            settings.push(format!("optimizer = {}", update(o)));
        }
        for (k, v) in [("epochs", t.epochs), ("batch", t.batch), ("seed", t.seed)] {
            if let Some(v) = v {
                settings.push(format!("{k} = {v}"));
            }
        }
        if let Some(v) = t.valid {
            settings.push(format!("valid = {}", num(v)));
        }
        if !settings.is_empty() {
            writeln!(f, "  train   {}", settings.join(", "))?;
        }
        writeln!(
            f,
            "  {}, {}, {}",
            super::expr::plural(self.param_count() as usize, "parameter"),
            super::expr::plural(self.params.len(), "tensor"),
            super::expr::plural(self.nodes.len(), "graph node")
        )
    }
}
