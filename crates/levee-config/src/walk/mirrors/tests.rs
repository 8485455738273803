//! `[mirrors.NAME]`: values, positions, the route reference, and the
//! control API's reading of one mirror.

use crate::model::{Action, IpNet};
use crate::tests::{errors_of, ok};

const L: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n";

const SET: &str = r#"[[route]]
mirrors = "dl"

[mirrors.dl]
root = "/srv/dl"
state_dir = "/var/lib/levee/dl"
exclude = ["*.asc", "/meta/*"]
probe_interval = "10s"
geoip = "/usr/share/GeoIP/City.mmdb"

[[mirrors.dl.mirror]]
name = "de1"
http = "http://mirror.example.de/pub/dl/"
https = "https://mirror.example.de/pub/dl"
rsync = "rsync://mirror.example.de/dl"
weight = 50
country = "de"
continent = "eu"
asn = [3320, 680]
latitude = 52.5
longitude = 13.4
networks = ["10.0.0.0/8"]
allowed_countries = ["DE", "at"]
max_bandwidth = "100m"
max_redirects = 500
"#;

#[test]
fn a_full_set_reads_into_the_model() {
    let c = ok(&format!("{L}{SET}"));
    assert_eq!(
        c.routes[0].action,
        Action::Mirrors(crate::model::MirrorsAction { set: "dl".into() })
    );
    let s = &c.mirrors[0];
    assert_eq!(s.name, "dl");
    assert_eq!(s.min_size, 4096);
    assert_eq!(s.exclude, ["*.asc", "/meta/*"]);
    assert_eq!(s.probe_interval, std::time::Duration::from_secs(10));
    let m = &s.mirrors[0];
    assert_eq!(m.http.as_deref(), Some("http://mirror.example.de/pub/dl"));
    assert_eq!(m.https.as_deref(), Some("https://mirror.example.de/pub/dl"));
    assert_eq!(m.country.as_deref(), Some("DE"));
    assert_eq!(m.continent.as_deref(), Some("EU"));
    assert_eq!(m.asn, [3320, 680]);
    assert_eq!(m.location, Some((52.5, 13.4)));
    assert_eq!(
        m.networks,
        [IpNet {
            addr: "10.0.0.0".parse().expect("literal"),
            prefix: 8
        }]
    );
    assert_eq!(m.allowed_countries, ["DE", "AT"]);
    assert_eq!(m.max_bandwidth, 100 * 1024 * 1024);
    assert!(m.enabled);
    // What is read is what is written back out.
    crate::validate(&c).expect("round trip");
}

#[test]
fn errors_name_the_mirror_key_and_position() {
    let text = format!(
        "{L}[[route]]\nmirrors = \"dl\"\n[mirrors.dl]\nroot = \"/r\"\nstate_dir = \"/s\"\n\
         [[mirrors.dl.mirror]]\nname = \"a\"\nhttp = \"ftp://x\"\ncountry = \"Germany\"\n\
         latitude = 100\nlongitude = 1\ncontinent = \"XX\"\n\
         [[mirrors.dl.mirror]]\nname = \"a\"\nhttps = \"https://u@h/\"\n"
    );
    assert_eq!(
        errors_of(&text),
        [
            "t.toml:10:8: mirrors.dl.mirror[0].http: `ftp://x` is not a http base URL: it must start with http://",
            "t.toml:11:11: mirrors.dl.mirror[0].country: `Germany` is not a two-letter country code (ISO 3166-1) such as \"DE\"",
            "t.toml:12:12: mirrors.dl.mirror[0].latitude: expected a number of degrees from -90 to 90",
            "t.toml:14:13: mirrors.dl.mirror[0].continent: expected a continent code: AF, AN, AS, EU, NA, OC, SA",
            "t.toml:15:1: mirrors.dl.mirror[1]: duplicate mirror name `a`",
            "t.toml:17:9: mirrors.dl.mirror[1].https: not a https base URL: a user name or password does not go in this URL \
             (`levee config dump` and the logs would show it; the URL is not repeated here)",
        ]
    );
}

#[test]
fn a_route_must_name_a_defined_set() {
    assert_eq!(
        errors_of(&format!("{L}[[route]]\nmirrors = \"nope\"\n")),
        ["t.toml:4:11: route[0].mirrors: unknown mirror set `nope`; no mirror sets are defined"]
    );
    assert_eq!(
        errors_of(&format!("{L}[mirrors.dl]\nroot = \"/r\"\n")),
        ["t.toml:3:1: mirrors.dl.state_dir: missing required key `state_dir`"]
    );
}

#[test]
fn base_urls() {
    use super::base_url;
    assert_eq!(
        base_url("http", "http://h:8080/a/").as_deref(),
        Ok("http://h:8080/a")
    );
    assert_eq!(
        base_url("https", "https://[::1]/").as_deref(),
        Ok("https://[::1]")
    );
    assert!(base_url("http", "http://h:0/").is_err());
    assert!(base_url("http", "http:///x").is_err());
    assert!(base_url("http", "http://h/a?b").is_err());
    assert!(base_url("rsync", "rsync://h/").is_err());
    assert_eq!(
        base_url("rsync", "rsync://h/mod/").as_deref(),
        Ok("rsync://h/mod")
    );
}

#[test]
fn one_mirror_from_the_api() {
    let m = super::mirror_from_toml("name = \"x\"\nhttp = \"http://h/\"\nweight = 7\n", "mirror")
        .expect("valid");
    assert_eq!((m.name.as_str(), m.weight), ("x", 7));
    let e = super::mirror_from_toml("name = \"x\"\nweight = 0\n", "mirror").expect_err("invalid");
    let lines: Vec<String> = e
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.key, e.message))
        .collect();
    assert_eq!(
        lines,
        [
            "mirror: a mirror needs a base URL: set `http`, `https` or both",
            "mirror.weight: must be between 1 and 1000",
        ]
    );
    // What the API shows is what it reads back.
    let text = toml::to_string(&crate::mirror_to_toml(&m)).expect("serialises");
    assert_eq!(super::mirror_from_toml(&text, "mirror").expect("valid"), m);
}
