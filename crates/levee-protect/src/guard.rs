//! A route's protections, applied once the route is chosen and before its
//! action runs, in this order: allow/deny list (403), Basic auth (401),
//! rate limits (429 with `Retry-After`, or a delay; 400 for a request no
//! key can be read from unambiguously, key.rs). The cheap checks come
//! first, so a denied or unauthenticated request costs no rate-limit state.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use levee_config::RouteProtect;

use crate::access::Acl;
use crate::auth::{BasicAuth, Checked};
use crate::key::Request;
use crate::metrics;
use crate::rate::{Decision, RateLimiter};

/// The `rule` of a `Verdict::Limited` that Basic auth's queue gave.
pub const AUTH_RULE: &str = "auth_basic";

#[derive(Debug)]
pub struct RouteGuard {
    acl: Acl,
    auth: Option<Arc<BasicAuth>>,
    limits: Vec<Arc<RateLimiter>>,
}

/// What the route's protections say about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Pass after waiting this long (a smoothing rate limit).
    Delay(Duration),
    /// 403: the route's allow/deny list.
    Denied,
    /// 401 with this `WWW-Authenticate` value.
    Unauthorized {
        challenge: String,
    },
    /// 400: rate limit `rule` cannot key the request unambiguously (a keyed
    /// query parameter given twice).
    Ambiguous {
        rule: String,
    },
    /// Refused by rate limit `rule` with `status`; retry after whole seconds.
    Limited {
        rule: String,
        status: u16,
        retry_after: u64,
    },
}

impl RouteGuard {
    /// The guard for a route, or `None` when it has no protection.
    /// `limiters` holds every rule by name (validation made sure the names resolve).
    pub fn new(
        protect: &RouteProtect,
        limiters: &HashMap<String, Arc<RateLimiter>>,
        auth: Option<Arc<BasicAuth>>,
    ) -> Option<RouteGuard> {
        let limits: Vec<_> = protect
            .rate_limits
            .iter()
            .filter_map(|name| limiters.get(name).cloned())
            .collect();
        if protect.access.is_empty() && auth.is_none() && limits.is_empty() {
            return None;
        }
        Some(RouteGuard {
            acl: Acl::new(&protect.access),
            auth,
            limits,
        })
    }

    /// Checks `req` arriving at `now`; `authorization` is its `Authorization` header.
    pub async fn check(
        &self,
        req: &impl Request,
        authorization: Option<&[u8]>,
        now: Instant,
    ) -> Verdict {
        let counters = metrics::counters();
        if !self.acl.is_empty() && !self.acl.permits(req.peer()) {
            counters.route_denied.fetch_add(1, Ordering::Relaxed);
            return Verdict::Denied;
        }
        if let Some(auth) = &self.auth {
            match auth.check(authorization, req.peer(), now).await {
                Checked::Valid => {}
                Checked::Invalid => {
                    counters.auth_failed.fetch_add(1, Ordering::Relaxed);
                    return Verdict::Unauthorized {
                        challenge: auth.challenge.clone(),
                    };
                }
                Checked::Busy { status } => {
                    counters.auth_busy.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %req.peer(), status, "Basic auth queue full");
                    return Verdict::Limited {
                        rule: AUTH_RULE.to_owned(),
                        status,
                        retry_after: 1,
                    };
                }
            }
        }
        let mut wait = Duration::ZERO;
        for limiter in &self.limits {
            let key = match limiter.key_of(req) {
                Ok(Some(key)) => key,
                Ok(None) => continue,
                Err(e) if limiter.rule.dry_run => {
                    tracing::info!(rule = %limiter.rule.name, peer = %req.peer(), error = %e, "rate limit (dry run): would refuse");
                    continue;
                }
                Err(e) => {
                    tracing::debug!(rule = %limiter.rule.name, peer = %req.peer(), error = %e, "rate limit key");
                    return Verdict::Ambiguous {
                        rule: limiter.rule.name.clone(),
                    };
                }
            };
            match limiter.decide(key, now).await {
                Decision::Admit => {}
                Decision::Delay(_) if limiter.rule.dry_run => {}
                Decision::Delay(d) => wait = wait.max(d),
                Decision::Refuse { retry_after } => {
                    limiter.top.refused(key, || limiter.key.describe(req));
                    let rule = &limiter.rule;
                    let retry_after =
                        retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                    if rule.dry_run {
                        tracing::info!(rule = %rule.name, peer = %req.peer(), retry_after, "rate limit (dry run): would refuse");
                        continue;
                    }
                    tracing::debug!(rule = %rule.name, peer = %req.peer(), retry_after, "rate limited");
                    return Verdict::Limited {
                        rule: rule.name.clone(),
                        status: rule.status,
                        retry_after: retry_after.max(1),
                    };
                }
            }
        }
        if wait.is_zero() {
            Verdict::Pass
        } else {
            Verdict::Delay(wait)
        }
    }
}
