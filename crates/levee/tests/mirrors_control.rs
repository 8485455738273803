//! Operating the redirector: the control API and `levee ctl mirrors`
//! (list, scan, enable, disable, add, edit), statistics in `/metrics`, a
//! mirror that starts lying disabled by itself, reloads that keep what
//! was learnt, and `levee check` refusing what `levee run` refuses.

mod support;

use std::time::Duration;

use support::*;

fn ctl(w: &World, args: &[&str]) -> (bool, String) {
    let admin = format!("127.0.0.1:{}", w.admin);
    let mut all = vec!["ctl", "--admin", &admin, "mirrors"];
    all.extend_from_slice(args);
    let out = levee_cmd(&all);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn ctl_lists_switches_adds_and_scans() {
    let w = World::start("");
    let (ok, table) = ctl(&w, &["list"]);
    assert!(ok, "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("dl") && l.contains("de1") && l.contains(" up ")),
        "{table}"
    );
    let file = "/pub/releases/1.0/readme.txt";

    let (ok, out) = ctl(&w, &["disable", "dl", "fr"]);
    assert!(ok, "{out}");
    assert_eq!(json(&out)["state"], "disabled", "{out}");
    for _ in 0..10 {
        assert_ne!(w.sent(FR_CLIENT, file).1, "fr");
    }
    let (ok, out) = ctl(&w, &["enable", "dl", "fr"]);
    assert!(ok, "{out}");
    assert_eq!(w.sent(FR_CLIENT, file), (302, "fr"));

    // Edit through the API: fr moves to Germany and takes German clients' share.
    let edit = r#"{"http": "BASE", "country": "DE", "weight": 1000}"#
        .replace("BASE", &w.mirrors[2].base());
    let (ok, out) = ctl(&w, &["edit", "dl", "fr", &edit]);
    assert!(ok, "{out}");
    assert_eq!(json(&out)["country"], "DE", "{out}");
    let to_fr = (0..40)
        .filter(|_| w.sent(DE_CLIENT, file).1 == "fr")
        .count();
    assert!(
        to_fr > 20,
        "weight 1000 of 1400 in the German tier: {to_fr} of 40"
    );

    // A bad mirror is refused with every reason.
    let (ok, out) = ctl(
        &w,
        &[
            "add",
            "dl",
            r#"{"name": "x", "http": "ftp://x", "weight": 0}"#,
        ],
    );
    assert!(!ok, "{out}");
    let (status, body) = admin_request(
        w.admin,
        "POST",
        "/mirrors/dl/mirrors",
        r#"{"name": "x", "http": "ftp://x", "weight": 0}"#,
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("mirror.http") && body.contains("mirror.weight"),
        "{body}"
    );

    // A new mirror is scanned at once and offered.
    let extra = mirror("jp", [127, 0, 0, 25], &w.files, &[], &[], false);
    let add = format!(
        r#"{{"name": "jp", "http": "{}", "country": "JP", "continent": "AS"}}"#,
        extra.base()
    );
    let (ok, out) = ctl(&w, &["add", "dl", &add]);
    assert!(ok, "{out}");
    let (status, _) = admin_request(w.admin, "POST", "/mirrors/dl/mirrors", &add);
    assert_eq!(status, 409, "adding it twice");
    wait_up(w.admin, &["jp"]);
    let out = std::process::Command::new("curl")
        .args(["-s", "--interface", NET_CLIENT])
        .arg(w.url("/pub/releases/1.0/readme.txt?json"))
        .output()
        .expect("curl");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v["mirrors"][0]["name"], "us",
        "its preferred network first: {v}"
    );
    assert_eq!(
        v["mirrors"][1]["name"], "jp",
        "then the client's country: {v}"
    );
    assert_eq!(v["mirrors"][1]["tier"], "country");
    let (ok, out) = ctl(&w, &["scan", "dl"]);
    assert!(ok, "{out}");
    assert_eq!(json(&out)["scanning"], true, "{out}");
    let saved =
        std::fs::read_to_string(w.levee.dir().join("state/mirrors.toml")).expect("saved edits");
    assert!(saved.contains("name = \"jp\""), "{saved}");
}

#[test]
fn downloads_are_counted_per_file_mirror_country_and_day() {
    let w = World::start("top_files = 2\n");
    for _ in 0..3 {
        w.sent(DE_CLIENT, "/pub/releases/1.0/readme.txt");
    }
    w.sent(US_CLIENT, "/pub/releases/1.0/readme.txt");
    w.sent(US_CLIENT, "/pub/small.txt");
    w.sent(US_CLIENT, "/pub/data/a%20b.bin");
    let (_, metrics) = admin_request(w.admin, "GET", "/metrics", "");
    let value = |series: &str| {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert_eq!(
        value(
            "levee_mirror_file_downloads_total{set=\"dl\",path=\"/pub/releases/1.0/readme.txt\"}"
        ),
        4.0
    );
    assert_eq!(
        value("levee_mirror_country_downloads_total{set=\"dl\",country=\"DE\"}"),
        3.0
    );
    assert_eq!(
        value("levee_mirror_country_downloads_total{set=\"dl\",country=\"US\"}"),
        3.0
    );
    assert_eq!(
        value("levee_mirror_redirects_total{set=\"dl\",mirror=\"us\"}"),
        2.0
    );
    assert_eq!(value("levee_mirror_local_total{set=\"dl\"}"), 1.0);
    assert_eq!(value("levee_mirror_up{set=\"dl\",mirror=\"fr\"}"), 1.0);
    // Bounded: only the top 2 files.
    let files = metrics
        .lines()
        .filter(|l| l.starts_with("levee_mirror_file_downloads_total{"))
        .count();
    assert_eq!(files, 2, "{metrics}");
    let (status, body) = admin_request(w.admin, "GET", "/mirrors/dl/stats", "");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["files"][0]["path"], "/pub/releases/1.0/readme.txt");
    assert_eq!(v["mirrors"]["(local)"], 1);
    assert_eq!(v["countries"]["DE"], 3);
    assert_eq!(
        v["days"]
            .as_object()
            .map(|d| d.values().map(|n| n.as_u64().unwrap_or(0)).sum::<u64>()),
        Some(6)
    );
}

#[test]
fn a_mirror_that_starts_lying_is_disabled_by_itself() {
    // Every redirect is checked afterwards; one wrong answer is enough.
    let w = World::start("verify_sample = 1\nmax_strikes = 1\n");
    let path = "pub/de-only.bin";
    // de2's copy changes size after its scan: its listing said otherwise.
    std::fs::write(w.mirrors[1].nginx.root().join(path), b"truncated").expect("write");
    let bad = poll(Duration::from_secs(20), || {
        w.sent(DE_CLIENT, &format!("/{path}"));
        (mirror_state(w.admin, "de2")["state"] == "auto-disabled").then_some(())
    });
    let state = mirror_state(w.admin, "de2");
    assert!(bad.is_some(), "{state}");
    assert!(
        state["problem"]
            .as_str()
            .unwrap_or("")
            .contains("through a redirect"),
        "{state}"
    );
    assert_eq!(state["strikes"], 1);
    for _ in 0..20 {
        assert_eq!(
            w.sent(DE_CLIENT, "/pub/releases/1.0/readme.txt"),
            (302, "de1")
        );
    }
    // An operator puts it back.
    let (status, _) = admin_request(w.admin, "POST", "/mirrors/dl/mirrors/de2/enable", "{}");
    assert_eq!(status, 200);
    assert_eq!(mirror_state(w.admin, "de2")["state"], "up");
}

#[test]
fn a_spot_check_catches_a_piece_that_differs() {
    // The probe fetches a file that stays intact (excluded, so unhashed:
    // only its size is compared); the spot checks find the bad piece.
    let w = World::start("spot_check_interval = \"1s\"\nmax_strikes = 1\n");
    let hashed = poll(Duration::from_secs(60), || {
        let (_, body) = admin_request(w.admin, "GET", "/mirrors/dl", "");
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["hashed"].as_u64()? >= 6).then_some(())
    });
    assert!(hashed.is_some(), "the files were never hashed");
    let edit = format!(
        r#"{{"http": "{}", "country": "FR", "continent": "EU", "probe_path": "/pub/releases/1.0/image.iso.asc"}}"#,
        w.mirrors[2].base()
    );
    let (status, body) = admin_request(w.admin, "PUT", "/mirrors/dl/mirrors/fr", &edit);
    assert_eq!(status, 200, "{body}");
    wait_up(w.admin, &["fr"]);
    // One byte in the middle of the 3 MiB image changes; the size stays.
    let iso = w.mirrors[2].nginx.root().join("pub/releases/1.0/image.iso");
    let mut bytes = std::fs::read(&iso).expect("read");
    bytes[1_500_000] ^= 0xff;
    // Same size and time, as a corrupted copy looks to a listing: a newer
    // time would make a later scan call the copy stale instead.
    let modified = std::fs::metadata(&iso)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(&iso, &bytes).expect("write");
    std::fs::File::options()
        .write(true)
        .open(&iso)
        .and_then(|f| f.set_modified(modified))
        .expect("set mtime");
    let caught = poll(Duration::from_secs(60), || {
        (mirror_state(w.admin, "fr")["state"] == "auto-disabled").then_some(())
    });
    let state = mirror_state(w.admin, "fr");
    assert!(caught.is_some(), "{state}");
    let problem = state["problem"].as_str().unwrap_or("");
    assert!(
        problem.contains("image.iso: bytes 1310720-1572863 differ"),
        "{state}"
    );
    let ranged = w.mirrors[2]
        .nginx
        .settled_entries()
        .iter()
        .any(|e| e.get("uri") == "/pub/releases/1.0/image.iso" && e.get("status") == "206");
    assert!(ranged, "a ranged GET of one piece");
    for _ in 0..10 {
        assert_ne!(w.sent(FR_CLIENT, "/pub/releases/1.0/image.iso").1, "fr");
    }
}

#[test]
fn a_reload_keeps_scans_and_health() {
    let w = World::start("");
    let before = mirror_state(w.admin, "us");
    let listings = |w: &World| w.mirrors[0].hits("/");
    let listed = listings(&w);
    assert!(listed >= 1, "de1 was scanned through its listing");
    w.levee.reload();
    // Straight after the reload, before any new scan could finish.
    let after = mirror_state(w.admin, "us");
    assert_eq!(after["state"], "up", "{after}");
    assert_eq!(after["files"], before["files"]);
    assert_eq!(
        w.sent(US_CLIENT, "/pub/releases/1.0/readme.txt"),
        (302, "us")
    );
}

#[test]
fn check_refuses_what_run_refuses() {
    let setup = LeveeSetup::new();
    let dir = TempDir::new("mirrors-check");
    std::fs::write(dir.join("bad.mmdb"), b"not a database").expect("write");
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:{}\"\n[[route]]\nmirrors = \"dl\"\n[mirrors.dl]\nroot = \"{}\"\nstate_dir = \"{}\"\ngeoip = \"{}\"\n[[mirrors.dl.mirror]]\nname = \"a\"\nhttp = \"http://127.0.0.1:1\"\n",
        setup.port,
        dir.join("missing").display(),
        dir.join("state").display(),
        dir.join("bad.mmdb").display(),
    );
    std::fs::write(setup.config_path(), &config).expect("write");
    let path = setup.config_path().display().to_string();
    let out = levee_cmd(&["check", "-c", &path]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("mirrors.dl.root") && text.contains("mirrors.dl.geoip"),
        "{text}"
    );
    let mut levee = setup.spawn(&config);
    let status = levee.wait_exit(Duration::from_secs(15));
    assert!(!status.success(), "levee run must refuse it too");
}
