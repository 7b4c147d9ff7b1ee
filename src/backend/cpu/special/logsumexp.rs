//! `logsumexp` along one axis: four rows (or four neighbouring columns) at a time, one per lane.

use super::*;

impl Gen<'_, '_> {
    pub(super) fn logsumexp(&mut self, axis: usize) {
        let rank = self.special.shapes[0].len();
        let (x, y) = (self.bufs[0], self.bufs[1]);
        let outer = self.prod(0, 0..axis);
        let n = self.dims[0][axis];
        if self.ones(0, axis + 1..rank) {
            if !self.vectorize {
                self.counted(None, outer, 1, &mut |g, o| {
                    let start = g.b.ins().imul(o, n);
                    let row = g.addr(x, start);
                    let v = g.logsumexp_row(row, n);
                    let a = g.addr(y, o);
                    g.b.ins().store(output_flags(), v, a, 0);
                });
                return;
            }
            // Four rows at a time, one per lane; a last block of fewer repeats its last row in
            // the lanes it lacks and stores only its own.
            let row_bytes = self.b.ins().ishl_imm_s(n, 2);
            let last = self.b.ins().iadd_imm_s(outer, -1);
            self.counted(None, outer, LANES, &mut |g, o| {
                let rows: Vec<Value> = (0..LANES)
                    .map(|k| {
                        let r = g.b.ins().iadd_imm_s(o, k);
                        let r = g.b.ins().umin(r, last);
                        let off = g.b.ins().imul(r, row_bytes);
                        g.b.ins().iadd(x, off)
                    })
                    .collect();
                let v = g.logsumexp_rows(&rows, n);
                let a = g.addr(y, o);
                let end = g.b.ins().iadd_imm_s(o, LANES);
                let whole = g.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, outer);
                let (all, some, done) = (g.b.create_block(), g.b.create_block(), g.b.create_block());
                g.b.ins().brif(whole, all, &[], some, &[]);
                g.b.switch_to_block(all);
                g.b.ins().store(output_flags(), v, a, 0);
                g.b.ins().jump(done, &[]);
                g.b.switch_to_block(some);
                let have = g.b.ins().isub(outer, o);
                let first = g.b.ins().extractlane(v, 0);
                g.b.ins().store(output_flags(), first, a, 0);
                for k in 1..LANES {
                    let (store, next) = (g.b.create_block(), g.b.create_block());
                    let inside = g.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, have, k);
                    g.b.ins().brif(inside, store, &[], next, &[]);
                    g.b.switch_to_block(store);
                    let lane = g.b.ins().extractlane(v, k as u8);
                    g.b.ins().store(output_flags(), lane, a, (4 * k) as i32);
                    g.b.ins().jump(next, &[]);
                    g.b.switch_to_block(next);
                }
                g.b.ins().jump(done, &[]);
                g.b.switch_to_block(done);
            });
            return;
        }
        let inner = self.prod(0, axis + 1..rank);
        let stride = self.b.ins().ishl_imm_s(inner, 2);
        let plane = self.b.ins().imul(n, inner);
        self.counted(None, outer, 1, &mut |g, o| {
            let xo = g.b.ins().imul(o, plane);
            let xrow = g.addr(x, xo);
            let yo = g.b.ins().imul(o, inner);
            let yrow = g.addr(y, yo);
            let nv = g.vector_end(inner);
            if let Some(nv) = nv {
                g.counted(None, nv, LANES, &mut |g, j| {
                    let (src, dst) = (g.addr(xrow, j), g.addr(yrow, j));
                    g.logsumexp_columns(Lanes::Vector, src, stride, n, dst);
                });
            }
            g.counted(nv, inner, 1, &mut |g, j| {
                let (src, dst) = (g.addr(xrow, j), g.addr(yrow, j));
                g.logsumexp_columns(Lanes::Scalar, src, stride, n, dst);
            });
        });
    }

    /// logsumexp of four rows of `n` contiguous elements, as the lanes of an `f32x4`. The maximum:
    /// four lanes along each row, then the four row maxima transposed into lanes and combined,
    /// then the last `n mod 4` columns gathered. The sum: columns of the four rows, so that each
    /// lane adds its row's terms one after another in the interpreter's order; one vector `log`
    /// for the four rows.
    pub(super) fn logsumexp_rows(&mut self, rows: &[Value], n: Value) -> Value {
        let nv = self.b.ins().band_imm_s(n, !(LANES - 1));
        let minus_inf = self.splat(f32::NEG_INFINITY);
        let accs: Vec<_> = rows
            .iter()
            .map(|_| {
                let v = self.b.declare_var(types::F32X4);
                self.b.def_var(v, minus_inf);
                v
            })
            .collect();
        self.counted(None, nv, LANES, &mut |g, c| {
            for (row, acc) in rows.iter().zip(&accs) {
                let a = g.addr(*row, c);
                let v = g.b.ins().load(types::F32X4, input_flags(), a, 0);
                let m = g.b.use_var(*acc);
                let m = g.b.ins().fmax(m, v);
                g.b.def_var(*acc, m);
            }
        });
        let per_row: Vec<Value> = accs.iter().map(|a| self.b.use_var(*a)).collect();
        let t = self.transpose4(&per_row);
        let lo = self.b.ins().fmax(t[0], t[1]);
        let hi = self.b.ins().fmax(t[2], t[3]);
        let m0 = self.b.ins().fmax(lo, hi);
        let max = self.b.declare_var(types::F32X4);
        self.b.def_var(max, m0);
        self.counted(Some(nv), n, 1, &mut |g, c| {
            let v = g.gather(rows, c);
            let m = g.b.use_var(max);
            let m = g.b.ins().fmax(m, v);
            g.b.def_var(max, m);
        });
        let m = self.b.use_var(max);
        // Σ exp(x − m), by chunks of four columns: a tile transposed in registers (or, for the
        // last `n mod 4` columns, gathered element by element) into a stack slot of four columns,
        // then one column after another out of it. One `exp` in the code, for code size.
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 64, 4));
        let base = self.b.ins().stack_addr(self.ptr, slot, 0);
        let sum = self.b.declare_var(types::F32X4);
        let zero = self.splat(0.0);
        self.b.def_var(sum, zero);
        self.counted(None, n, LANES, &mut |g, c| {
            let (tile, gather, consume) = (g.b.create_block(), g.b.create_block(), g.b.create_block());
            g.b.append_block_param(consume, g.ptr);
            let end = g.b.ins().iadd_imm_s(c, LANES);
            let whole = g.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, n);
            g.b.ins().brif(whole, tile, &[], gather, &[]);
            g.b.switch_to_block(tile);
            let vs: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let a = g.addr(*row, c);
                    g.b.ins().load(types::F32X4, input_flags(), a, 0)
                })
                .collect();
            for (k, column) in g.transpose4(&vs).into_iter().enumerate() {
                g.b.ins().store(output_flags(), column, base, (16 * k) as i32);
            }
            let four = g.iconst(LANES);
            g.b.ins().jump(consume, &[four.into()]);
            g.b.switch_to_block(gather);
            let left = g.b.ins().isub(n, c);
            g.counted(None, left, 1, &mut |g, k| {
                let col = g.b.ins().iadd(c, k);
                let to = g.b.ins().ishl_imm_s(k, 4);
                let to = g.b.ins().iadd(base, to);
                for (r, row) in rows.iter().enumerate() {
                    let a = g.addr(*row, col);
                    let v = g.b.ins().load(types::F32, input_flags(), a, 0);
                    g.b.ins().store(output_flags(), v, to, (4 * r) as i32);
                }
            });
            g.b.ins().jump(consume, &[left.into()]);
            g.b.switch_to_block(consume);
            let count = g.b.block_params(consume)[0];
            g.counted(None, count, 1, &mut |g, k| {
                let at = g.b.ins().ishl_imm_s(k, 4);
                let at = g.b.ins().iadd(base, at);
                let column = g.b.ins().load(types::F32X4, output_flags(), at, 0);
                let d = g.b.ins().fsub(column, m);
                let e = g.exp(Lanes::Vector, d);
                let s = g.b.use_var(sum);
                let s = g.b.ins().fadd(s, e);
                g.b.def_var(sum, s);
            });
        });
        let s = self.b.use_var(sum);
        self.finish(Lanes::Vector, m, s)
    }

    /// Element `c` of each of four rows, as the lanes of an `f32x4`.
    pub(super) fn gather(&mut self, rows: &[Value], c: Value) -> Value {
        let mut v = None;
        for (k, row) in rows.iter().enumerate() {
            let a = self.addr(*row, c);
            let s = self.b.ins().load(types::F32, input_flags(), a, 0);
            v = Some(match v {
                None => self.b.ins().splat(types::F32X4, s),
                Some(v) => self.b.ins().insertlane(v, s, k as u8),
            });
        }
        v.expect("four rows")
    }

    /// logsumexp of the `n` contiguous elements at `row`, one at a time (vector code off).
    pub(super) fn logsumexp_row(&mut self, row: Value, n: Value) -> Value {
        let bytes = self.iconst(4);
        self.logsumexp_columns_value(Lanes::Scalar, row, bytes, n)
    }

    /// logsumexp of one or four neighbouring columns starting at `src`, `n` rows `stride` bytes
    /// apart, stored at `dst`: each lane in the interpreter's order.
    pub(super) fn logsumexp_columns(&mut self, lanes: Lanes, src: Value, stride: Value, n: Value, dst: Value) {
        let r = self.logsumexp_columns_value(lanes, src, stride, n);
        self.b.ins().store(output_flags(), r, dst, 0);
    }

    /// logsumexp of one or four neighbouring columns at `src`, `n` rows `stride` bytes apart.
    pub(super) fn logsumexp_columns_value(&mut self, lanes: Lanes, src: Value, stride: Value, n: Value) -> Value {
        let ty = lanes.ty();
        let max = self.b.declare_var(ty);
        let init = self.constant(lanes, f32::NEG_INFINITY);
        self.b.def_var(max, init);
        self.counted(None, n, 1, &mut |g, i| {
            let off = g.b.ins().imul(i, stride);
            let a = g.b.ins().iadd(src, off);
            let v = g.b.ins().load(ty, input_flags(), a, 0);
            let m = g.b.use_var(max);
            let m = g.b.ins().fmax(m, v);
            g.b.def_var(max, m);
        });
        let m = self.b.use_var(max);
        let sum = self.b.declare_var(ty);
        let zero = self.constant(lanes, 0.0);
        self.b.def_var(sum, zero);
        self.counted(None, n, 1, &mut |g, i| {
            let off = g.b.ins().imul(i, stride);
            let a = g.b.ins().iadd(src, off);
            let v = g.b.ins().load(ty, input_flags(), a, 0);
            let d = g.b.ins().fsub(v, m);
            let e = g.exp(lanes, d);
            let s = g.b.use_var(sum);
            let s = g.b.ins().fadd(s, e);
            g.b.def_var(sum, s);
        });
        let s = self.b.use_var(sum);
        self.finish(lanes, m, s)
    }
}
