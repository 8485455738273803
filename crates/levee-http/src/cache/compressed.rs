//! Cache hits on a route that compresses (compress.rs): the cache stores
//! the identity form of a response, whatever the client that filled it
//! accepted, and beside it in memory one compressed variant per coding,
//! made from it by the first fresh hit that wants that coding
//! ([`variant`]). A hit that has no variant to use (stale, or too large
//! for memory) is compressed on its way out ([`send`]). docs/cache.md
//! ("Compression") has the measurement this choice rests on.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use levee_cache::body::{Body, Slice};
use levee_cache::store::{Entry, Object, Storage};

use super::SiteCache;
use super::reply::Answer;
use crate::compress::Encoder;
use crate::exchange::Exchange;
use crate::site::Site;

/// Read from a disk tier body at a time.
const PIECE: usize = 16 * 1024;

/// Sends `answer` compressed by `enc`: its fields as compressing changes
/// them, then each body piece compressed and flushed. False if the client
/// is gone or the body could not be read; with the compressed body bytes
/// sent, for the access log.
pub(crate) async fn send(
    ex: &mut Exchange<'_>,
    answer: Answer,
    mut enc: Box<Encoder>,
    site: &Site,
) -> (bool, u64) {
    let lines = answer.head.get(answer.fields.clone()).unwrap_or_default();
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    crate::compress::edit_fields(crate::compress::lines(lines), enc.coding(), |n, v| {
        fields.push((n.to_vec(), v.to_vec()));
    });
    let mut sent = 0u64;
    if !ex.send_coded_head(answer.status, &fields, site).await {
        return (false, sent);
    }
    for slice in &answer.body {
        let ok = match slice {
            Slice::Bytes(b) => pieces(ex, &mut enc, b, site, &mut sent).await,
            Slice::File { region, start, len } => {
                let mut buf = vec![0u8; PIECE];
                let mut done = 0u64;
                let mut ok = true;
                while ok && done < *len {
                    let want = usize::try_from((*len - done).min(PIECE as u64)).unwrap_or(PIECE);
                    ok = match region.file.read_at(&mut buf[..want], start + done) {
                        Ok(0) | Err(_) => false,
                        Ok(n) => {
                            done += n as u64;
                            piece(ex, &mut enc, &buf[..n], site, &mut sent).await
                        }
                    };
                }
                ok
            }
        };
        if !ok {
            return (false, sent);
        }
    }
    let ok = match enc.finish() {
        Ok(tail) => {
            let ok = ex.send_end(tail, site).await;
            sent += if ok { tail.len() as u64 } else { 0 };
            ok
        }
        Err(_) => false,
    };
    (ok, sent)
}

async fn pieces(
    ex: &mut Exchange<'_>,
    enc: &mut Encoder,
    body: &Bytes,
    site: &Site,
    sent: &mut u64,
) -> bool {
    for part in body.chunks(PIECE) {
        if !piece(ex, enc, part, site, sent).await {
            return false;
        }
    }
    true
}

/// Compresses `data` and sends what the encoder gives out, counted in `sent`.
async fn piece(
    ex: &mut Exchange<'_>,
    enc: &mut Encoder,
    data: &[u8],
    site: &Site,
    sent: &mut u64,
) -> bool {
    match enc.push(data) {
        Ok(coded) => {
            let ok = ex.send_bytes(coded, site).await;
            *sent += if ok { coded.len() as u64 } else { 0 };
            ok
        }
        Err(_) => false,
    }
}

/// Marks a coded variant's key: after the identity entry's own key (a
/// URL's, or a Vary variant's), the variant separator and a NUL, which no
/// secondary key starts with (they start with a field name), so purges by
/// URL, prefix or tag reach the coded variants with their identity entry.
const CODED: &[u8] = b"\x01\0coding=";

/// The hidden field a coded variant keeps: which identity entry it was
/// compressed from (body length and `ETag`), checked with the stored
/// times on every use.
const FROM: &str = "levee-coded-from";

/// The compressed variant of a fresh hit (`obj`, stored under `under` in
/// `cache`) for this exchange's client, when its route compresses, the
/// client accepts a coding and the response is worth compressing: the one
/// stored in memory if it was made from this very identity entry
/// (`true`), else the identity body compressed once now and stored for
/// the next hits (`false`). `None`: send the identity form as it is, or
/// compressed on the way out when it cannot be stored (larger than a
/// memory object may be, or the encoder failed).
///
/// docs/cache.md ("Compression") has the measurement: a stored variant
/// costs a hit about 1/275 of compressing it again.
/// The largest identity body a copy is made of, at once on the worker:
/// about 8 ms of gzip -6 or Brotli 4 (100 KB took 3 ms, bench/README.md),
/// so no hit stalls the worker's other connections for longer. A larger
/// body is compressed on its way out, piece by piece with sends between.
const COPY_AT_ONCE: u64 = 256 * 1024;

pub(crate) fn variant(
    ex: &Exchange<'_>,
    cache: &SiteCache,
    under: &[u8],
    obj: &Object,
) -> Option<(Arc<Object>, bool)> {
    let rules = ex.compress.as_deref()?;
    let coding = crate::compress::offer(rules, &ex.head)?;
    if obj.body.is_empty() || !crate::compress::worth(rules, obj.status, obj.visible_fields()) {
        return None;
    }
    let memory = &cache.tier.store.memory;
    if obj.body.len() > memory.max_object() || obj.body.len() > COPY_AT_ONCE {
        return None;
    }
    let mut key = Vec::with_capacity(under.len() + CODED.len() + 4);
    key.extend_from_slice(under);
    key.extend_from_slice(CODED);
    key.extend_from_slice(coding.token().as_bytes());
    let from = format!(
        "{} {}",
        obj.body.len(),
        String::from_utf8_lossy(obj.field("etag").unwrap_or_default())
    );
    // A variant of another identity entry (refreshed by a 304, replaced by
    // a new response, or purged and fetched again) is never used: its
    // stored times or its origin differ; it is replaced below.
    if let Some(Entry::Object(stored)) = memory.get(&key)
        && stored.meta == obj.meta
        && stored.field(FROM) == Some(from.as_bytes())
    {
        return Some((stored, true));
    }
    // A disk tier body is read whole: it is no larger than a memory object.
    let read;
    let pieces = if obj.body.pieces().is_empty() {
        read = [Bytes::from(obj.body.to_vec().ok()?)];
        &read[..]
    } else {
        obj.body.pieces()
    };
    let mut enc = crate::compress::Encoder::new(coding, rules, false).ok()?;
    let mut body = Vec::new();
    for part in pieces.iter().flat_map(|p| p.chunks(PIECE)) {
        body.extend_from_slice(enc.push(part).ok()?);
    }
    body.extend_from_slice(enc.finish().ok()?);
    let mut head = Vec::with_capacity(obj.visible_head().len() + 64);
    crate::compress::edit_fields(obj.visible_fields(), coding, |n, v| {
        crate::h1::write::field(&mut head, n, v);
    });
    let visible = u32::try_from(head.len()).ok()?;
    crate::h1::write::field(&mut head, FROM.as_bytes(), from.as_bytes());
    let coded = Arc::new(Object {
        status: obj.status,
        visible,
        head: head.into_boxed_slice(),
        body: Body::from(Bytes::from(body)),
        meta: obj.meta.clone(),
        tags: obj.tags.clone(),
    });
    // Memory only: the disk and shared tiers keep the identity form.
    memory.put(key, Entry::Object(coded.clone()));
    Some((coded, false))
}
