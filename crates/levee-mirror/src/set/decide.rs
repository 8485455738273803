//! A request's answer from a set: the local file, a redirect to a ranked
//! mirror (with a sampled check of it), or a document listing them.

use std::borrow::Cow;
use std::time::SystemTime;

use super::{ALTERNATIVES, Answer, Ask, Check, MAX_PENDING_CHECKS, MirrorSet, View, Want};
use crate::choose::{self, Client, Ranked};
use crate::mirror::{Mirror, Profile};
use crate::paths::FileId;
use crate::render::{self, Offer, join};
use crate::tree::{Resolved, Tree};

impl MirrorSet {
    /// The mirrors that may serve file `id` to `client`, ranked.
    fn offers<'v>(
        &self,
        view: &'v View,
        id: FileId,
        client: &Client,
        https: bool,
        now: u64,
        limit: usize,
    ) -> Vec<(&'v Mirror, Ranked)> {
        let generation = view.tree.generation;
        let eligible: Vec<&Mirror> = view
            .mirrors
            .iter()
            .filter(|m| {
                m.usable()
                    && m.has(generation, id)
                    && m.profile.base(https).is_some()
                    && m.profile.admits(client.geo.country)
                    && m.live.has_room(&m.profile.config, now)
            })
            .collect();
        if eligible.is_empty() {
            return Vec::new();
        }
        let profiles: Vec<&Profile> = eligible.iter().map(|m| &*m.profile).collect();
        let ranked = choose::with_rng(|rng| choose::rank(&profiles, client, limit, rng));
        ranked.into_iter().map(|r| (eligible[r.index], r)).collect()
    }

    /// Decides what answers `ask` (docs/mirrors.md, "What a request gets"):
    /// the file it names, then a redirect or a document listing mirrors.
    pub fn decide(&self, ask: &Ask<'_>) -> Answer {
        // A guard, not a clone: no reference count shared between workers
        // is touched on the request path.
        let view = self.view.load();
        let (path, want) = wanted(&view.tree, ask);
        if ask.directory || !ask.fetch {
            return Answer::Local;
        }
        let id = match view.tree.resolve(path) {
            Resolved::File { id, .. } => id,
            Resolved::Outside => return Answer::Forbidden,
            Resolved::Missing => return Answer::Local,
        };
        let Some(meta) = view.tree.meta(id) else {
            return Answer::Local;
        };
        let client = Client {
            ip: ask.client,
            geo: self.locate(ask.client),
        };
        let now = self.seconds(ask.now);
        if want == Want::File {
            return self.redirect(&view, ask, id, meta.size, &client, now);
        }
        let chosen = self.offers(&view, id, &client, ask.https, now, usize::MAX);
        let file_path = view.tree.path(id);
        let scheme = if ask.https { "https" } else { "http" };
        let host = String::from_utf8_lossy(ask.host);
        let listed = Listing {
            offers: to_offers(&chosen, file_path, ask.https),
            origin: join(&format!("{scheme}://{host}"), file_path),
            sha: view.tree.digest(id),
            text: String::from_utf8_lossy(file_path),
            size: meta.size,
        };
        match want {
            Want::Metalink => self.metalink(listed),
            Want::MirrorList | Want::Json => mirror_list(listed, &client, want == Want::Json),
            Want::File => Answer::Local,
        }
    }

    /// A download: counted, then redirected to the first ranked mirror (the
    /// others and the Metalink named in `Link` fields), or served here when
    /// the file is too small, excluded, or no mirror may serve it.
    fn redirect(
        &self,
        view: &View,
        ask: &Ask<'_>,
        id: FileId,
        size: u64,
        client: &Client,
        now: u64,
    ) -> Answer {
        let settings = self.settings.load();
        let chosen = if size < settings.min_size || view.tree.excluded(id) {
            Vec::new()
        } else {
            self.offers(view, id, client, ask.https, now, 1 + ALTERNATIVES)
        };
        view.tree.count_download(id);
        self.stats.count(client.geo.country, SystemTime::now());
        let Some((first, _)) = chosen.first() else {
            self.stats
                .local
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Answer::Local;
        };
        first.live.count(size, now);
        let file_path = view.tree.path(id);
        let offers = to_offers(&chosen, file_path, ask.https);
        let location = offers[0].url.clone();
        self.sample_check(&settings, first, &location, view.tree.generation, id, size);
        let mut fields = vec![("Location", location)];
        let meta4 = format!("/{}.meta4", render::url_path(file_path));
        fields.extend(render::link_fields(&offers[1..], &meta4));
        if let Some(sha) = view.tree.digest(id) {
            fields.extend(render::digest_fields(sha));
        }
        Answer::Redirect { fields }
    }

    /// The file's Metalink: its mirrors, then this server as the origin.
    fn metalink(&self, listed: Listing<'_>) -> Answer {
        let pieces = listed.sha.and_then(|s| self.store.pieces(s));
        let mut all = listed.offers;
        all.push(Offer {
            mirror: "origin".into(),
            url: listed.origin.clone(),
            country: None,
            priority: all.len() as u32 + 1,
            tier: "origin",
            distance_km: None,
        });
        let text = &listed.text;
        let name = text.rsplit('/').next().unwrap_or(text);
        let doc = render::metalink::render(
            &render::metalink::Described {
                name,
                size: listed.size,
                sha256: listed.sha,
                pieces: pieces.as_ref().map(|(l, p)| (*l, p.as_slice())),
                origin: &format!("{}.meta4", listed.origin),
                published: SystemTime::now(),
            },
            &all,
        );
        Answer::Document {
            content_type: render::metalink::CONTENT_TYPE,
            body: doc.into_bytes(),
        }
    }

    /// Queues one redirect in `verify_sample` for a HEAD check.
    fn sample_check(
        &self,
        settings: &levee_config::MirrorSet,
        mirror: &Mirror,
        url: &str,
        generation: u64,
        file: FileId,
        size: u64,
    ) {
        let n = u64::from(settings.verify_sample);
        if n == 0 || choose::with_rng(|r| r.below(n)) != 0 {
            return;
        }
        // Never wait on the request path: a busy queue skips this sample.
        let Ok(mut q) = self.checks.try_lock() else {
            return;
        };
        if q.len() < MAX_PENDING_CHECKS {
            q.push_back(Check {
                mirror: mirror.profile.name().to_owned(),
                url: url.to_owned(),
                generation,
                file,
                size,
            });
            self.checks_ready.notify_one();
        }
    }
}

/// What a document about a file lists: its mirrors, ranked, and the file.
struct Listing<'v> {
    offers: Vec<Offer>,
    /// The file's URL on this server.
    origin: String,
    sha: Option<&'v [u8; 32]>,
    /// The file's path, as text.
    text: Cow<'v, str>,
    size: u64,
}

/// The file's mirror list, as HTML or JSON.
fn mirror_list(listed: Listing<'_>, client: &Client, json: bool) -> Answer {
    let country = client
        .geo
        .country
        .map(|c| String::from_utf8_lossy(&c).into_owned());
    let described = render::list::Listed {
        path: &listed.text,
        size: listed.size,
        sha256: listed.sha,
        origin: &listed.origin,
        client_country: country.as_deref(),
    };
    if json {
        Answer::Document {
            content_type: "application/json",
            body: render::list::json(&described, &listed.offers).into_bytes(),
        }
    } else {
        Answer::Document {
            content_type: "text/html; charset=utf-8",
            body: render::list::html(&described, &listed.offers).into_bytes(),
        }
    }
}

/// The path the decision works on and what is wanted of it: a `.meta4`
/// suffix that names no file asks for the Metalink of the file without it.
fn wanted<'a>(tree: &Tree, ask: &Ask<'a>) -> (&'a [u8], Want) {
    let query_wants = |key: &[u8]| {
        ask.query
            .split(|&b| b == b'&' || b == b';')
            .any(|kv| kv.split(|&b| b == b'=').next() == Some(key))
    };
    if let Some(stem) = ask.path.strip_suffix(b".meta4")
        && tree.resolve(ask.path) == Resolved::Missing
    {
        return (stem, Want::Metalink);
    }
    let want = if query_wants(b"metalink") {
        Want::Metalink
    } else if query_wants(b"mirrorlist") {
        Want::MirrorList
    } else if query_wants(b"json") {
        Want::Json
    } else if ask.accept.is_some_and(|a| {
        a.windows(25)
            .any(|w| w.eq_ignore_ascii_case(b"application/metalink4+xml"))
    }) {
        Want::Metalink
    } else {
        Want::File
    };
    (ask.path, want)
}

fn to_offers(chosen: &[(&Mirror, Ranked)], path: &[u8], https: bool) -> Vec<Offer> {
    chosen
        .iter()
        .enumerate()
        .filter_map(|(i, (m, r))| {
            Some(Offer {
                mirror: m.profile.name().to_owned(),
                url: join(m.profile.base(https)?, path),
                country: m.profile.config.country.clone(),
                priority: i as u32 + 1,
                tier: r.tier.as_str(),
                distance_km: r.distance_km,
            })
        })
        .collect()
}
