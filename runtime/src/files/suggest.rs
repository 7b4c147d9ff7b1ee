//! "Did you mean …?": the one closest-name helper of circ, for misspelled names in a model (the
//! checker) and missing column names in a CSV header. The distance is `strsim`'s optimal string
//! alignment over characters (insertions, deletions, substitutions and swaps of two neighbours
//! each count one), so `reul` is one edit from `relu`.

/// Longest name that gets suggestions: typos of very long names are not worth the quadratic
/// comparison.
const MAX_NAME: usize = 64;

/// The candidate closest to `name`, if it is close enough to be a likely typo: at most one edit
/// per three characters of `name`, or the same name in another case. `name` itself is never
/// suggested. Among equally close candidates: the one sharing the longest prefix with `name`,
/// then the shorter, then the alphabetically first, so suggestions do not depend on the order of
/// the candidates (a hash map's, a header's).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    if len > MAX_NAME {
        return None;
    }
    let lower = name.to_lowercase();
    let limit = (len / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        // The length alone rules most candidates out cheaply (a name in another case has the
        // same number of characters, nearly always).
        .filter(|c| c.len().abs_diff(name.len()) <= 4 * limit && c.chars().count().abs_diff(len) <= limit)
        .map(|c| {
            let d = if c.to_lowercase() == lower { 0 } else { strsim::osa_distance(name, c) };
            (d, c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, std::cmp::Reverse(common_prefix(name, c)), c.len(), *c))
        .map(|(_, c)| c)
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(strsim::osa_distance("relu", "rleu"), 1);
        assert_eq!(strsim::osa_distance("kitten", "sitting"), 3);
        assert_eq!(closest("rlu", ["relu", "exp", "log"]), Some("relu"));
        assert_eq!(closest("reul", ["relu", "exp", "log"]), Some("relu"));
        assert_eq!(closest("sigmod", ["sigmoid", "softplus"]), Some("sigmoid"));
        assert_eq!(closest("xyz", ["relu", "exp"]), None);
        assert_eq!(closest("relu", ["relu"]), None);
        assert_eq!(closest(&"a".repeat(65), ["a".repeat(64).as_str()]), None);
    }

    #[test]
    fn another_case_always_qualifies() {
        assert_eq!(closest("PETAL_LENGTH", ["petal_width", "petal_length"]), Some("petal_length"));
        assert_eq!(closest("Xy", ["xy", "Xz"]), Some("xy"));
    }

    #[test]
    fn ties_do_not_depend_on_order() {
        assert_eq!(closest("ad", ["ac", "ab"]), Some("ab"));
        assert_eq!(closest("ad", ["ab", "ac"]), Some("ab"));
        // The longer shared prefix first: `pixel_1` is as far from `pixel_10` as `pixel_0`.
        assert_eq!(closest("pixel_1", ["pixel_0", "pixel_10"]), Some("pixel_10"));
    }
}
