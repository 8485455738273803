use crate::model::{Challenge, KeyType, LETSENCRYPT, LETSENCRYPT_STAGING, SecretSource};
use crate::tests::{errors_of, ok};
use crate::validate;

const AUTO: &str = "[[listener]]\naddress = \"127.0.0.1:443\"\ntls = \"auto\"\n[[route]]\nhost = \"a.test\"\nrespond = \"x\"\n";

#[test]
fn tls_auto_alone_gets_lets_encrypt_with_the_defaults() {
    let c = ok(AUTO);
    let tls = c.listeners[0].tls.as_ref().expect("tls");
    assert!(tls.auto && tls.certs.is_empty());
    let acme = c.acme.as_ref().expect("acme");
    assert_eq!(acme.directory, LETSENCRYPT);
    assert!(acme.challenges.is_empty(), "chosen from the listeners");
    assert_eq!(validate(&c), Ok(()));
}

#[test]
fn a_full_acme_section_survives_being_written_out() {
    let c = ok(&format!(
        "{AUTO}[acme]\ndirectory = \"letsencrypt-staging\"\ncontact = [\"mailto:ops@a.test\", \"b@a.test\"]\n\
         eab_kid = \"k\"\neab_hmac_file = \"eab.key\"\nstorage = \"/tmp/acme\"\nca_root = \"root.pem\"\n\
         key_type = \"rsa-4096\"\nrenew_before = \"20d\"\nchallenges = [\"tls-alpn-01\", \"dns-01\"]\n\
         names = [\"*.w.test\"]\nfleet_key_env = \"LEVEE_FLEET_KEY\"\n\
         [acme.dns]\nserver = \"127.0.0.1:53\"\nzone = \"w.test\"\ntsig_key = \"k\"\ntsig_secret_file = \"t\"\n\
         [acme.on_demand]\nask = \"http://127.0.0.1:5555/ask\"\nallow = \"*.c.test\"\nmax_per_hour = 3\n"
    ).replace("\"20d\"", "\"480h\""));
    let a = c.acme.as_ref().expect("acme");
    assert_eq!(a.directory, LETSENCRYPT_STAGING);
    assert_eq!(a.contact, ["ops@a.test", "b@a.test"]);
    assert_eq!(a.key_type, KeyType::Rsa4096);
    assert_eq!(a.challenges, [Challenge::TlsAlpn01, Challenge::Dns01]);
    assert_eq!(
        a.fleet_key,
        Some(SecretSource::Env("LEVEE_FLEET_KEY".into()))
    );
    assert_eq!(a.on_demand.as_ref().expect("on demand").max_per_hour, 3);
    assert_eq!(validate(&c), Ok(()));
}

#[test]
fn mistakes_are_reported_at_their_keys() {
    let errors = errors_of(&format!(
        "{AUTO}[acme]\ndirectory = \"ftp://x\"\ncontact = \"nobody\"\neab_kid = \"k\"\n\
         key_type = \"dsa\"\nchallenges = [\"dns-01\", \"smtp-01\"]\nnames = [\"*.w.test\", \"a b\"]\n\
         fleet_key_file = \"k\"\nfleet_key_env = \"K\"\n[acme.on_demand]\nper_name = \"1h\"\n"
    ));
    assert_eq!(
        errors,
        [
            "t.toml:7:1: acme: set both `eab_kid` and `eab_hmac_file`, or neither",
            "t.toml:7:1: acme: set `fleet_key_file` or `fleet_key_env`, not both",
            "t.toml:8:13: acme.directory: `ftp://x`: expected \"letsencrypt\", \"letsencrypt-staging\" or a directory URL (https://...)",
            "t.toml:9:11: acme.contact: `nobody` is not an e-mail address",
            "t.toml:11:12: acme.key_type: `dsa`: expected \"ecdsa-p256\", \"rsa-2048\" or \"rsa-4096\"",
            "t.toml:12:14: acme.challenges: `dns-01` needs an [acme.dns] table",
            "t.toml:12:25: acme.challenges[1]: `smtp-01`: expected \"http-01\", \"tls-alpn-01\" or \"dns-01\"",
            "t.toml:13:22: acme.names[1]: `a b` is not a server name such as \"example.com\" or \"*.example.com\"",
            "t.toml:16:1: acme.on_demand: on-demand TLS needs `ask` or `allow`: otherwise any name a client sends would be ordered",
        ]
    );
    // A wildcard without [acme.dns], once the rest is right.
    let errors = errors_of(&format!("{AUTO}[acme]\nnames = [\"*.w.test\"]\n"));
    assert_eq!(
        errors,
        [
            "t.toml:8:10: acme.names[0]: `*.w.test` is a wildcard: it can only be validated by DNS-01, which needs an [acme.dns] table"
        ]
    );
}

#[test]
fn tls_takes_auto_or_a_table() {
    let errors = errors_of("[[listener]]\naddress = \"127.0.0.1:443\"\ntls = \"on\"\n");
    assert_eq!(
        errors,
        ["t.toml:3:7: listener[0].tls: `on`: expected \"auto\" or a [listener.tls] table"]
    );
    // A table with `auto` needs no certificate; without it, one is needed.
    ok("[[listener]]\naddress = \"127.0.0.1:443\"\n[listener.tls]\nauto = true\n");
    let errors = errors_of("[[listener]]\naddress = \"127.0.0.1:443\"\n[listener.tls]\n");
    assert!(errors[0].contains("listener[0].tls"), "{errors:?}");
}
