//! `[listener.tls]` and its `[[listener.tls.certs]]`.

use std::path::PathBuf;

use crate::error::Sink;
use crate::model::{DEFAULT_HANDSHAKE_TIMEOUT, FileRef, ListenerTls, TlsCert, UpstreamTls};
use crate::tree::{Fields, Item};

pub(crate) const TLS_KEYS: &[&str] = &[
    "certs",
    "client_ca",
    "alpn",
    "handshake_timeout",
    "hsts",
    "auto",
];
pub(crate) const CERT_KEYS: &[&str] = &["cert", "key", "names", "ocsp"];
pub(crate) const UPSTREAM_TLS_KEYS: &[&str] = &["ca", "server_name", "client_cert", "client_key"];

/// ALPN names levee can speak on a TLS listener.
const ALPN: &[&str] = &["h2", "http/1.1"];
/// What a listener offers when `alpn` is not set: HTTP/2 is opted into,
/// as with nginx's `http2 on`.
const DEFAULT_ALPN: &[&str] = &["http/1.1"];

/// `tls = "auto"` or a `[listener.tls]` table.
pub(crate) fn listener_tls(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<ListenerTls> {
    if let Some(text) = item.value.get_ref().as_str() {
        if text != "auto" {
            item.error(
                sink,
                format!("`{text}`: expected \"auto\" or a [listener.tls] table"),
            );
            return None;
        }
        return Some(ListenerTls {
            certs: Vec::new(),
            client_ca: None,
            alpn: DEFAULT_ALPN.iter().map(|s| s.to_string()).collect(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            hsts: None,
            auto: true,
        });
    }
    let fields = Fields::of(sink, item, TLS_KEYS)?;
    let auto = fields
        .get("auto")
        .and_then(|i| i.bool(sink))
        .unwrap_or(false);
    let mut certs = Vec::new();
    let list = match auto {
        true => fields.get("certs"),
        false => fields.require(sink, "certs"),
    };
    if let Some(list) = list {
        let elements = list.array(sink).unwrap_or_default();
        if elements.is_empty() && list.value.get_ref().as_array().is_some() && !auto {
            list.error(sink, "at least one certificate is needed");
        }
        certs = elements.iter().filter_map(|e| cert(sink, e)).collect();
    }
    let alpn = match fields.get("alpn") {
        None => DEFAULT_ALPN.iter().map(|s| s.to_string()).collect(),
        Some(i) => {
            let mut out = Vec::new();
            for (item, name) in i.one_or_many(sink).unwrap_or_default() {
                if ALPN.contains(&name) {
                    out.push(name.to_owned());
                } else {
                    item.error(
                        sink,
                        format!("unsupported ALPN protocol `{name}`: levee speaks {ALPN:?}"),
                    );
                }
            }
            out
        }
    };
    Some(ListenerTls {
        certs,
        client_ca: fields.get("client_ca").and_then(|i| file(sink, i)),
        alpn,
        handshake_timeout: fields
            .get("handshake_timeout")
            .and_then(|i| i.positive_duration(sink))
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
        hsts: fields.get("hsts").and_then(|i| i.duration(sink)),
        auto,
    })
}

/// `[upstream.NAME.tls]`.
pub(crate) fn upstream_tls(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<UpstreamTls> {
    let fields = Fields::of(sink, item, UPSTREAM_TLS_KEYS)?;
    let server_name = fields.get("server_name").and_then(|i| {
        let name = i.str(sink)?;
        let ip = name.parse::<std::net::IpAddr>().is_ok();
        match server_name(name) {
            Some(n) if !n.starts_with("*.") => Some(n),
            _ if ip => Some(name.to_owned()),
            _ => {
                i.error(sink, format!("`{name}` is not a server name or IP address"));
                None
            }
        }
    });
    let tls = UpstreamTls {
        ca: fields.get("ca").and_then(|i| file(sink, i)),
        server_name,
        client_cert: fields.get("client_cert").and_then(|i| file(sink, i)),
        client_key: fields.get("client_key").and_then(|i| file(sink, i)),
    };
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        item.error(sink, "set both `client_cert` and `client_key`, or neither");
    }
    Some(tls)
}

/// `proxy_protocol`: the networks trusted to send a PROXY header.
pub(crate) fn networks(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Vec<crate::model::IpNet> {
    let mut nets = Vec::new();
    for (i, text) in item.one_or_many(sink).unwrap_or_default() {
        match text.parse() {
            Ok(net) => nets.push(net),
            Err(message) => i.error(sink, message),
        }
    }
    nets
}

fn cert(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<TlsCert> {
    let fields = Fields::of(sink, item, CERT_KEYS)?;
    let cert = fields.require(sink, "cert").and_then(|i| file(sink, i));
    let key = fields.require(sink, "key").and_then(|i| file(sink, i));
    let mut names = Vec::new();
    if let Some(i) = fields.get("names") {
        for (item, name) in i.one_or_many(sink).unwrap_or_default() {
            match server_name(name) {
                Some(n) => names.push(n),
                None => item.error(
                    sink,
                    format!(
                        "`{name}` is not a server name such as \"example.com\" or \"*.example.com\""
                    ),
                ),
            }
        }
    }
    let ocsp = fields.get("ocsp").and_then(|i| file(sink, i));
    Some(TlsCert {
        cert: cert?,
        key: key?,
        names,
        ocsp,
    })
}

/// A file path as written, with where it was written.
pub(crate) fn file(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Option<FileRef> {
    let text = item.str(sink)?;
    if text.is_empty() {
        item.error(sink, "a file path must not be empty");
        return None;
    }
    let (line, column) = sink.position(item.span().start);
    Some(FileRef {
        path: PathBuf::from(text),
        key: item.key.clone(),
        line,
        column,
    })
}

/// A DNS name, optionally with a leading `*.` label, lower-cased.
pub(crate) fn server_name(name: &str) -> Option<String> {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn parse(tls: &str) -> Result<crate::Config, crate::ConfigErrors> {
        let text = format!(
            "[[listener]]\naddress = \"127.0.0.1:8443\"\n{tls}\n\
             [[route]]\nrespond = \"hi\"\n"
        );
        crate::parse(&text, Path::new("t.toml"))
    }

    #[test]
    fn certs_keep_where_their_files_were_named() {
        let config = parse(
            "[listener.tls]\nhsts = \"24h\"\n[[listener.tls.certs]]\ncert = \"a.pem\"\nkey = \"a.key\"\n\
             names = [\"A.example\", \"*.b.example\"]\n",
        )
        .unwrap();
        let tls = config.listeners[0].tls.as_ref().unwrap();
        let c = &tls.certs[0];
        assert_eq!(c.key.path, Path::new("a.key"));
        assert_eq!(c.key.key, "listener[0].tls.certs[0].key");
        assert_eq!((c.key.line, c.key.column), (7, 7));
        assert_eq!(c.names, ["a.example", "*.b.example"]);
        assert_eq!(tls.alpn, ["http/1.1"]);
        assert_eq!(tls.hsts, Some(std::time::Duration::from_secs(86400)));
        // Written out and read back, the same settings (positions aside).
        let again = crate::parse(&crate::to_toml(&config), Path::new("t.toml")).unwrap();
        let back = again.listeners[0].tls.as_ref().unwrap();
        assert_eq!(back.certs[0].cert.path, c.cert.path);
        assert_eq!(back.certs[0].names, c.names);
        assert_eq!(back.hsts, tls.hsts);
    }

    #[test]
    fn proxy_protocol_takes_networks() {
        let text = "[[listener]]\naddress = \"127.0.0.1:80\"\nproxy_protocol = [\"10.0.0.0/8\", \"::1\"]\n\
                    [[route]]\nrespond = \"hi\"\n";
        let config = crate::parse(text, Path::new("t.toml")).unwrap();
        let nets: Vec<String> = config.listeners[0]
            .proxy_protocol
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "::1/128"]);
        let again = crate::parse(&crate::to_toml(&config), Path::new("t.toml")).unwrap();
        assert_eq!(
            again.listeners[0].proxy_protocol,
            config.listeners[0].proxy_protocol
        );
        let bad = text.replace("10.0.0.0/8", "10.0.0.0/33");
        let e = crate::parse(&bad, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("listener[0].proxy_protocol[0]: invalid network"),
            "{e}"
        );
    }

    #[test]
    fn upstream_tls_table() {
        let base = "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nproxy = \"app\"\n\
                    [upstream.app]\nservers = [\"127.0.0.1:8443\"]\n";
        let ok = format!("{base}[upstream.app.tls]\nca = \"ca.pem\"\nserver_name = \"App.Test\"\n");
        let config = crate::parse(&ok, Path::new("t.toml")).unwrap();
        let tls = config.upstreams[0].tls.as_ref().unwrap();
        assert_eq!(tls.ca.as_ref().unwrap().key, "upstream.app.tls.ca");
        assert_eq!(tls.server_name.as_deref(), Some("app.test"));
        let again = crate::parse(&crate::to_toml(&config), Path::new("t.toml")).unwrap();
        assert_eq!(
            again.upstreams[0].tls.as_ref().unwrap().server_name,
            tls.server_name
        );

        let half = format!("{base}[upstream.app.tls]\nclient_cert = \"c.pem\"\n");
        let e = crate::parse(&half, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("set both `client_cert` and `client_key`"), "{e}");
        let http_check = format!(
            "{base}health_check = {{ type = \"http\", path = \"/\" }}\n[upstream.app.tls]\n"
        );
        let e = crate::parse(&http_check, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("upstream.app.health_check: an upstream with `tls`"),
            "{e}"
        );
        let v2 = base.replace("servers", "proxy_protocol = \"v2\"\nservers");
        let config = crate::parse(&v2, Path::new("t.toml")).unwrap();
        assert_eq!(config.upstreams[0].proxy_protocol, Some(2));
        let again = crate::parse(&crate::to_toml(&config), Path::new("t.toml")).unwrap();
        assert_eq!(again.upstreams[0].proxy_protocol, Some(2));
        let v3 = base.replace("servers", "proxy_protocol = \"v3\"\nservers");
        let e = crate::parse(&v3, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("upstream.app.proxy_protocol: `v3`: expected"),
            "{e}"
        );
    }

    #[test]
    fn bad_tls_tables_are_errors_at_their_keys() {
        let e = parse("[listener.tls]\ncerts = []\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("listener[0].tls.certs: at least one certificate"),
            "{e}"
        );
        let e = parse("[listener.tls]\nalpn = \"h3\"\n[[listener.tls.certs]]\ncert = \"a\"\nkey = \"b\"\nnames = \"bad name\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tls.alpn: unsupported ALPN protocol `h3`"),
            "{e}"
        );
        assert!(
            e.contains("tls.certs[0].names: `bad name` is not a server name"),
            "{e}"
        );
        let e = parse("[listener.tls]\n[[listener.tls.certs]]\ncert = \"a\"\nkye = \"b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kye"), "{e}");
        assert!(e.contains("tls.certs[0].key"), "{e}");
    }
}
