//! Request and response shaping: header rules per route (`request_headers`,
//! `response_headers`), hiding the upstream's `Server`, and the request ids
//! of `[http]` (docs/config.md, "Header rules" and "Request ids").

/// The request id field when `[http] request_id_header` is left out.
pub const DEFAULT_REQUEST_ID_HEADER: &str = "X-Request-Id";

/// `[http]`: site-wide HTTP behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    /// `hide_upstream_server`: drop the upstream's `Server` and
    /// `X-Powered-By` from responses (default true); routes may override.
    pub hide_upstream_server: bool,
    /// `request_id`: every request gets an id (default true).
    pub request_id: bool,
    /// `request_id_header`: the field the id travels in.
    pub request_id_header: String,
    /// `request_id_trust`: whose incoming id is kept.
    pub request_id_trust: RequestIdTrust,
    /// `error_pages`: site-wide, by status.
    pub error_pages: Vec<ErrorPage>,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            hide_upstream_server: true,
            request_id: true,
            request_id_header: DEFAULT_REQUEST_ID_HEADER.to_owned(),
            request_id_trust: RequestIdTrust::default(),
            error_pages: Vec::new(),
        }
    }
}

/// Whose incoming request id levee keeps instead of minting one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestIdTrust {
    /// Clients in the listener's `trusted_proxies` (the default).
    #[default]
    TrustedProxies,
    /// Every client (a listener only trusted peers reach).
    Any,
    /// Nobody: every id is minted.
    None,
}

impl RequestIdTrust {
    /// The value as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestIdTrust::TrustedProxies => "trusted_proxies",
            RequestIdTrust::Any => "any",
            RequestIdTrust::None => "none",
        }
    }
}

/// A route's shaping: its header rules and whether the upstream's `Server`
/// is hidden.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteShape {
    /// `request_headers`: applied to the request sent upstream.
    pub request: HeaderRules,
    /// `response_headers`: applied to the response sent to the client.
    pub response: HeaderRules,
    /// `response_headers.always`: the response rules apply to levee's own
    /// responses too (errors, redirects, `respond`, static files).
    pub always: bool,
    /// `hide_upstream_server`; `None` follows `[http]`.
    pub hide_upstream_server: Option<bool>,
    /// `error_pages`: the route's, over `[http]`'s.
    pub error_pages: Vec<ErrorPage>,
    /// `intercept_errors`: a server's error status with a page gets the
    /// page instead of the server's body.
    pub intercept_errors: bool,
}

impl RouteShape {
    /// The route shapes nothing of its own.
    pub fn is_empty(&self) -> bool {
        *self == RouteShape::default()
    }
}

/// `set`, `add` and `remove` of one direction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderRules {
    /// Replace every field of that name with this one.
    pub set: Vec<HeaderRule>,
    /// Append this field to those already there.
    pub add: Vec<HeaderRule>,
    /// Drop every field of that name (as written).
    pub remove: Vec<String>,
}

impl HeaderRules {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// One field: its name as written and its value's template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    pub name: String,
    pub value: Template,
}

/// A field value with variables, as `redirect`'s `{host}`: literal text
/// and `{name}` places filled per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// As written, for rendering the config back.
    pub text: String,
    pub pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Var(Var),
}

/// What a template's `{name}` stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// `{client}`: the client's address (as `trusted_proxies` decided).
    Client,
    /// `{scheme}`: `http` or `https`, as the client came.
    Scheme,
    /// `{host}`: the request's host, as the client sent it.
    Host,
    /// `{request_id}`: the request's id.
    RequestId,
    /// `{upstream}`: the server's address (empty before one is chosen).
    Upstream,
}

impl Var {
    /// Every variable with its name, for parsing and messages.
    pub const ALL: [(&'static str, Var); 5] = [
        ("client", Var::Client),
        ("scheme", Var::Scheme),
        ("host", Var::Host),
        ("request_id", Var::RequestId),
        ("upstream", Var::Upstream),
    ];
}

impl Template {
    /// Parses `text`: `{name}` for a variable, `{{` and `}}` for braces.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("{{") {
                literal.push('{');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("}}") {
                literal.push('}');
                rest = after;
            } else if let Some(after) = rest.strip_prefix('{') {
                let Some(end) = after.find('}') else {
                    return Err("a `{` with no `}`; write `{{` for a brace".to_owned());
                };
                let name = after.get(..end).unwrap_or_default();
                let Some((_, var)) = Var::ALL.iter().find(|(n, _)| *n == name) else {
                    let names: Vec<String> =
                        Var::ALL.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                    return Err(format!(
                        "unknown variable `{{{name}}}`; expected one of {}",
                        names.join(", ")
                    ));
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Var(*var));
                rest = after.get(end + 1..).unwrap_or_default();
            } else if c == '}' {
                return Err("a `}` with no `{`; write `}}` for a brace".to_owned());
            } else {
                literal.push(c);
                rest = rest.get(c.len_utf8()..).unwrap_or_default();
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template {
            text: text.to_owned(),
            pieces,
        })
    }
}

/// The attributes of a `balance = "sticky"` upstream's cookie beyond
/// `Path=/; HttpOnly`, which it always has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CookieAttributes {
    /// `sticky_cookie_secure`: sent back over HTTPS only.
    pub secure: bool,
    /// `sticky_cookie_same_site`; `None` leaves it to the browser (Lax).
    pub same_site: Option<SameSite>,
    /// `sticky_cookie_max_age`; `None` for a session cookie.
    pub max_age: Option<std::time::Duration>,
}

/// A cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl SameSite {
    /// As written in the config file and in `Set-Cookie`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

impl CookieAttributes {
    /// `; Secure; SameSite=Lax; Max-Age=3600`, as `Set-Cookie` takes them.
    pub fn suffix(&self) -> String {
        let mut s = String::new();
        if self.secure {
            s.push_str("; Secure");
        }
        if let Some(same_site) = self.same_site {
            s.push_str("; SameSite=");
            s.push_str(same_site.as_str());
        }
        if let Some(max_age) = self.max_age {
            s.push_str(&format!("; Max-Age={}", max_age.as_secs()));
        }
        s
    }
}

/// A custom body for an error status (`error_pages`): levee's own errors,
/// and a server's when the route has `intercept_errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    pub status: u16,
    /// `file` or `body`.
    pub body: PageSource,
    /// `content_type`; `None`: from the file's extension, or HTML inline.
    pub content_type: Option<String>,
    /// `json_file` or `json`: sent instead to clients that ask for JSON.
    pub json: Option<PageSource>,
}

/// Where a page's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageSource {
    /// Read at start and on reload.
    File(std::path::PathBuf),
    Inline(String),
}
