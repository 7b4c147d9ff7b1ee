//! `one_hot` and the copies: `transpose`, `slice`, `embed`, `concat`.

use super::*;

impl Gen<'_, '_> {
    pub(super) fn one_hot(&mut self, classes: u64) {
        let rank = self.special.shapes[0].len();
        let (x, y) = (self.bufs[0], self.bufs[1]);
        let n = self.prod(0, 0..rank);
        let c = self.iconst(classes as i64);
        let total = self.b.ins().imul(n, c);
        self.fill(y, total, 0.0);
        let one = self.b.ins().f32const(1.0);
        let zero = self.b.ins().f64const(0.0);
        let limit = self.b.ins().f64const(classes as f64);
        self.counted(None, n, 1, &mut |g, i| {
            let a = g.addr(x, i);
            let l = g.b.ins().load(types::F32, input_flags(), a, 0);
            let l = g.b.ins().fpromote(types::F64, l);
            let low = g.b.ins().fcmp(FloatCC::GreaterThanOrEqual, l, zero);
            let high = g.b.ins().fcmp(FloatCC::LessThan, l, limit);
            let k = g.b.ins().fcvt_to_sint_sat(g.ptr, l);
            let back = g.b.ins().fcvt_from_sint(types::F64, k);
            let whole = g.b.ins().fcmp(FloatCC::Equal, back, l);
            let ok = g.b.ins().band(low, high);
            let ok = g.b.ins().band(ok, whole);
            let (set, done) = (g.b.create_block(), g.b.create_block());
            g.b.ins().brif(ok, set, &[], done, &[]);
            g.b.switch_to_block(set);
            let row = g.b.ins().imul(i, c);
            let at = g.b.ins().iadd(row, k);
            let a = g.addr(y, at);
            g.b.ins().store(output_flags(), one, a, 0);
            g.b.ins().jump(done, &[]);
            g.b.switch_to_block(done);
        });
    }

    // -----------------------------------------------------------------------------------------
    // Copies

    /// Copies through the loop nest `axes` (outermost first) from `src + 4·src_base` to
    /// `dst + 4·dst_base`. `contiguous`: the innermost axis advances both sides by 1 (four lanes
    /// at a time then).
    pub(super) fn copy(
        &mut self,
        src: Value,
        src_base: Value,
        dst: Value,
        dst_base: Value,
        axes: &[Axis],
        contiguous: bool,
    ) {
        let s = self.addr(src, src_base);
        let d = self.addr(dst, dst_base);
        self.copy_nest(s, d, axes, contiguous);
    }

    pub(super) fn copy_nest(&mut self, src: Value, dst: Value, axes: &[Axis], contiguous: bool) {
        let Some((axis, rest)) = axes.split_first() else {
            let v = self.b.ins().load(types::F32, input_flags(), src, 0);
            self.b.ins().store(output_flags(), v, dst, 0);
            return;
        };
        if rest.is_empty() {
            return self.copy_inner(src, dst, *axis, None, contiguous);
        }
        if rest.len() == 1 && !contiguous {
            // A strided inner loop: through 4×4 tiles when both loops are long enough.
            return self.copy_inner(src, dst, rest[0], Some(*axis), false);
        }
        let (sb, db) = (self.b.ins().ishl_imm_s(axis.src, 2), self.b.ins().ishl_imm_s(axis.dst, 2));
        self.counted(None, axis.extent, 1, &mut |g, i| {
            let so = g.b.ins().imul(i, sb);
            let s = g.b.ins().iadd(src, so);
            let dof = g.b.ins().imul(i, db);
            let d = g.b.ins().iadd(dst, dof);
            g.copy_nest(s, d, rest, contiguous);
        });
    }

    /// The innermost loop of a copy (`axis`), inside `outer` when given (a strided copy of two
    /// loops, transposed through 4×4 tiles).
    pub(super) fn copy_inner(&mut self, src: Value, dst: Value, axis: Axis, outer: Option<Axis>, contiguous: bool) {
        if contiguous {
            // Long runs through the C library's `memcpy` (wider moves than `f32x4`), short ones
            // in the loop.
            let (call, small, done) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
            let long = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, axis.extent, MEMCPY_MIN);
            self.b.ins().brif(long, call, &[], small, &[]);
            self.b.switch_to_block(call);
            let bytes = self.b.ins().ishl_imm_s(axis.extent, 2);
            self.b.call_memcpy(self.config, dst, src, bytes);
            self.b.ins().jump(done, &[]);
            self.b.switch_to_block(small);
            let nv = self.vector_end(axis.extent);
            if let Some(nv) = nv {
                self.counted(None, nv, LANES, &mut |g, i| {
                    let (s, d) = (g.addr(src, i), g.addr(dst, i));
                    let v = g.b.ins().load(types::F32X4, input_flags(), s, 0);
                    g.b.ins().store(output_flags(), v, d, 0);
                });
            }
            self.counted(nv, axis.extent, 1, &mut |g, i| {
                let (s, d) = (g.addr(src, i), g.addr(dst, i));
                let v = g.b.ins().load(types::F32, input_flags(), s, 0);
                g.b.ins().store(output_flags(), v, d, 0);
            });
            self.b.ins().jump(done, &[]);
            self.b.switch_to_block(done);
            return;
        }
        let (sb, db) = (self.b.ins().ishl_imm_s(axis.src, 2), self.b.ins().ishl_imm_s(axis.dst, 2));
        let Some(outer) = outer else {
            self.strided_row(src, dst, sb, db, None, axis.extent);
            return;
        };
        let (osb, odb) = (self.b.ins().ishl_imm_s(outer.src, 2), self.b.ins().ishl_imm_s(outer.dst, 2));
        // Rows of the outer loop four at a time (tiles when vectorizing), then one at a time.
        let ov = self.vector_end(outer.extent);
        if let Some(ov) = ov {
            let iv = self.vector_end(axis.extent).expect("vectorizing");
            self.counted(None, ov, LANES, &mut |g, o| {
                let so = g.b.ins().imul(o, osb);
                let s = g.b.ins().iadd(src, so);
                let dof = g.b.ins().imul(o, odb);
                let d = g.b.ins().iadd(dst, dof);
                g.counted(None, iv, LANES, &mut |g, i| {
                    let si = g.b.ins().imul(i, sb);
                    let s = g.b.ins().iadd(s, si);
                    let di = g.b.ins().imul(i, db);
                    let d = g.b.ins().iadd(d, di);
                    g.tile(s, d, sb, db, osb, odb);
                });
                // The rest of the four rows, element by element.
                for r in 0..LANES {
                    let so = g.b.ins().imul_imm_s(osb, r);
                    let s = g.b.ins().iadd(s, so);
                    let dof = g.b.ins().imul_imm_s(odb, r);
                    let d = g.b.ins().iadd(d, dof);
                    g.strided_row(s, d, sb, db, Some(iv), axis.extent);
                }
            });
        }
        self.counted(ov, outer.extent, 1, &mut |g, o| {
            let so = g.b.ins().imul(o, osb);
            let s = g.b.ins().iadd(src, so);
            let dof = g.b.ins().imul(o, odb);
            let d = g.b.ins().iadd(dst, dof);
            g.strided_row(s, d, sb, db, None, axis.extent);
        });
    }

    /// Elements `start..n` of one row, `sb` and `db` bytes apart on each side.
    pub(super) fn strided_row(&mut self, src: Value, dst: Value, sb: Value, db: Value, start: Option<Value>, n: Value) {
        self.counted(start, n, 1, &mut |g, i| {
            let so = g.b.ins().imul(i, sb);
            let s = g.b.ins().iadd(src, so);
            let v = g.b.ins().load(types::F32, input_flags(), s, 0);
            let dof = g.b.ins().imul(i, db);
            let d = g.b.ins().iadd(dst, dof);
            g.b.ins().store(output_flags(), v, d, 0);
        });
    }

    /// A 4×4 tile of a strided copy: element (r, i) of the tile (r along the outer loop, `osb`,
    /// `odb` bytes apart; i along the inner, `sb`, `db` apart) goes from `src` to `dst`. Where the
    /// source is contiguous along the outer loop and the destination along the inner one (a
    /// transpose's common case), it loads four rows as vectors, transposes them in registers and
    /// stores four vectors; otherwise element by element.
    pub(super) fn tile(&mut self, src: Value, dst: Value, sb: Value, db: Value, osb: Value, odb: Value) {
        let four = self.iconst(4);
        let src_rows = self.b.ins().icmp(IntCC::Equal, osb, four);
        let dst_rows = self.b.ins().icmp(IntCC::Equal, db, four);
        let fast = self.b.ins().band(src_rows, dst_rows);
        let (vector, scalar, done) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.ins().brif(fast, vector, &[], scalar, &[]);
        self.b.switch_to_block(vector);
        // Source: for each inner index i, the four outer elements r = 0..3 are contiguous.
        let cols: Vec<Value> = (0..LANES)
            .map(|i| {
                let off = self.b.ins().imul_imm_s(sb, i);
                let a = self.b.ins().iadd(src, off);
                self.b.ins().load(types::F32X4, input_flags(), a, 0)
            })
            .collect();
        // Destination: for each r, the four inner elements i = 0..3 are contiguous: row r of the
        // transposed tile.
        let rows = self.transpose4(&cols);
        for (r, v) in rows.into_iter().enumerate() {
            let off = self.b.ins().imul_imm_s(odb, r as i64);
            let a = self.b.ins().iadd(dst, off);
            self.b.ins().store(output_flags(), v, a, 0);
        }
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(scalar);
        for r in 0..LANES {
            for i in 0..LANES {
                let so = self.b.ins().imul_imm_s(osb, r);
                let si = self.b.ins().imul_imm_s(sb, i);
                let s = self.b.ins().iadd(src, so);
                let s = self.b.ins().iadd(s, si);
                let v = self.b.ins().load(types::F32, input_flags(), s, 0);
                let dof = self.b.ins().imul_imm_s(odb, r);
                let di = self.b.ins().imul_imm_s(db, i);
                let d = self.b.ins().iadd(dst, dof);
                let d = self.b.ins().iadd(d, di);
                self.b.ins().store(output_flags(), v, d, 0);
            }
        }
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// The 4×4 transpose of four `f32x4` rows.
    pub(super) fn transpose4(&mut self, v: &[Value]) -> Vec<Value> {
        // t0 = (a0 b0 a1 b1), t1 = (c0 d0 c1 d1), t2 = (a2 b2 a3 b3), t3 = (c2 d2 c3 d3).
        let t0 = self.shuffle(v[0], v[1], [0, 4, 1, 5]);
        let t1 = self.shuffle(v[2], v[3], [0, 4, 1, 5]);
        let t2 = self.shuffle(v[0], v[1], [2, 6, 3, 7]);
        let t3 = self.shuffle(v[2], v[3], [2, 6, 3, 7]);
        vec![
            self.shuffle(t0, t1, [0, 1, 4, 5]),
            self.shuffle(t0, t1, [2, 3, 6, 7]),
            self.shuffle(t2, t3, [0, 1, 4, 5]),
            self.shuffle(t2, t3, [2, 3, 6, 7]),
        ]
    }

    /// `f32x4` lanes `[a, b][k]` for the four indices `k` (0–3 from `a`, 4–7 from `b`).
    pub(super) fn shuffle(&mut self, a: Value, b: Value, k: [u8; 4]) -> Value {
        let bytes: Vec<u8> = k.iter().flat_map(|k| (0..4).map(move |i| 4 * k + i)).collect();
        let mask = self.b.func.dfg.immediates.push(cranelift_codegen::ir::ConstantData::from(bytes));
        let little = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
        let a = self.b.ins().bitcast(types::I8X16, little, a);
        let b = self.b.ins().bitcast(types::I8X16, little, b);
        let r = self.b.ins().shuffle(a, b, mask);
        self.b.ins().bitcast(types::F32X4, little, r)
    }

    /// Dense strides of the loops `extents` (innermost 1).
    pub(super) fn dense(&mut self, extents: &[Value]) -> Vec<Value> {
        let mut out = vec![self.iconst(1); extents.len()];
        for k in (0..extents.len().saturating_sub(1)).rev() {
            out[k] = self.b.ins().imul(out[k + 1], extents[k + 1]);
        }
        out
    }

    pub(super) fn transpose(&mut self, perm: &[usize]) {
        let rank = perm.len();
        // Input axes of known size 1 change nothing; runs of axes that stay neighbours, in order,
        // are one loop.
        let kept: Vec<usize> = (0..rank).filter(|a| self.known(0, *a) != Some(1)).collect();
        let order: Vec<usize> = perm.iter().copied().filter(|p| kept.contains(p)).collect();
        let place = |a: usize| kept.iter().position(|k| *k == a).expect("a kept axis");
        let mut runs: Vec<Vec<usize>> = Vec::new();
        for a in order {
            match runs.last_mut() {
                Some(run) if place(a) == place(run[run.len() - 1]) + 1 => run.push(a),
                _ => runs.push(vec![a]),
            }
        }
        let mut extents = Vec::new();
        let mut strides = Vec::new();
        for run in &runs {
            let (first, last) = (run[0], run[run.len() - 1]);
            extents.push(self.prod(0, first..last + 1));
            strides.push(self.prod(0, last + 1..rank));
        }
        let dst = self.dense(&extents);
        let axes: Vec<Axis> =
            (0..runs.len()).map(|k| Axis { extent: extents[k], src: strides[k], dst: dst[k] }).collect();
        let contiguous = runs.last().is_some_and(|run| run.last() == kept.last());
        let zero = self.iconst(0);
        let (x, y) = (self.bufs[0], self.bufs[1]);
        self.copy(x, zero, y, zero, &axes, contiguous);
    }

    /// A slice (`embed` false: from the operand, the full shape, into the dense result) or an
    /// embed (`embed` true: zeros, then the dense operand into the full-shaped result).
    pub(super) fn slice(&mut self, items: &[SliceItem], embed: bool) {
        let (full, part) = if embed { (1, 0) } else { (0, 1) };
        let rank = self.special.shapes[full].len();
        let mut base = self.iconst(0);
        let mut loops: Vec<(Value, Value)> = Vec::new();
        // The axis of the last range, whose loop is contiguous when the axes after it are all 1.
        let mut last_range = None;
        let mut k = 0;
        for (a, item) in items.iter().enumerate() {
            let p = match *item {
                SliceItem::At(p) | SliceItem::Range { start: p, .. } => p,
            };
            let pos = if p >= 0 {
                self.iconst(p)
            } else {
                let n = self.dims[full][a];
                self.b.ins().iadd_imm_s(n, p)
            };
            let stride = self.prod(full, a + 1..rank);
            let off = self.b.ins().imul(pos, stride);
            base = self.b.ins().iadd(base, off);
            if matches!(item, SliceItem::Range { .. }) {
                loops.push((self.dims[part][k], stride));
                last_range = Some(a);
                k += 1;
            }
        }
        let mut contiguous = last_range.is_some_and(|a| self.ones(full, a + 1..rank));
        if items.len() < rank || items.is_empty() {
            // The axes after the items are whole: one contiguous run, which the last range joins.
            let whole = self.prod(full, items.len()..rank);
            match (items.last(), loops.last_mut()) {
                (Some(SliceItem::Range { .. }), Some(last)) => {
                    *last = (self.b.ins().imul(last.0, whole), self.iconst(1));
                }
                _ => {
                    let one = self.iconst(1);
                    loops.push((whole, one));
                }
            }
            contiguous = true;
        }
        let extents: Vec<Value> = loops.iter().map(|l| l.0).collect();
        let dense = self.dense(&extents);
        let zero = self.iconst(0);
        let (src, dst) = (self.bufs[0], self.bufs[1]);
        if embed {
            let len = self.prod(1, 0..rank);
            self.fill(dst, len, 0.0);
            let axes: Vec<Axis> =
                loops.iter().zip(&dense).map(|((e, s), d)| Axis { extent: *e, src: *d, dst: *s }).collect();
            self.copy(src, zero, dst, base, &axes, contiguous);
        } else {
            let axes: Vec<Axis> =
                loops.iter().zip(&dense).map(|((e, s), d)| Axis { extent: *e, src: *s, dst: *d }).collect();
            self.copy(src, base, dst, zero, &axes, contiguous);
        }
    }

    pub(super) fn concat(&mut self, axis: usize) {
        let m = self.special.shapes.len() - 1;
        let rank = self.special.shapes[m].len();
        let outer_one = self.ones(m, 0..axis);
        let outer = self.prod(m, 0..axis);
        let total = self.prod(m, axis..rank);
        let one = self.iconst(1);
        let mut offset = self.iconst(0);
        for i in 0..m {
            let chunk = self.prod(i, axis..rank);
            let row = Axis { extent: chunk, src: one, dst: one };
            let axes = if outer_one { vec![row] } else { vec![Axis { extent: outer, src: chunk, dst: total }, row] };
            let (x, y) = (self.bufs[i], self.bufs[m]);
            let zero = self.iconst(0);
            self.copy(x, zero, y, offset, &axes, true);
            offset = self.b.ins().iadd(offset, chunk);
        }
    }
}
