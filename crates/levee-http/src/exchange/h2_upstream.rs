//! The exchange's side of a stream relayed to an HTTP/2 upstream's server
//! (proxy/respond.rs): what the server's response head takes on its way
//! down ([`Downward`]), handed to whichever end writes it
//! (exchange/h1/h2.rs for an HTTP/1 client, exchange/h2/relay.rs for an
//! HTTP/2 one).

use super::{End, Exchange, Relayed};
use crate::shape::Dress;
use crate::site::Site;

/// What an HTTP/2 server's response head takes on its way down: the same
/// inputs an HTTP/1 server's head gets in [`Exchange::relay_response_h1`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Downward<'a> {
    /// HSTS, the route's header rules, the request id (shape.rs).
    pub dress: Dress<'a>,
    /// Whole lines levee adds (`Name: value\r\n` each): a sticky
    /// `Set-Cookie`, the cache's lines (proxy/respond.rs).
    pub lines: &'a [u8],
    /// The route's compression (compress.rs).
    pub compress: Option<&'a levee_config::Compress>,
}

impl Downward<'_> {
    /// The server's error `status` is answered with the route's page
    /// instead (`intercept_errors`), as [`Exchange::intercepts`] decides
    /// for an HTTP/1 server.
    pub(crate) fn intercepts(&self, status: u16) -> bool {
        self.dress.shape.is_some_and(|s| s.intercepts(status))
    }
}

impl Exchange<'_> {
    /// Relays the request and response of a stream open on an HTTP/2
    /// server (`response`, and `up` for a body still to send), both ways
    /// at once: gRPC streams in both directions. The response head gets
    /// `extra` lines as an HTTP/1 server's does; a server's error the
    /// route intercepts ends the relay before its head goes out
    /// ([`StreamEnd::Intercepted`](super::StreamEnd::Intercepted)), for the caller to answer with the page.
    pub async fn relay_h2(
        &mut self,
        response: ::h2::client::ResponseFuture,
        up: Option<::h2::SendStream<bytes::Bytes>>,
        extra: &[u8],
        site: &Site,
    ) -> Relayed {
        let down = Downward {
            dress: Dress::of(&self.head, &self.origin, &self.id, &self.shaping, self.hsts),
            lines: extra,
            compress: self.compress.as_deref(),
        };
        match &mut self.end {
            End::H1(c) => {
                c.relay_h2(&self.head, response, up, site, self.keep_alive, &down)
                    .await
            }
            End::H2(s) => s.relay_h2(&self.head, response, up, site, &down).await,
        }
    }
}
