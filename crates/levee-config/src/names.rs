//! Host patterns, server addresses and route paths: the string forms a route
//! or upstream is written with. Pure parsers returning a message on error.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::model::HostMatch;

/// `example.com` -> `Exact("example.com")`, `*.Example.com` ->
/// `Wildcard(".example.com")`. Ports, empty labels and any other use of `*`
/// are rejected. A bracketed IPv6 literal (`[::1]`) is an exact match.
pub fn parse_host_pattern(text: &str) -> Result<HostMatch, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(suffix) = lower.strip_prefix("*.") {
        check_dns_name(suffix).map_err(|why| format!("invalid host pattern `{text}`: {why}"))?;
        return Ok(HostMatch::Wildcard(format!(".{suffix}")));
    }
    if lower.starts_with('[') {
        return match lower.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) if inner.parse::<Ipv6Addr>().is_ok() => Ok(HostMatch::Exact(lower)),
            _ => Err(format!(
                "invalid host pattern `{text}`: not an IPv6 literal such as [::1]"
            )),
        };
    }
    if lower.contains('*') {
        return Err(format!(
            "invalid host pattern `{text}`: `*` is only allowed as a whole first label, as in \"*.example.com\""
        ));
    }
    if lower.contains(':') {
        return Err(format!(
            "invalid host pattern `{text}`: a host pattern has no port; use `listener` to pick a port"
        ));
    }
    check_dns_name(&lower).map_err(|why| format!("invalid host pattern `{text}`: {why}"))?;
    Ok(HostMatch::Exact(lower))
}

/// Checks an upstream server address: `host:port` where host is an IPv4
/// address, a bracketed IPv6 address or a DNS name, and port is 1..=65535.
pub fn check_server_address(text: &str) -> Result<(), String> {
    let bad = |why: &str| format!("invalid server address `{text}`: {why}");
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad("expected host:port, such as \"127.0.0.1:8080\""));
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the port must be a number"));
    }
    match port.parse::<u16>() {
        Ok(1..) => {}
        _ => return Err(bad("the port must be 1..=65535")),
    }
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
            Some(Ok(_)) => Ok(()),
            _ => Err(bad("not a valid [IPv6] address")),
        };
    }
    if host.contains(':') {
        return Err(bad(
            "an IPv6 address must be in brackets, as in \"[::1]:8080\"",
        ));
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    check_dns_name(host).map_err(|why| bad(&why))
}

/// Checks a route path prefix.
pub fn check_route_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("path `{path}` must start with `/`"));
    }
    if let Some(c) = path
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '?' || *c == '#')
    {
        return Err(format!(
            "path `{}` must not contain {c:?}; a route matches the path only",
            path.escape_debug()
        ));
    }
    // Routes match the normalised, decoded path (docs/http1.md, "Paths"):
    // a prefix that is not in that form would never match.
    if path.contains('%') {
        return Err(format!(
            "path `{}` must not contain `%`: routes match the decoded path, so write the character itself",
            path.escape_debug()
        ));
    }
    if let Some(c) = path.chars().find(|c| matches!(c, ';' | '\\')) {
        return Err(format!(
            "path `{}` must not contain {c:?}: routing ignores `;` path parameters and refuses backslashes",
            path.escape_debug()
        ));
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    if segments
        .iter()
        .enumerate()
        .any(|(i, s)| matches!(*s, "." | "..") || (s.is_empty() && i != last))
    {
        return Err(format!(
            "path `{}` is not normalised (`//`, `/./` or `/../`): requests are matched after these are resolved",
            path.escape_debug()
        ));
    }
    Ok(())
}

/// Letters, digits, `-` and `_` in non-empty labels of at most 63 characters,
/// 253 characters in all.
fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the host name is empty".to_owned());
    }
    if name.len() > 253 {
        return Err("the host name is longer than 253 characters".to_owned());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("the host name has an empty label".to_owned());
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters".to_owned());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("{c:?} is not allowed in a host name"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
