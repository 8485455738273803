//! Random input never panics: random bytes, and random documents made
//! of config fragments, which fail with positioned errors or pass the
//! model's own check.

use super::*;

/// Fragments a config is made of, so random documents get past the TOML
/// syntax check often and exercise the walker.
fn fragment() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "workers",
        "pid_file",
        "address",
        "name",
        "backlog",
        "listener",
        "host",
        "path",
        "proxy",
        "static",
        "redirect",
        "respond",
        "status",
        "index",
        "servers",
        "weight",
        "keepalive",
        "max_body",
        "grace",
        "access",
        "format",
        "x",
    ]);
    let value = prop::sample::select(vec![
        "\"auto\"",
        "0",
        "-1",
        "70000",
        "9223372036854775807",
        "\"/\"",
        "\"a*.com\"",
        "\"*.b.com\"",
        "\"127.0.0.1:0\"",
        "\"0.0.0.0:80\"",
        "\"h:1\"",
        "\"10s\"",
        "\"8k\"",
        "\"\"",
        "true",
        "1.5",
        "[]",
        "[\"h:1\", { address = \"h:2\", weight = 0 }]",
        "{ address = 1 }",
        "1979-05-27",
        "\"\\u0000\"",
        "\"app\"",
    ]);
    let header = prop::sample::select(vec![
        "[[listener]]",
        "[[route]]",
        "[upstream.app]",
        "[log]",
        "[limits]",
        "[timeouts]",
        "[upstream]",
        "[listener]",
        "[route.x]",
        "[[upstream.app.servers]]",
    ]);
    prop_oneof![
        3 => (key, value).prop_map(|(k, v)| format!("{k} = {v}\n")),
        1 => header.prop_map(|h| format!("{h}\n")),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn random_documents_never_panic_and_fail_with_errors(
        head in prop::collection::vec(fragment(), 0..12),
        base in any::<bool>(),
        tail in prop::collection::vec(fragment(), 0..3),
    ) {
        // With `base`, a valid listener and route sit between random parts,
        // so some documents parse and the success path is exercised too.
        let base = if base { BASE } else { "" };
        let text = format!("{}{base}{}", head.concat(), tail.concat());
        match parse(&text, Path::new("fuzz.toml")) {
            Ok(config) => {
                // Whatever parses is valid by the model's own check too.
                prop_assert_eq!(validate(&config), Ok(()));
            }
            Err(e) => {
                prop_assert!(!e.errors.is_empty());
                for error in &e.errors {
                    prop_assert!(error.line >= 1 && error.column >= 1, "{}", error);
                }
            }
        }
    }
}
