/// A shell-style pattern where `*` matches any run of characters (including
/// none) and `?` any one character; everything else matches itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, text: &str) -> bool {
        // Most patterns (the gateway's tool table) are plain names or ASCII:
        // no allocation for them.
        if !self.0.contains(['*', '?']) {
            return self.0 == text;
        }
        if self.0.is_ascii() && text.is_ascii() {
            return matches_units(self.0.as_bytes(), text.as_bytes(), b'*', b'?');
        }
        let p: Vec<char> = self.0.chars().collect();
        let t: Vec<char> = text.chars().collect();
        matches_units(&p, &t, '*', '?')
    }
}

/// The matcher over characters (or bytes, for ASCII): iterative, with a
/// single backtrack point, so linear in practice and never exponential.
fn matches_units<T: PartialEq + Copy>(p: &[T], t: &[T], star_unit: T, any: T) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == any || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == star_unit {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == star_unit)
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn stars_and_question_marks_match_as_in_a_shell() {
        let g = Glob::new("https://claude.ai/*");
        assert!(g.matches("https://claude.ai/api/mcp/auth_callback"));
        assert!(!g.matches("https://claude.ai.evil.com/x"));
        assert!(Glob::new("http://127.0.0.1:*").matches("http://127.0.0.1:33418/callback"));
        assert!(Glob::new("a?c").matches("abc"));
        assert!(!Glob::new("a?c").matches("ac"));
        assert!(Glob::new("*").matches(""));
        assert!(!Glob::new("exact").matches("exact/"));
        assert!(Glob::new("*a*b*c*").matches("xxaxxbxxcxx"));
        // `?` is one character, not one byte.
        assert!(Glob::new("a?c").matches("aéc"));
        assert!(Glob::new("caf?").matches("café"));
        assert!(!Glob::new("caf??").matches("café"));
        assert!(Glob::new("é*").matches("été") && !Glob::new("é*").matches("ete"));
    }
}
