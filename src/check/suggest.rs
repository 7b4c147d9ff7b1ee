//! "Did you mean …?" suggestions for misspelled names.

/// The candidate closest to `name`, if it is close enough to be a likely typo. Ties go to the
/// shorter, then alphabetically first name, so suggestions do not depend on hash order.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    // Typos of very long names are not worth the quadratic comparison.
    if len > MAX_NAME {
        return None;
    }
    let limit = (len / 3).max(1);
    candidates
        .into_iter()
        // The length alone rules most candidates out cheaply.
        .filter(|c| c.len().abs_diff(name.len()) <= 4 * limit && c.chars().count().abs_diff(len) <= limit)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= limit && *c != name)
        .min_by_key(|(d, c)| (*d, c.len(), *c))
        .map(|(_, c)| c)
}

/// Longest name that gets suggestions.
const MAX_NAME: usize = 64;

/// Edit distance counting insertions, deletions, substitutions and swaps of neighbouring
/// characters (optimal string alignment), so `reul` is one edit from `relu`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the table: the current one and the two before it (for swaps).
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(edit_distance("relu", "rleu"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("rlu", ["relu", "exp", "log"]), Some("relu"));
        assert_eq!(closest("reul", ["relu", "exp", "log"]), Some("relu"));
        assert_eq!(closest("sigmod", ["sigmoid", "softplus"]), Some("sigmoid"));
        assert_eq!(closest("xyz", ["relu", "exp"]), None);
    }

    #[test]
    fn ties_are_broken_by_name() {
        assert_eq!(closest("ad", ["ac", "ab"]), Some("ab"));
        assert_eq!(closest("ad", ["ab", "ac"]), Some("ab"));
    }
}
