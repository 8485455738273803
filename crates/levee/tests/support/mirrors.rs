//! A download site and its mirrors for the `mirrors*` tests: a generated
//! tree behind a symlinked virtual-host directory, nginx mirrors on their
//! own loopback addresses with different subsets (one stale), an rsync
//! daemon serving one mirror's listing, a tiny GeoIP database built with
//! Python's mmdb-writer, and curl clients bound to 127.x.y.z addresses the
//! database places in different countries.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

/// Clients by where the test GeoIP database puts them.
pub const DE_CLIENT: &str = "127.0.1.7";
pub const FR_CLIENT: &str = "127.0.2.7";
pub const US_CLIENT: &str = "127.0.3.7";
/// Cairo, in AS64505, which `de2` is in.
pub const EG_CLIENT: &str = "127.0.5.7";
/// Rabat: continent AF, no mirror there; the nearest are in Europe.
pub const MA_CLIENT: &str = "127.0.7.7";
/// In `us`'s preferred `networks` (and placed in JP by the database).
pub const NET_CLIENT: &str = "127.0.6.7";
/// In no network of the database.
pub const UNKNOWN_CLIENT: &str = "127.0.9.7";

/// The local tree: path under the root, content.
pub fn tree_files() -> BTreeMap<&'static str, Vec<u8>> {
    let mut f = BTreeMap::new();
    f.insert("pub/small.txt", random_bytes(100, 1));
    f.insert("pub/releases/1.0/image.iso", random_bytes(3 << 20, 2));
    f.insert("pub/releases/1.0/image.iso.asc", random_bytes(10_000, 3));
    f.insert("pub/releases/1.0/readme.txt", random_bytes(8_000, 4));
    f.insert("pub/only-local.bin", random_bytes(20_000, 5));
    f.insert("pub/fr-stale.bin", random_bytes(50_000, 6));
    f.insert("pub/old-copy.bin", random_bytes(25_000, 7));
    f.insert("pub/de-only.bin", random_bytes(40_000, 8));
    f.insert("pub/data/a b.bin", random_bytes(30_000, 9));
    f
}

/// Which mirror has which file: `Some(content)` to differ from the tree.
fn holds(mirror: &str, path: &str) -> bool {
    match path {
        "pub/only-local.bin" => false,
        "pub/de-only.bin" => mirror.starts_with("de"),
        _ => true,
    }
}

/// A mirror: nginx with autoindex on its own loopback address, and for
/// `us` an rsync daemon listing the same directory.
pub struct MirrorSite {
    pub name: &'static str,
    pub nginx: Nginx,
    pub rsync: Option<Rsyncd>,
}

impl MirrorSite {
    pub fn base(&self) -> String {
        format!("http://{}", self.nginx.addr())
    }

    /// Requests for `path` nginx has logged.
    pub fn hits(&self, path: &str) -> usize {
        self.nginx
            .settled_entries()
            .iter()
            .filter(|e| e.get("uri") == path)
            .count()
    }
}

pub struct Rsyncd {
    child: Child,
    pub url: String,
    _dir: TempDir,
}

impl Rsyncd {
    /// Serves `path` as module `mirror` on `ip`.
    pub fn start(ip: [u8; 4], path: &Path) -> Rsyncd {
        let rsync = find_in_path("rsync").expect("rsync not installed: run scripts/test");
        let dir = TempDir::new("rsyncd");
        let port = free_port();
        let conf = format!(
            "use chroot = no\nread only = yes\nuid = 0\ngid = 0\n[mirror]\npath = {}\n",
            path.display()
        );
        fs::write(dir.join("rsyncd.conf"), conf).expect("write rsyncd.conf");
        let [a, b, c, d] = ip;
        let mut child = Command::new(rsync)
            .args(["--daemon", "--no-detach"])
            .arg(format!("--config={}", dir.join("rsyncd.conf").display()))
            .arg(format!("--address={a}.{b}.{c}.{d}"))
            .arg(format!("--port={port}"))
            .arg(format!("--log-file={}", dir.join("rsyncd.log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr.log")).expect("stderr"))
            .process_group(0)
            .spawn()
            .expect("spawn rsync --daemon");
        let logs = [dir.join("stderr.log"), dir.join("rsyncd.log")];
        wait_listening(&mut child, ip, port, "rsync daemon", &logs);
        Rsyncd {
            child,
            url: format!("rsync://{a}.{b}.{c}.{d}:{port}/mirror"),
            _dir: dir,
        }
    }
}

impl Drop for Rsyncd {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Starts mirror `name` on `ip` with its share of `files`; `stale` files
/// get other content of another size, `old` ones the right content with a
/// time ten days back.
pub fn mirror(
    name: &'static str,
    ip: [u8; 4],
    files: &BTreeMap<&'static str, Vec<u8>>,
    stale: &[&str],
    old: &[&str],
    with_rsync: bool,
) -> MirrorSite {
    let nginx = Nginx::start_at(ip, free_port(), "location / { autoindex on; }");
    for (path, content) in files {
        if !holds(name, path) {
            continue;
        }
        let written = if stale.contains(path) {
            nginx.put_file(path, &random_bytes(content.len() + 123, 99))
        } else {
            nginx.put_file(path, content)
        };
        if old.contains(path) {
            let status = Command::new("touch")
                .args(["-d", "10 days ago"])
                .arg(&written)
                .status()
                .expect("touch");
            assert!(status.success());
        }
    }
    let rsync = with_rsync.then(|| Rsyncd::start(ip, &nginx.root()));
    MirrorSite { name, nginx, rsync }
}

/// The tree under `base/storage/tree`, reached through the symlinked
/// virtual-host directory `base/vhosts/dl.example.org`, which is the root
/// levee is given; with links inside (a directory and a file) and out.
pub fn local_tree(base: &Path, files: &BTreeMap<&'static str, Vec<u8>>) -> PathBuf {
    use std::os::unix::fs::symlink;
    let tree = base.join("storage/tree");
    for (path, content) in files {
        let p = tree.join(path);
        fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        fs::write(p, content).expect("write");
    }
    fs::write(base.join("secret.txt"), random_bytes(9000, 77)).expect("write");
    symlink("releases/1.0", tree.join("pub/latest")).expect("link");
    symlink("releases/1.0/image.iso", tree.join("pub/latest.iso")).expect("link");
    symlink("../../../secret.txt", tree.join("pub/escape.txt")).expect("link");
    fs::create_dir_all(base.join("vhosts")).expect("mkdir");
    symlink(&tree, base.join("vhosts/dl.example.org")).expect("link");
    base.join("vhosts/dl.example.org")
}

/// The test GeoIP database (country, continent, location, ASN).
pub fn geoip(path: &Path) {
    let py = python_with("mmdb_writer, netaddr");
    let script = r#"
import sys
from mmdb_writer import MMDBWriter
from netaddr import IPSet
w = MMDBWriter(ip_version=4, database_type='GeoIP2-City', languages=['en'], description='levee test')
def put(net, country, continent, lat, lon, asn):
    w.insert_network(IPSet([net]), {
        'country': {'iso_code': country},
        'continent': {'code': continent},
        'location': {'latitude': lat, 'longitude': lon},
        'autonomous_system_number': asn,
    })
put('127.0.1.0/24', 'DE', 'EU', 52.52, 13.405, 64501)
put('127.0.2.0/24', 'FR', 'EU', 48.857, 2.352, 64502)
put('127.0.3.0/24', 'US', 'NA', 40.713, -74.006, 64503)
put('127.0.5.0/24', 'EG', 'AF', 30.044, 31.236, 64505)
put('127.0.6.0/24', 'JP', 'AS', 35.68, 139.69, 64506)
put('127.0.7.0/24', 'MA', 'AF', 34.02, -6.83, 64507)
w.to_db_file(sys.argv[1])
"#;
    let out = Command::new(py)
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "building the GeoIP database failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One `[[mirrors.dl.mirror]]` table.
pub fn mirror_toml(m: &MirrorSite, extra: &str) -> String {
    let rsync = m
        .rsync
        .as_ref()
        .map(|r| format!("rsync = \"{}\"\n", r.url))
        .unwrap_or_default();
    format!(
        "[[mirrors.dl.mirror]]\nname = \"{}\"\nhttp = \"{}\"\n{rsync}{extra}\n",
        m.name,
        m.base()
    )
}

/// A levee serving the tree at `root` on a `mirrors` route, with `[admin]`,
/// `set_extra` in `[mirrors.dl]` and the mirror tables after it.
pub fn levee_config(
    setup: &LeveeSetup,
    root: &Path,
    geoip: &Path,
    admin: u16,
    set_extra: &str,
    mirrors: &str,
) -> String {
    format!(
        r#"pid_file = "{pid}"

[[listener]]
address = "127.0.0.1:{port}"

[admin]
address = "127.0.0.1:{admin}"

[[route]]
mirrors = "dl"

[mirrors.dl]
root = "{root}"
state_dir = "{state}"
geoip = "{geoip}"
exclude = ["*.asc"]
probe_interval = "1s"
probe_timeout = "5s"
probe_rise = 1
piece_size = "256k"
{set_extra}

{mirrors}
"#,
        pid = setup.pid_file().display(),
        port = setup.port,
        root = root.display(),
        state = setup.dir.join("state").display(),
        geoip = geoip.display(),
    )
}

/// `curl` from `client` (a local address to bind): status, `Location`.
pub fn get_from(client: &str, url: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "--interface",
            client,
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, location) = text.split_once(' ').unwrap_or((&text, ""));
    (code.parse().unwrap_or(0), location.trim().to_owned())
}

/// The mirror (by name) a `Location` points at, or `""`.
pub fn which<'a>(mirrors: &'a [MirrorSite], location: &str) -> &'a str {
    mirrors
        .iter()
        .find(|m| location.starts_with(&format!("{}/", m.base())))
        .map_or("", |m| m.name)
}

/// Waits until the set's mirrors named in `names` are up and scanned
/// (the control API says so), or panics with what it says.
pub fn wait_up(admin: u16, names: &[&str]) {
    let mut last = String::new();
    let ready = poll(Duration::from_secs(60), || {
        let (status, body) = admin_request(admin, "GET", "/mirrors/dl", "");
        last = body.clone();
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let all = v["mirrors"].as_array()?;
        names
            .iter()
            .all(|n| {
                all.iter().any(|m| {
                    m["name"] == *n && m["state"] == "up" && m["files"].as_u64().unwrap_or(0) > 0
                })
            })
            .then_some(())
    });
    assert!(ready.is_some(), "mirrors {names:?} never came up: {last}");
}

/// The JSON of mirror `name` from the control API.
pub fn mirror_state(admin: u16, name: &str) -> serde_json::Value {
    find_mirror(admin, name).unwrap_or_else(|| panic!("no mirror {name} in set dl"))
}

/// The JSON of mirror `name` from the control API; `None` when the set
/// does not list it.
pub fn find_mirror(admin: u16, name: &str) -> Option<serde_json::Value> {
    let (status, body) = admin_request(admin, "GET", "/mirrors/dl", "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["mirrors"]
        .as_array()
        .expect("mirrors")
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
}

/// The full world: tree, four mirrors (de1 weight 300, de2 weight 100, fr
/// with a stale and an old copy, us scanned over rsync), GeoIP, levee.
pub struct World {
    pub base: TempDir,
    pub files: BTreeMap<&'static str, Vec<u8>>,
    pub mirrors: Vec<MirrorSite>,
    pub levee: Levee,
    pub admin: u16,
}

impl World {
    pub fn start(set_extra: &str) -> World {
        let base = TempDir::new("mirrors");
        let files = tree_files();
        let root = local_tree(base.path(), &files);
        let geo = base.join("test.mmdb");
        geoip(&geo);
        let mirrors = vec![
            mirror("de1", [127, 0, 0, 21], &files, &[], &[], false),
            mirror("de2", [127, 0, 0, 22], &files, &[], &[], false),
            mirror(
                "fr",
                [127, 0, 0, 23],
                &files,
                &["pub/fr-stale.bin"],
                &["pub/old-copy.bin"],
                false,
            ),
            mirror("us", [127, 0, 0, 24], &files, &[], &[], true),
        ];
        let tables = [
            mirror_toml(&mirrors[0], "country = \"DE\"\ncontinent = \"EU\"\nweight = 300\nlatitude = 52.5\nlongitude = 13.4"),
            mirror_toml(&mirrors[1], "country = \"DE\"\ncontinent = \"EU\"\nweight = 100\nlatitude = 50.1\nlongitude = 8.7\nasn = [64505]"),
            mirror_toml(&mirrors[2], "country = \"FR\"\ncontinent = \"EU\"\nlatitude = 48.9\nlongitude = 2.35"),
            mirror_toml(&mirrors[3], "country = \"US\"\ncontinent = \"NA\"\nlatitude = 40.7\nlongitude = -74.0\nnetworks = [\"127.0.6.0/24\"]"),
        ]
        .concat();
        let setup = LeveeSetup::new();
        let admin = free_port();
        let config = levee_config(&setup, &root, &geo, admin, set_extra, &tables);
        let levee = setup.start(&config);
        wait_up(admin, &["de1", "de2", "fr", "us"]);
        World {
            base,
            files,
            mirrors,
            levee,
            admin,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.levee.url(path)
    }

    /// Where a client at `client` is sent for `path`: mirror name, or `""`
    /// when it is served locally.
    pub fn sent(&self, client: &str, path: &str) -> (u16, &str) {
        let (status, location) = get_from(client, &self.url(path), &[]);
        (status, which(&self.mirrors, &location))
    }
}
