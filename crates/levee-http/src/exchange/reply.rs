//! A response levee makes itself, whole: an error, a redirect, a
//! `respond` route's answer, a document. HTTP/1 writes it as one buffer
//! (`h1::write::simple_response`); HTTP/2 as HEADERS and one DATA frame.

use std::borrow::Cow;

use crate::h1::write::{error_body, simple_response};

/// A complete response of levee's own.
#[derive(Debug, Clone)]
pub struct Reply<'a> {
    pub status: u16,
    /// Fields beyond `Server`, `Date`, `Content-Type` and `Content-Length`.
    pub fields: &'a [(&'a str, &'a [u8])],
    pub content_type: &'a str,
    pub body: Cow<'a, [u8]>,
    /// Ask an HTTP/1 client to close the connection after it.
    pub close: bool,
    /// levee's error body ([`Reply::error`]): an error page may replace it
    /// (shape/pages.rs).
    pub error: bool,
}

impl<'a> Reply<'a> {
    /// An error: a one-line text body naming the status.
    pub fn error(status: u16, fields: &'a [(&'a str, &'a [u8])]) -> Reply<'a> {
        Reply {
            status,
            fields,
            content_type: "text/plain; charset=utf-8",
            body: Cow::Owned(error_body(status)),
            close: false,
            error: true,
        }
    }

    /// The same, asking an HTTP/1 client to close the connection after it.
    pub fn closing(self) -> Reply<'a> {
        Reply {
            close: true,
            ..self
        }
    }

    /// The HTTP/1.1 bytes: head and (unless `head_only`) body.
    pub fn h1(&self, keep_alive: bool, head_only: bool) -> Vec<u8> {
        simple_response(
            self.status,
            self.fields,
            self.content_type,
            &self.body,
            keep_alive && !self.close,
            head_only,
        )
    }

    /// Body bytes as the client gets them (none for a status without one).
    pub fn body_len(&self, head_only: bool) -> u64 {
        if head_only || crate::message::status_has_no_body(self.status) {
            0
        } else {
            self.body.len() as u64
        }
    }
}
