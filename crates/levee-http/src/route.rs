//! Route selection: which action serves a request on a listener.
//!
//! Rule (docs/config.md): exact host beats wildcard, a longer wildcard beats
//! a shorter one, a route without host is the fallback; within the chosen
//! host class the longest path prefix wins; ties go to the earlier route.
//! Tables are built once per config, so a lookup is a hash probe and a short
//! scan of prefixes already sorted longest first.

use std::collections::HashMap;
use std::sync::Arc;

use levee_config::{HostMatch, Route};

/// The routes of one listener, arranged for lookup. `A` is the resolved action.
#[derive(Debug)]
pub(crate) struct Router<A> {
    exact: HashMap<Box<[u8]>, Vec<Entry<A>>>,
    /// Suffixes such as `.example.com`, longest first.
    wildcard: Vec<(Box<[u8]>, Entries<A>)>,
    fallback: Vec<Entry<A>>,
}

type Entries<A> = Vec<Entry<A>>;

#[derive(Debug)]
struct Entry<A> {
    prefix: Box<[u8]>,
    order: usize,
    action: Arc<A>,
}

impl<A> Router<A> {
    /// Arranges `routes` (already filtered to this listener) with their resolved actions.
    pub(crate) fn new(routes: Vec<(&Route, Arc<A>)>) -> Router<A> {
        let mut router = Router {
            exact: HashMap::new(),
            wildcard: Vec::new(),
            fallback: Vec::new(),
        };
        for (order, (route, action)) in routes.into_iter().enumerate() {
            let entry = |action: Arc<A>| Entry {
                prefix: route.path.as_bytes().into(),
                order,
                action,
            };
            if route.hosts.is_empty() {
                router.fallback.push(entry(action));
                continue;
            }
            for host in &route.hosts {
                match host {
                    HostMatch::Exact(h) => router
                        .exact
                        .entry(h.as_bytes().into())
                        .or_default()
                        .push(entry(action.clone())),
                    HostMatch::Wildcard(suffix) => {
                        let key: Box<[u8]> = suffix.as_bytes().into();
                        match router.wildcard.iter_mut().find(|(s, _)| *s == key) {
                            Some((_, list)) => list.push(entry(action.clone())),
                            None => router.wildcard.push((key, vec![entry(action.clone())])),
                        }
                    }
                }
            }
        }
        let sort = |list: &mut Vec<Entry<A>>| {
            list.sort_by(|a, b| {
                b.prefix
                    .len()
                    .cmp(&a.prefix.len())
                    .then(a.order.cmp(&b.order))
            });
        };
        router.exact.values_mut().for_each(sort);
        router.wildcard.iter_mut().for_each(|(_, l)| sort(l));
        sort(&mut router.fallback);
        router
            .wildcard
            .sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        router
    }

    /// The action for `host` (without port; any case) and `path`.
    pub(crate) fn find(&self, host: &[u8], path: &[u8]) -> Option<&Arc<A>> {
        let mut lowered = [0u8; 256];
        let host = match lowered.get_mut(..host.len()) {
            Some(dst) => {
                dst.copy_from_slice(host);
                dst.make_ascii_lowercase();
                let h: &[u8] = dst;
                h
            }
            None => host,
        };
        let host = host.strip_suffix(b".").unwrap_or(host);
        if let Some(found) = self.exact.get(host).and_then(|l| longest(l, path)) {
            return Some(found);
        }
        for (suffix, list) in &self.wildcard {
            if host.len() > suffix.len()
                && host.ends_with(suffix)
                && let Some(found) = longest(list, path)
            {
                return Some(found);
            }
        }
        longest(&self.fallback, path)
    }
}

fn longest<'a, A>(list: &'a [Entry<A>], path: &[u8]) -> Option<&'a Arc<A>> {
    list.iter()
        .find(|e| path.starts_with(&e.prefix))
        .map(|e| &e.action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_config::{Action, RespondAction};

    fn route(hosts: &[&str], path: &str) -> Route {
        Route {
            listeners: vec![],
            hosts: hosts
                .iter()
                .map(|h| match h.strip_prefix('*') {
                    Some(s) => HostMatch::Wildcard(s.to_string()),
                    None => HostMatch::Exact(h.to_string()),
                })
                .collect(),
            path: path.to_string(),
            action: Action::Respond(RespondAction {
                status: 200,
                body: String::new(),
                content_type: String::new(),
            }),
            protect: Default::default(),
            compress: None,
            rewrite: Default::default(),
            shape: Default::default(),
        }
    }

    fn router(routes: &[Route]) -> Router<usize> {
        Router::new(
            routes
                .iter()
                .enumerate()
                .map(|(i, r)| (r, Arc::new(i)))
                .collect(),
        )
    }

    #[test]
    fn exact_beats_wildcard_beats_fallback() {
        let routes = [
            route(&[], "/"),
            route(&["*.example.com"], "/"),
            route(&["www.example.com"], "/"),
            route(&["*.a.example.com"], "/"),
        ];
        let r = router(&routes);
        assert_eq!(**r.find(b"www.example.com", b"/x").unwrap(), 2);
        assert_eq!(**r.find(b"WWW.Example.COM", b"/x").unwrap(), 2);
        assert_eq!(**r.find(b"img.example.com", b"/x").unwrap(), 1);
        assert_eq!(**r.find(b"b.a.example.com", b"/x").unwrap(), 3);
        assert_eq!(**r.find(b"example.com", b"/x").unwrap(), 0);
        assert_eq!(**r.find(b"other.org", b"/x").unwrap(), 0);
    }

    #[test]
    fn longest_prefix_then_file_order() {
        let routes = [
            route(&[], "/"),
            route(&[], "/api/"),
            route(&[], "/api/v2/"),
            route(&[], "/api/"),
        ];
        let r = router(&routes);
        assert_eq!(**r.find(b"h", b"/api/v2/x").unwrap(), 2);
        assert_eq!(**r.find(b"h", b"/api/v1").unwrap(), 1);
        assert_eq!(**r.find(b"h", b"/apix").unwrap(), 0);
    }

    #[test]
    fn host_class_without_matching_path_falls_through() {
        let routes = [route(&["a.test"], "/only/"), route(&[], "/")];
        let r = router(&routes);
        assert_eq!(**r.find(b"a.test", b"/other").unwrap(), 1);
        assert!(
            router(&[route(&["a.test"], "/")])
                .find(b"b.test", b"/")
                .is_none()
        );
    }
}
