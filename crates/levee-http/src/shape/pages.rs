//! Error pages: custom bodies for error statuses (`error_pages`), read
//! once per (re)load, site-wide and per route (the route's over the
//! site's), each with an optional JSON variant for clients that ask for
//! JSON. Levee's own errors get them in `Exchange::send_reply`; a server's
//! errors on routes with `intercept_errors` in the respond phase.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use levee_config::{ErrorPage, PageSource};

use crate::exchange::Reply;
use crate::message::RequestHead;

/// Inline pages are HTML unless `content_type` says otherwise.
const INLINE_TYPE: &str = "text/html; charset=utf-8";
const JSON_TYPE: &str = "application/json";

/// One status's page, loaded.
#[derive(Debug)]
pub(crate) struct Page {
    body: Vec<u8>,
    content_type: String,
    json: Option<Vec<u8>>,
}

/// Pages by status (a handful: a short list beats a map).
#[derive(Debug, Default, Clone)]
pub(crate) struct Pages {
    by_status: Vec<(u16, Arc<Page>)>,
}

/// A page file that could not be read.
pub(crate) type PageError = (PathBuf, std::io::Error);

impl Pages {
    /// Loads `pages`, each over any of `base` for the same status.
    pub(crate) fn load(base: &Pages, pages: &[ErrorPage]) -> Result<Pages, PageError> {
        let mut out = base.clone();
        for p in pages {
            let body = read(&p.body)?;
            let content_type = match (&p.content_type, &p.body) {
                (Some(ct), _) => ct.clone(),
                (None, PageSource::File(path)) => {
                    let name = path.file_name().unwrap_or_default();
                    crate::static_files::mime::content_type(name.as_encoded_bytes()).to_owned()
                }
                (None, PageSource::Inline(_)) => INLINE_TYPE.to_owned(),
            };
            let json = p.json.as_ref().map(read).transpose()?;
            let page = Arc::new(Page {
                body,
                content_type,
                json,
            });
            out.by_status.retain(|(s, _)| *s != p.status);
            out.by_status.push((p.status, page));
        }
        Ok(out)
    }

    pub(crate) fn get(&self, status: u16) -> Option<&Page> {
        self.by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, p)| &**p)
    }

    /// `reply` (levee's error) with the page for its status, if there is
    /// one: the JSON variant for a client that asks for JSON. A page with
    /// a JSON variant is chosen by `Accept`, and says so (`Vary: Accept`,
    /// after `reply`'s fields, in `fields`), so no cache in front hands one
    /// client's variant to another.
    pub(crate) fn dress<'a>(
        &'a self,
        reply: &Reply<'a>,
        req: &RequestHead,
        fields: &'a mut Vec<(&'a str, &'a [u8])>,
    ) -> Option<Reply<'a>> {
        if !reply.error || reply.status < 400 {
            return None;
        }
        let page = self.get(reply.status)?;
        let (body, content_type, fields) = match &page.json {
            Some(json) => {
                fields.extend_from_slice(reply.fields);
                fields.push(("Vary", b"Accept"));
                let fields = &fields[..];
                if wants_json(req) {
                    (json.as_slice(), JSON_TYPE, fields)
                } else {
                    (page.body.as_slice(), page.content_type.as_str(), fields)
                }
            }
            None => (
                page.body.as_slice(),
                page.content_type.as_str(),
                reply.fields,
            ),
        };
        Some(Reply {
            content_type,
            body: Cow::Borrowed(body),
            fields,
            error: false,
            ..reply.clone()
        })
    }
}

fn read(source: &PageSource) -> Result<Vec<u8>, PageError> {
    match source {
        PageSource::Inline(text) => Ok(text.as_bytes().to_vec()),
        PageSource::File(path) => std::fs::read(path).map_err(|e| (Path::to_path_buf(path), e)),
    }
}

/// The client prefers JSON: its `Accept` names `application/json` and not
/// `text/html` (which browsers send first), so API clients get JSON and
/// browsers HTML.
fn wants_json(req: &RequestHead) -> bool {
    let accept = req
        .fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"accept"))
        .map(|(_, v)| v);
    prefers_json(accept)
}

/// Whether `Accept` values (every `Accept` field of a request) ask for
/// JSON over HTML: `application/json` named, `text/html` not, a type with
/// `q=0` not named. The one rule for levee's own pages that come in both
/// (error pages, directory listings).
pub(crate) fn prefers_json<'a>(values: impl Iterator<Item = &'a [u8]>) -> bool {
    let accept = values.flat_map(|v| v.split(|&b| b == b','));
    let (mut json, mut html) = (false, false);
    for item in accept {
        let mut parts = item.split(|&b| b == b';');
        let kind = parts.next().unwrap_or_default().trim_ascii();
        // `q=0` (`q=0.000` …) says "not this one".
        let refused = parts.any(|p| {
            let p = p.trim_ascii();
            let q = p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q="));
            q.and_then(crate::compress::qvalue) == Some(0)
        });
        if refused {
            continue;
        }
        json |= kind.eq_ignore_ascii_case(b"application/json");
        html |= kind.eq_ignore_ascii_case(b"text/html");
    }
    json && !html
}
