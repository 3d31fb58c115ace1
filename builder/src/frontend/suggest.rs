//! "did you mean" hints for misspelt instructions and flags.

/// The candidate closest to `word` (case-insensitive edit distance of at most 2, and less than
/// the word's length), if any.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (distance(&w, &c.to_ascii_lowercase()), *c))
        .filter(|&(d, _)| d <= 2 && d < w.chars().count())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Appends ` (did you mean X?)` when a close candidate exists.
pub(crate) fn hint(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates)
        .map(|c| format!(" (did you mean {c}?)"))
        .unwrap_or_default()
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("FORM", &["FROM", "RUN"]), Some("FROM"));
        assert_eq!(closest("chmown", &["chown", "chmod"]), Some("chown"));
        assert_eq!(closest("zzzzzz", &["FROM", "RUN"]), None);
        assert_eq!(hint("ab", &["xy"]), "");
    }
}
