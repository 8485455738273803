//! The TSIG key file (`[dns] tsig_keys`), in BIND's syntax so the output of
//! `tsig-keygen` and a secondary's `key` statement can be the same text:
//!
//! ```text
//! key "xfer" {
//!     algorithm hmac-sha256;
//!     secret "base64...";
//! };
//! ```
//!
//! A parser without I/O; comments (`#`, `//`, `/* */`) are skipped.

use base64::Engine;
use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::Name;

/// One key: its name (lower case, no final dot), algorithm and secret.
#[derive(Clone)]
pub struct Key {
    pub name: String,
    pub algorithm: TsigAlgorithm,
    pub secret: Vec<u8>,
}

/// The secret never reaches a log line.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm.to_string())
            .finish_non_exhaustive()
    }
}

impl Key {
    /// The key's name as the wire carries it.
    pub fn wire_name(&self) -> Name {
        let mut n = Name::from_ascii(&self.name).unwrap_or_default();
        n.set_fqdn(true);
        n
    }
}

/// Reads every key in `text`; the first problem is reported with its line.
pub fn parse(text: &str) -> Result<Vec<Key>, String> {
    let tokens = tokenize(text)?;
    let mut keys = Vec::new();
    let mut i = 0;
    let at = |i: usize| tokens.get(i).map_or(0, |t| t.1);
    let want = |i: usize, what: &str| -> Result<(), String> {
        match tokens.get(i) {
            Some((t, _)) if t == what => Ok(()),
            Some((t, line)) => Err(format!("line {line}: expected `{what}`, found `{t}`")),
            None => Err(format!("the file ends where `{what}` was expected")),
        }
    };
    while i < tokens.len() {
        want(i, "key")?;
        let line = at(i);
        let name = tokens
            .get(i + 1)
            .map(|t| t.0.trim_end_matches('.').to_ascii_lowercase())
            .ok_or("the file ends after `key`")?;
        if crate::zone::name(&name).is_none() {
            return Err(format!("line {line}: `{name}` is not a key name"));
        }
        want(i + 2, "{")?;
        i += 3;
        let (mut algorithm, mut secret) = (None, None);
        while tokens.get(i).is_some_and(|t| t.0 != "}") {
            let (word, line) = &tokens[i];
            let value = tokens.get(i + 1).map(|t| t.0.as_str()).unwrap_or_default();
            match word.as_str() {
                "algorithm" => {
                    algorithm = Some(match value.to_ascii_lowercase().as_str() {
                        "hmac-sha256" => TsigAlgorithm::HmacSha256,
                        "hmac-sha384" => TsigAlgorithm::HmacSha384,
                        "hmac-sha512" => TsigAlgorithm::HmacSha512,
                        other => {
                            return Err(format!(
                                "line {line}: algorithm `{other}` is not supported: use hmac-sha256, hmac-sha384 or hmac-sha512"
                            ));
                        }
                    });
                }
                "secret" => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(value)
                        .map_err(|_| format!("line {line}: the secret is not base64"))?;
                    if bytes.len() < 16 {
                        return Err(format!(
                            "line {line}: the secret is {} bytes; use at least 16 (tsig-keygen makes 32)",
                            bytes.len()
                        ));
                    }
                    secret = Some(bytes);
                }
                other => return Err(format!("line {line}: unknown statement `{other}` in a key")),
            }
            want(i + 2, ";")?;
            i += 3;
        }
        want(i, "}")?;
        want(i + 1, ";")?;
        i += 2;
        let (Some(algorithm), Some(secret)) = (algorithm, secret) else {
            return Err(format!(
                "line {line}: key `{name}` needs `algorithm` and `secret`"
            ));
        };
        if keys.iter().any(|k: &Key| k.name == name) {
            return Err(format!("line {line}: key `{name}` is defined twice"));
        }
        keys.push(Key {
            name,
            algorithm,
            secret,
        });
    }
    Ok(keys)
}

/// Words, quoted strings (without their quotes) and `{`, `}`, `;`, each
/// with its line.
fn tokenize(text: &str) -> Result<Vec<(String, usize)>, String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let (mut i, mut line) = (0, 1);
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            b'#' => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'/') => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .ok_or(format!("line {line}: a comment is not closed"))?;
                line += text[i..i + 2 + end].matches('\n').count();
                i += end + 4;
            }
            b'{' | b'}' | b';' => {
                out.push(((b[i] as char).to_string(), line));
                i += 1;
            }
            b'"' => {
                let end = text[i + 1..]
                    .find('"')
                    .ok_or(format!("line {line}: a quoted string is not closed"))?;
                out.push((text[i + 1..i + 1 + end].to_owned(), line));
                i += end + 2;
            }
            _ => {
                let start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && !b"{};\"".contains(&b[i]) {
                    i += 1;
                }
                out.push((text[start..i].to_owned(), line));
            }
        }
    }
    Ok(out)
}

fn skip_line(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "dGhpcyBpcyBhIDMyIGJ5dGUgc2VjcmV0IGtleSEhISE=";

    #[test]
    fn tsig_keygen_output_parses() {
        let text = format!(
            "# made by tsig-keygen\nkey \"Xfer.\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n\
             /* a second\n one */ key other {{ algorithm HMAC-SHA512; secret \"{SECRET}\"; }}; // done\n"
        );
        let keys = parse(&text).expect("valid");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].name, "xfer");
        assert_eq!(keys[0].algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(keys[0].secret.len(), 32);
        assert_eq!(keys[1].algorithm, TsigAlgorithm::HmacSha512);
        assert!(!format!("{:?}", keys[0]).contains(SECRET));
        assert_eq!(keys[0].wire_name().to_ascii(), "xfer.");
    }

    #[test]
    fn mistakes_name_their_line() {
        for (text, wanted) in [
            (
                "key a { algorithm hmac-md5; secret \"x\"; };",
                "line 1: algorithm `hmac-md5`",
            ),
            (
                "key a {\n secret \"!!\"; };",
                "line 2: the secret is not base64",
            ),
            (
                "key a {\n secret \"YWJj\"; };",
                "line 2: the secret is 3 bytes",
            ),
            ("key a { algorithm hmac-sha256; };", "line 1: key `a` needs"),
            ("key a { algorithm hmac-sha256 }", "line 1: expected `;`"),
            ("zone a {};", "line 1: expected `key`"),
            ("key \"a", "line 1: a quoted string is not closed"),
            ("key a {", "the file ends where `}` was expected"),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.starts_with(wanted), "{text}: {e}");
        }
    }
}
