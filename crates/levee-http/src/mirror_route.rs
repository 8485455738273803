//! Serving a `mirrors` route (docs/mirrors.md): `levee-mirror` decides,
//! this writes its answer through the exchange: a 302 to a mirror with its
//! fields, a document (Metalink, mirror list), or the file itself through
//! the static-file code (sendfile, ranges, conditionals), exactly as a
//! `static` route.

use std::borrow::Cow;
use std::sync::Arc;

use levee_mirror::{Answer, Ask, MirrorSet};

use crate::exchange::{Exchange, Outcome, Reply};
use crate::site::Site;
use crate::static_files::path::CleanPath;

pub(crate) async fn serve(ex: &mut Exchange<'_>, site: &Site, set: &Arc<MirrorSet>) -> Outcome {
    let head = &ex.head;
    // A hidden path is never sent to a mirror: the static code refuses it
    // under the set's local options (`dotfiles`, docs/config.md).
    let hidden = crate::static_opts::hidden(&set.local().options, head.path()).is_some();
    let answer = match CleanPath::parse(head.path()) {
        Ok(clean) if !hidden => {
            let path = clean.segments.join(&b'/');
            let uri = head.uri();
            let query = uri
                .iter()
                .position(|&b| b == b'?')
                .map_or(&b""[..], |q| &uri[q + 1..]);
            let host = head.host.map_or(&b""[..], |h| head.fields.span_of(h));
            let method = head.method();
            set.decide(&Ask {
                path: &path,
                directory: clean.trailing_slash || clean.segments.is_empty(),
                query,
                accept: head.fields.get("accept"),
                client: ex.origin.ip,
                https: ex.origin.https,
                host,
                fetch: method == b"GET" || method == b"HEAD",
                // One clock reading, only on this route: the mirrors' caps.
                now: std::time::Instant::now(),
            })
        }
        // The static code answers a bad path (400) as a static route would.
        _ => Answer::Local,
    };
    match answer {
        Answer::Local => {
            let local = set.local();
            crate::static_route::serve(ex, site, &local).await
        }
        Answer::Forbidden => ex.reply(&Reply::error(403, &[]), site).await,
        Answer::Redirect { fields } => {
            let extra: Vec<(&str, &[u8])> =
                fields.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
            ex.reply(&Reply::error(302, &extra), site).await
        }
        Answer::Document { content_type, body } => {
            let reply = Reply {
                status: 200,
                fields: &[("Cache-Control", b"no-store")],
                content_type,
                body: Cow::Owned(body),
                close: false,
                error: false,
            };
            ex.reply(&reply, site).await
        }
    }
}
