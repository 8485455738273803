//! A cache hit compressed on its way out (compress.rs): the cache stores
//! the identity form of a response, whatever the client that filled it
//! accepted, and each hit is compressed for its own client when the route
//! compresses. docs/cache.md ("Compression") has the measurement this
//! choice rests on.

use std::os::unix::fs::FileExt;

use bytes::Bytes;
use levee_cache::body::Slice;

use super::reply::Answer;
use crate::compress::Encoder;
use crate::exchange::Exchange;
use crate::site::Site;

/// Read from a disk tier body at a time.
const PIECE: usize = 16 * 1024;

/// Sends `answer` compressed by `enc`: its fields as compressing changes
/// them, then each body piece compressed and flushed. False if the client
/// is gone or the body could not be read.
pub(crate) async fn send(
    ex: &mut Exchange<'_>,
    answer: Answer,
    mut enc: Box<Encoder>,
    site: &Site,
) -> bool {
    let lines = answer.head.get(answer.fields.clone()).unwrap_or_default();
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    crate::compress::edit_fields(crate::compress::lines(lines), enc.coding(), |n, v| {
        fields.push((n.to_vec(), v.to_vec()));
    });
    if !ex.send_coded_head(answer.status, &fields, site).await {
        return false;
    }
    for slice in &answer.body {
        let ok = match slice {
            Slice::Bytes(b) => pieces(ex, &mut enc, b, site).await,
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
                            piece(ex, &mut enc, &buf[..n], site).await
                        }
                    };
                }
                ok
            }
        };
        if !ok {
            return false;
        }
    }
    match enc.finish() {
        Ok(tail) => ex.send_end(tail, site).await,
        Err(_) => false,
    }
}

async fn pieces(ex: &mut Exchange<'_>, enc: &mut Encoder, body: &Bytes, site: &Site) -> bool {
    for part in body.chunks(PIECE) {
        if !piece(ex, enc, part, site).await {
            return false;
        }
    }
    true
}

async fn piece(ex: &mut Exchange<'_>, enc: &mut Encoder, data: &[u8], site: &Site) -> bool {
    match enc.push(data) {
        Ok(coded) => ex.send_bytes(coded, site).await,
        Err(_) => false,
    }
}
