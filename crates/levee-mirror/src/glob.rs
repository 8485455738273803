//! `exclude` patterns: `*` matches any run of bytes (`/` included), `?`
//! one byte. A pattern with a `/` is matched against the whole path from
//! the root (a leading `/` is optional); one without, against the file name.

#[derive(Debug, Clone, Default)]
pub struct Patterns {
    list: Vec<(bool, Vec<u8>)>,
}

impl Patterns {
    pub fn new(patterns: &[String]) -> Patterns {
        Patterns {
            list: patterns
                .iter()
                .map(|p| {
                    let whole = p.contains('/');
                    (whole, p.trim_start_matches('/').as_bytes().to_vec())
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether `path` (relative to the root) matches any pattern.
    pub fn matches(&self, path: &[u8]) -> bool {
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        self.list
            .iter()
            .any(|(whole, p)| glob(p, if *whole { path } else { name }))
    }
}

/// Iterative wildcard matching with one backtrack point: linear in
/// practice, never exponential.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_whole_paths() {
        let p = Patterns::new(&["*.asc".into(), "/repodata/*".into(), "SHA256SUM?".into()]);
        assert!(p.matches(b"a/b/file.iso.asc"));
        assert!(!p.matches(b"a/b/file.iso"));
        assert!(p.matches(b"repodata/x/repomd.xml"));
        assert!(!p.matches(b"a/repodata/repomd.xml"));
        assert!(p.matches(b"rel/SHA256SUMS"));
        assert!(!p.matches(b"rel/SHA256SUMS.gpg"));
        assert!(glob(b"a*b*c", b"aXXbYYc") && !glob(b"a*b*c", b"aXXbYY"));
        assert!(glob(b"**", b"") && !glob(b"?", b""));
    }
}
