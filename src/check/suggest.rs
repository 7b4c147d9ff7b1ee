//! "Did you mean …?" suggestions for misspelled names.

/// The candidate closest to `name`, if it is close enough to be a likely typo. Ties go to the
/// shorter, then alphabetically first name, so suggestions do not depend on hash order.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= limit && *c != name)
        .min_by_key(|(d, c)| (*d, c.len(), *c))
        .map(|(_, c)| c)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of neighbouring
/// characters (optimal string alignment), so `reul` is one edit from `relu`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for j in 0..=b.len() {
        d[0][j] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
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
