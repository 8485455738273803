//! Serving a `mirrors` route (docs/mirrors.md): `levee-mirror` decides,
//! this writes its answer: a 302 to a mirror with its fields, a document
//! (Metalink, mirror list), or the file itself through the static-file
//! code (sendfile, ranges, conditionals), exactly as a `static` route.

use std::sync::Arc;

use levee_mirror::{Answer, Ask, MirrorSet};

use crate::conn::{Client, Done};
use crate::message::RequestHead;
use crate::respond;
use crate::site::Site;
use crate::static_files::path::CleanPath;

pub async fn serve(
    client: &mut Client,
    site: &Site,
    head: &RequestHead,
    set: &Arc<MirrorSet>,
    keep_alive: bool,
    done: &mut Done,
) {
    let answer = match CleanPath::parse(head.path()) {
        Ok(clean) => {
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
                client: client.origin.ip,
                https: client.origin.https,
                host,
                fetch: method == b"GET" || method == b"HEAD",
                // One clock reading, only on this route: the mirrors' caps.
                now: std::time::Instant::now(),
            })
        }
        // The static code answers a bad path (400) as a static route would.
        Err(_) => Answer::Local,
    };
    let head_only = head.is_head();
    match answer {
        Answer::Local => {
            let local = set.local();
            crate::static_route::serve(client, site, head, &local, done).await;
        }
        Answer::Forbidden => {
            let bytes = respond::error(403, &[], keep_alive, head_only);
            done.reply(client, site, head, bytes).await;
        }
        Answer::Redirect { fields } => {
            let extra: Vec<(&str, &[u8])> =
                fields.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
            let bytes = respond::error(302, &extra, keep_alive, head_only);
            done.reply(client, site, head, bytes).await;
        }
        Answer::Document { content_type, body } => {
            let bytes = crate::h1::write::simple_response(
                200,
                &[("Cache-Control", b"no-store")],
                content_type,
                &body,
                keep_alive,
                head_only,
            );
            done.reply(client, site, head, bytes).await;
        }
    }
}
