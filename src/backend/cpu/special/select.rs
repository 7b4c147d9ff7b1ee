//! `kmax` and `kmax_mask`: counting scans along the last axis.

use super::*;

impl Gen<'_, '_> {
    /// Along the last axis: entry `i` is kept when fewer than `min(k, n)` entries of its row beat
    /// it (rank higher: NaN above every number; equal ones that come earlier), counted by scans
    /// that stop as soon as that many are found.
    pub(super) fn select(&mut self, k: u64, mask: bool) {
        let rank = self.special.shapes[0].len();
        let (x, y) = (self.bufs[0], self.bufs[1]);
        let rows = self.prod(0, 0..rank - 1);
        let n = self.dims[0][rank - 1];
        let kc = self.iconst(k.min(i64::MAX as u64) as i64);
        let keep = self.b.ins().umin(kc, n);
        self.counted(None, rows, 1, &mut |g, r| {
            let start = g.b.ins().imul(r, n);
            let (row, out) = (g.addr(x, start), g.addr(y, start));
            g.counted(None, n, 1, &mut |g, i| {
                let a = g.addr(row, i);
                let xi = g.b.ins().load(types::F32, input_flags(), a, 0);
                let count = g.b.declare_var(g.ptr);
                let zero = g.iconst(0);
                g.b.def_var(count, zero);
                let (number, nan, done) = (g.b.create_block(), g.b.create_block(), g.b.create_block());
                let is_nan = g.b.ins().fcmp(FloatCC::Unordered, xi, xi);
                g.b.ins().brif(is_nan, nan, &[], number, &[]);
                // A number is beaten by every NaN and every larger entry, and by equal ones
                // before it.
                g.b.switch_to_block(number);
                let after = g.b.ins().iadd_imm_s(i, 1);
                g.scan(row, zero, i, Beats::AtLeast(xi), count, keep);
                g.scan(row, after, n, Beats::Above(xi), count, keep);
                g.b.ins().jump(done, &[]);
                // A NaN only by the NaNs before it.
                g.b.switch_to_block(nan);
                g.scan(row, zero, i, Beats::Nan, count, keep);
                g.b.ins().jump(done, &[]);
                g.b.switch_to_block(done);
                let c = g.b.use_var(count);
                let kept = g.b.ins().icmp(IntCC::UnsignedLessThan, c, keep);
                let value = if mask { g.b.ins().f32const(1.0) } else { xi };
                let none = g.b.ins().f32const(0.0);
                let v = g.b.ins().select(kept, value, none);
                let a = g.addr(out, i);
                g.b.ins().store(output_flags(), v, a, 0);
            });
        });
    }

    /// Adds to `count` the entries of `row` in `lo..hi` that satisfy `beats`, four at a time then
    /// one at a time, stopping once `count` reaches `limit`.
    pub(super) fn scan(
        &mut self,
        row: Value,
        lo: Value,
        hi: Value,
        beats: Beats,
        count: cranelift_frontend::Variable,
        limit: Value,
    ) {
        let j = self.b.declare_var(self.ptr);
        self.b.def_var(j, lo);
        let splat = match beats {
            Beats::AtLeast(x) | Beats::Above(x) => Some(self.b.ins().splat(types::F32X4, x)),
            Beats::Nan => None,
        };
        if self.vectorize {
            let (header, body, exit) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
            self.b.ins().jump(header, &[]);
            self.b.switch_to_block(header);
            let at = self.b.use_var(j);
            let next = self.b.ins().iadd_imm_s(at, LANES);
            let room = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, next, hi);
            let c = self.b.use_var(count);
            let open = self.b.ins().icmp(IntCC::UnsignedLessThan, c, limit);
            let more = self.b.ins().band(room, open);
            self.b.ins().brif(more, body, &[], exit, &[]);
            self.b.switch_to_block(body);
            let a = self.addr(row, at);
            let v = self.b.ins().load(types::F32X4, input_flags(), a, 0);
            let m = self.beats(beats, v, splat);
            let bits = self.b.ins().vhigh_bits(types::I32, m);
            let ones = self.b.ins().popcnt(bits);
            let ones = self.b.ins().uextend(self.ptr, ones);
            let c = self.b.ins().iadd(c, ones);
            self.b.def_var(count, c);
            self.b.def_var(j, next);
            self.b.ins().jump(header, &[]);
            self.b.switch_to_block(exit);
        }
        let (header, body, exit) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let at = self.b.use_var(j);
        let room = self.b.ins().icmp(IntCC::UnsignedLessThan, at, hi);
        let c = self.b.use_var(count);
        let open = self.b.ins().icmp(IntCC::UnsignedLessThan, c, limit);
        let more = self.b.ins().band(room, open);
        self.b.ins().brif(more, body, &[], exit, &[]);
        self.b.switch_to_block(body);
        let a = self.addr(row, at);
        let v = self.b.ins().load(types::F32, input_flags(), a, 0);
        let m = self.beats(beats, v, None);
        let one = self.b.ins().uextend(self.ptr, m);
        let c = self.b.ins().iadd(c, one);
        self.b.def_var(count, c);
        let next = self.b.ins().iadd_imm_s(at, 1);
        self.b.def_var(j, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
    }

    /// Whether `v` (`f32` or `f32x4`, with `splat` the compared value on four lanes) beats: a
    /// mask (`i32x4`) or a flag (`i8`, 0 or 1).
    pub(super) fn beats(&mut self, beats: Beats, v: Value, splat: Option<Value>) -> Value {
        match beats {
            // x is no NaN: v ≥ x or v NaN, v > x or v NaN.
            Beats::AtLeast(x) => self.b.ins().fcmp(FloatCC::UnorderedOrGreaterThanOrEqual, v, splat.unwrap_or(x)),
            Beats::Above(x) => self.b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, v, splat.unwrap_or(x)),
            Beats::Nan => self.b.ins().fcmp(FloatCC::Unordered, v, v),
        }
    }
}
