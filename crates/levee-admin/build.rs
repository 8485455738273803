//! Embeds the dashboard (`dashboard/`, committed sources, no Node needed):
//! every file as written plus a gzip copy made here with flate2, and one
//! hash of them all that names the assets' URL directory
//! (`/assets/HASH/app.js`), so browsers may cache them for a year and
//! still fetch new ones after an upgrade. `index.html` is served at `/`
//! with `{{ASSETS}}` replaced by that directory.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// Files served, with their content types. Anything else in `dashboard/`
/// (the vendor README and LICENSE) is not served.
const FILES: &[(&str, &str)] = &[
    ("index.html", "text/html; charset=utf-8"),
    ("app.css", "text/css; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("api.js", "text/javascript; charset=utf-8"),
    ("views.js", "text/javascript; charset=utf-8"),
    ("charts.js", "text/javascript; charset=utf-8"),
    ("actions.js", "text/javascript; charset=utf-8"),
    ("format.js", "text/javascript; charset=utf-8"),
    ("icon.svg", "image/svg+xml"),
    ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
];

/// FNV-1a, 64 bits: a cache-busting name, not a security measure.
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= u64::from(b);
        *hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).expect("writing to memory cannot fail");
    e.finish().expect("writing to memory cannot fail")
}

fn main() {
    let dir =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("dashboard");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=dashboard");
    let mut contents = Vec::new();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for (name, _) in FILES {
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("dashboard asset {}: {e}", path.display()));
        fnv(&mut hash, name.as_bytes());
        fnv(&mut hash, &bytes);
        contents.push(bytes);
    }
    let hash = format!("{hash:016x}");
    let mut table = String::new();
    let _ = writeln!(
        table,
        "/// Names the assets' directory: `/assets/{{BUNDLE}}/NAME`."
    );
    let _ = writeln!(table, "pub const BUNDLE: &str = \"{hash}\";");
    let _ = writeln!(
        table,
        "/// Every served file: name, content type, bytes, gzip bytes."
    );
    let _ = writeln!(table, "pub static FILES: &[Asset] = &[");
    let mut compressed_total = 0;
    for ((name, content_type), mut bytes) in FILES.iter().zip(contents) {
        if *name == "index.html" {
            let text = String::from_utf8(bytes).expect("index.html is UTF-8");
            bytes = text
                .replace("{{ASSETS}}", &format!("/assets/{hash}"))
                .into_bytes();
        }
        let file = name.replace('/', "_");
        let raw = out.join(&file);
        let gz = out.join(format!("{file}.gz"));
        let zipped = gzip(&bytes);
        compressed_total += zipped.len();
        std::fs::write(&raw, &bytes).expect("write to OUT_DIR");
        std::fs::write(&gz, &zipped).expect("write to OUT_DIR");
        let _ = writeln!(
            table,
            "    Asset {{ name: {name:?}, content_type: {content_type:?}, raw: include_bytes!({:?}), gzip: include_bytes!({:?}) }},",
            raw.display().to_string(),
            gz.display().to_string()
        );
    }
    let _ = writeln!(table, "];");
    let _ = writeln!(
        table,
        "/// The page's weight: every served file, compressed, in bytes.\npub const COMPRESSED_TOTAL: usize = {compressed_total};"
    );
    std::fs::write(out.join("assets.rs"), table).expect("write to OUT_DIR");
}
