use std::path::Path;
use std::time::Duration;

use super::record;
use crate::model::{AnswerOrder, RecordKind};

const FLEET: &str = "[fleet]\nname = \"shop\"\nredis = \"redis://127.0.0.1\"\n";

fn parse(dns: &str, extra: &str) -> Result<crate::Config, crate::ConfigErrors> {
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"hi\"\n{extra}\n[dns]\n{dns}\n"
    );
    crate::parse(&text, Path::new("t.toml"))
}

fn errors(dns: &str, extra: &str) -> Vec<String> {
    parse(dns, extra)
        .expect_err("invalid")
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect()
}

const ZONE: &str = "listen = \"127.0.0.1:5353\"\n[[dns.zone]]\nname = \"Example.org.\"\nns = [\"ns1.example.org\"]\n";

#[test]
fn a_zone_with_records_and_a_fleet_record_survives_a_round_trip() {
    let text = format!(
        "{ZONE}records = [\"@ MX 10 mail\", \"mail 300 IN A 192.0.2.1\", \"www.example.org. TXT \\\"a b\\\"\", \"ftp IN 1h CNAME www\"]\n\
         secondaries = [\"192.0.2.10\", \"127.0.0.1:5300\"]\n\
         [[dns.zone.fleet]]\nname = \"www\"\norder = \"weighted\"\nmax_answers = 3\n"
    );
    let config = parse(&text, FLEET).expect("valid");
    let dns = config.dns.as_ref().expect("dns");
    let zone = &dns.zones[0];
    assert_eq!(zone.name, "example.org");
    assert_eq!(zone.contact, "hostmaster@example.org");
    assert_eq!(zone.ns, ["ns1.example.org"]);
    let owners: Vec<(&str, RecordKind, Option<Duration>)> = zone
        .records
        .iter()
        .map(|r| (r.owner.as_str(), r.kind, r.ttl))
        .collect();
    assert_eq!(
        owners,
        [
            ("example.org", RecordKind::Mx, None),
            (
                "mail.example.org",
                RecordKind::A,
                Some(Duration::from_secs(300))
            ),
            ("www.example.org", RecordKind::Txt, None),
            (
                "ftp.example.org",
                RecordKind::Cname,
                Some(Duration::from_secs(3600))
            ),
        ]
    );
    assert_eq!(zone.records[2].data, "\"a b\"");
    assert_eq!(zone.secondaries[0].address.to_string(), "192.0.2.10:53");
    let f = &zone.fleet[0];
    assert_eq!(
        (f.owner.as_str(), f.order, f.max_answers, f.ttl),
        (
            "www.example.org",
            AnswerOrder::Weighted,
            3,
            Duration::from_secs(30)
        )
    );
    assert_eq!(dns.rrl.burst, 40, "twice the rate unless written");
    crate::validate(&config).expect("survives being written out");
}

#[test]
fn a_fleet_record_needs_a_fleet() {
    let text = format!("{ZONE}[[dns.zone.fleet]]\nname = \"www\"\n");
    let e = errors(&text, "");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("t.toml:11:1: dns.zone[0].fleet[0]: a fleet record answers"),
        "{e:?}"
    );
}

#[test]
fn every_mistake_is_reported_at_its_key() {
    let text = "listen = [\"127.0.0.1\"]\nthreads = 0\nrrl_prefix_v4 = 40\n\
                [[dns.zone]]\nname = \"bad name\"\n\
                [[dns.zone]]\nname = \"example.org\"\nns = \"ns1.example.org\"\ncontact = \"nobody\"\n\
                records = [\"www A\", \"x 300 SRV 0 0 80 a\", \"other.net. A 192.0.2.1\", \"c CNAME a\", \"c A 192.0.2.1\", \"sub NS ns\", \"*.w A 192.0.2.1\"]\n\
                [[dns.zone.fleet]]\nname = \"c\"\ngeo = true\norder = \"random\"\n";
    let e = errors(text, FLEET);
    let keys: Vec<&str> = e
        .iter()
        .map(|l| l.split(": ").nth(1).unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            "dns.listen[0]",
            "dns.threads",
            "dns.rrl_prefix_v4",
            "dns.zone[0].name",
            "dns.zone[1].contact",
            "dns.zone[1].records[0]",
            "dns.zone[1].records[1]",
            "dns.zone[1].records[2]",
            "dns.zone[1].records[4]",
            "dns.zone[1].records[5]",
            "dns.zone[1].records[6]",
            "dns.zone[1].fleet[0]",
            "dns.zone[1].fleet[0].order",
        ],
        "{e:#?}"
    );
}

#[test]
fn record_lines_read_like_a_zone_file() {
    let r = record("www 1h30m IN AAAA 2001:db8::1", "example.org").expect("valid");
    assert_eq!(r.ttl, Some(Duration::from_secs(5400)));
    assert_eq!((r.kind, r.data.as_str()), (RecordKind::Aaaa, "2001:db8::1"));
    let r = record("@ IN 60 caa 0 issue \"letsencrypt.org\"", "example.org").expect("valid");
    assert_eq!((r.owner.as_str(), r.kind), ("example.org", RecordKind::Caa));
    assert_eq!(r.data, "0 issue \"letsencrypt.org\"");
    assert!(record("www 500ms A 192.0.2.1", "example.org").is_err());
    assert!(record("www", "example.org").is_err());
    assert!(record("www 300", "example.org").is_err());
}

#[test]
fn geo_answers_and_tsig_need_their_files() {
    let text =
        format!("{ZONE}tsig_key = \"xfer\"\n[[dns.zone.fleet]]\nname = \"www\"\ngeo = true\n");
    let e = errors(&text, FLEET);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].contains("dns.zone[0]: a fleet record with `geo = true` needs `[dns] geoip`"),
        "{e:?}"
    );
    assert!(
        e[1].contains("dns.zone[0]: `tsig_key` needs `[dns] tsig_keys`"),
        "{e:?}"
    );
}
