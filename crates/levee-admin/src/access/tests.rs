//! Host, Origin and content-type rules, and reading credentials.

use std::net::SocketAddr;
use std::path::Path;

use levee_config::{Admin, FileRef, TokenSource};

use super::*;

fn local() -> SocketAddr {
    "127.0.0.1:9090".parse().expect("literal")
}

fn access(hosts: &[&str], origins: &[&str]) -> Access {
    let mut admin = Admin::on(local());
    admin.hosts = hosts.iter().map(|h| h.to_string()).collect();
    admin.origins = origins.iter().map(|o| o.to_string()).collect();
    Access::load(&admin, Path::new("t.toml")).expect("no files to read")
}

fn admit(
    a: &Access,
    method: &str,
    host: &str,
    origin: Option<&str>,
    ct: Option<&str>,
) -> Result<(), Refusal> {
    a.admit(local(), method, Some(host), origin, ct)
}

#[test]
fn host_must_be_the_listener_or_a_configured_name() {
    let a = access(&["admin.example.com"], &[]);
    for ok in [
        "127.0.0.1:9090",
        "localhost:9090",
        "LOCALHOST:9090",
        "admin.example.com",
        "Admin.Example.com:443",
    ] {
        assert_eq!(admit(&a, "GET", ok, None, None), Ok(()), "{ok}");
    }
    // DNS rebinding: the attacker's name, resolving to 127.0.0.1.
    for bad in [
        "evil.example:9090",
        "evil.example",
        "127.0.0.1:9091",
        "127.0.0.1",
        "localhost",
        "localhost.:9090",
        "admin.example.com.evil:9090",
        "admin.example.com:x",
        "",
    ] {
        assert_eq!(
            admit(&a, "GET", bad, None, None),
            Err(Refusal::Host),
            "{bad}"
        );
    }
    assert_eq!(
        a.admit(local(), "GET", None, None, None),
        Err(Refusal::Host)
    );
    let v6: SocketAddr = "[::1]:9090".parse().expect("literal");
    assert_eq!(a.admit(v6, "GET", Some("[::1]:9090"), None, None), Ok(()));
    // Bound to every address: the one the client connected to counts.
    let lan: SocketAddr = "10.0.0.5:9090".parse().expect("literal");
    assert_eq!(
        a.admit(lan, "GET", Some("10.0.0.5:9090"), None, None),
        Ok(())
    );
    assert_eq!(
        a.admit(lan, "GET", Some("localhost:9090"), None, None),
        Err(Refusal::Host)
    );
}

#[test]
fn origin_must_be_the_page_itself_or_configured() {
    let a = access(&["admin.example.com"], &["https://admin.example.com"]);
    let get = |host: &str, origin: &str| admit(&a, "GET", host, Some(origin), None);
    assert_eq!(get("127.0.0.1:9090", "http://127.0.0.1:9090"), Ok(()));
    assert_eq!(get("localhost:9090", "http://localhost:9090"), Ok(()));
    assert_eq!(get("127.0.0.1:9090", "https://admin.example.com"), Ok(()));
    assert_eq!(
        get("127.0.0.1:9090", "https://admin.example.com:443"),
        Ok(())
    );
    for bad in [
        "http://evil.example",
        "http://localhost:9090",
        "https://127.0.0.1:9090",
        "http://127.0.0.1:9091",
        "null",
        "http://127.0.0.1:9090/path",
    ] {
        assert_eq!(get("127.0.0.1:9090", bad), Err(Refusal::Origin), "{bad}");
    }
    // No Origin at all (curl, ctl, Prometheus) is not a browser's
    // cross-site request.
    assert_eq!(admit(&a, "GET", "127.0.0.1:9090", None, None), Ok(()));
}

#[test]
fn state_changes_need_a_json_body_type() {
    let a = access(&[], &[]);
    let host = "127.0.0.1:9090";
    for method in ["POST", "PUT", "PATCH", "DELETE", "PURGE"] {
        assert_eq!(
            admit(&a, method, host, None, Some("text/plain")),
            Err(Refusal::ContentType)
        );
        assert_eq!(
            admit(&a, method, host, None, None),
            Err(Refusal::ContentType)
        );
        assert_eq!(
            admit(
                &a,
                method,
                host,
                None,
                Some("application/x-www-form-urlencoded")
            ),
            Err(Refusal::ContentType)
        );
        assert_eq!(
            admit(
                &a,
                method,
                host,
                None,
                Some("Application/JSON; charset=utf-8")
            ),
            Ok(())
        );
    }
    assert_eq!(admit(&a, "GET", host, None, Some("text/plain")), Ok(()));
    assert_eq!(Refusal::ContentType.status(), 415);
    assert_eq!(Refusal::Host.status(), 421);
    assert_eq!(Refusal::Origin.status(), 403);
}

#[test]
fn tokens_are_read_trimmed_and_checked() {
    let dir = std::env::temp_dir().join(format!("levee-admin-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        TokenSource::File(FileRef {
            path,
            key: "admin.token_file".into(),
            line: 3,
            column: 14,
        })
    };
    let good = file("good", "  0123456789abcdef-xyz\n");
    let t = read_token(&good).expect("token");
    assert!(t.matches(b"0123456789abcdef-xyz"));
    // Neither the rules' Debug form nor the config written out shows it.
    let mut with_token = Admin::on(local());
    with_token.token = Some(good);
    let loaded = Access::load(&with_token, Path::new("t.toml")).expect("access");
    assert!(loaded.requires_login());
    assert!(!format!("{loaded:?}").contains("0123456789abcdef"));
    let mut config = levee_config::builtin_static(dir.clone(), local());
    config.admin = Some(with_token);
    let text = levee_config::to_toml(&config);
    assert!(text.contains("token_file"), "{text}");
    assert!(!text.contains("0123456789abcdef"), "{text}");
    let short = read_token(&file("short", "secret\n")).expect_err("short");
    assert!(short.contains("at least 16"), "{short}");
    assert!(
        !short.contains("secret"),
        "the message shows the token: {short}"
    );
    let spaced = read_token(&file("spaced", "0123456789 abcdef\n")).expect_err("space");
    assert!(!spaced.contains("0123456789"), "{spaced}");
    let mut admin = Admin::on(local());
    admin.token = Some(TokenSource::File(FileRef {
        path: dir.join("absent"),
        key: "admin.token_file".into(),
        line: 3,
        column: 14,
    }));
    let errors = Access::load(&admin, Path::new("t.toml")).expect_err("absent");
    assert_eq!(errors.len(), 1);
    let text = errors[0].to_string();
    assert!(
        text.starts_with("t.toml:3:14: admin.token_file: cannot read the token file"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn password_files_are_user_hash_lines() {
    let hash = bcrypt::hash("pw", 4).expect("hash");
    let users = parse_users(&format!("# ops\nops:{hash}\n\n")).expect("users");
    assert_eq!(users.get("ops"), Some(&hash));
    assert_eq!(
        parse_users("ops:plaintext-password\n"),
        Err((
            1,
            "unsupported hash: expected bcrypt ($2b$, $2y$, $2a$), argon2 ($argon2id$) or SHA-512-crypt ($6$)".to_owned()
        ))
    );
    assert_eq!(parse_users("just-a-line\n").map_err(|e| e.0), Err(1));
    assert_eq!(
        parse_users(&format!("a:{hash}\na:{hash}\n")).map_err(|e| e.0),
        Err(2)
    );
    assert_eq!(parse_users("# nobody\n").map_err(|e| e.0), Err(0));
}

#[test]
fn credentials_fingerprint_changes_with_the_token() {
    let a = access(&[], &[]);
    let b = access(&["x.example"], &[]);
    assert_eq!(a.credentials, b.credentials, "names are not credentials");
    assert!(!a.requires_login());
}
