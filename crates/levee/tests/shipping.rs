//! What levee ships besides its binary: shell completions and man pages
//! generated from the command line, the LICENSE the manifest declares, the
//! Dockerfile, and the .deb (`cargo deb`), which is installed, started and
//! purged here.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{TempDir, free_port, levee_cmd, poll};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn completions_know_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = levee_cmd(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["upgrade", "check", "dump", "config"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    // The bash script is bash: it parses.
    let dir = TempDir::new("completions");
    let file = dir.join("levee.bash");
    fs::write(&file, levee_cmd(&["completions", "bash"]).stdout).expect("write");
    let out = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash");
    assert!(out.status.success(), "{}", text(&out));
    let out = levee_cmd(&["completions", "tcsh"]);
    assert!(!out.status.success());
}

#[test]
fn man_pages_render() {
    let dir = TempDir::new("man");
    let out = levee_cmd(&["man", "--out-dir", &dir.path().display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    for page in [
        "levee.1",
        "levee-run.1",
        "levee-upgrade.1",
        "levee-config-dump.1",
    ] {
        assert!(dir.join(page).is_file(), "no {page}");
    }
    let out = levee_cmd(&["man"]);
    let roff = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(roff.contains(".TH levee 1"), "{roff}");
    // Rendered as man would show it (man-db is on every Debian).
    if let Some(man) = support::find_in_path("man") {
        let out = Command::new(man)
            .arg("-l")
            .arg(dir.join("levee-run.1"))
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .output()
            .expect("man");
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(page.contains("LEVEE_CONFIG"), "{}", text(&out));
        assert!(page.contains("/etc/levee/levee.toml"), "{page}");
    }
}

#[test]
fn the_license_file_is_the_declared_license() {
    let manifest = fs::read_to_string(repo().join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = fs::read_to_string(repo().join("LICENSE")).expect("LICENSE");
    assert!(
        license.contains("Apache License"),
        "LICENSE is not Apache's"
    );
    assert!(license.contains("Version 2.0, January 2004"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
}

/// Every Dockerfile instruction, as Docker's parser knows them.
const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// There is no Docker engine here, so the Dockerfile is checked as
/// Docker's parser would read it: known instructions (continuation lines
/// joined), a FROM first, `COPY --from` naming an earlier stage, JSON
/// arrays that parse, and the files it copies from the repository there.
/// With an engine, `docker build --check` runs too.
#[test]
fn the_dockerfile_parses() {
    let dockerfile = fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(current.is_empty(), "a continuation line ends the file");
    let mut stages: Vec<String> = Vec::new();
    for (n, instruction) in joined.iter().enumerate() {
        let (word, args) = instruction.split_once(' ').unwrap_or((instruction, ""));
        assert!(INSTRUCTIONS.contains(&word), "unknown instruction `{word}`");
        assert!(
            n > 0 || word == "FROM",
            "the first instruction is {word}, not FROM"
        );
        match word {
            "FROM" => {
                let parts: Vec<&str> = args.split_whitespace().collect();
                match parts.as_slice() {
                    [_image] => stages.push(String::new()),
                    [_image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                        stages.push((*name).to_owned())
                    }
                    _ => panic!("FROM {args}"),
                }
            }
            "COPY" | "ADD" => {
                let from = args
                    .split_whitespace()
                    .find_map(|a| a.strip_prefix("--from="));
                match from {
                    Some(stage) => assert!(stages.iter().any(|s| s == stage), "no stage {stage}"),
                    None => {
                        let source = args.split_whitespace().next().expect("a source");
                        assert!(
                            repo().join(source).exists(),
                            "COPY {source}: not in the repository"
                        );
                    }
                }
            }
            "ENTRYPOINT" | "CMD" => {
                let v: serde_json::Value = serde_json::from_str(args)
                    .unwrap_or_else(|e| panic!("{word} {args}: not a JSON array ({e})"));
                assert!(v.is_array(), "{word} {args}");
            }
            _ => {}
        }
    }
    // What the build copies out of the repository is there.
    for file in ["dist/container.toml", "Cargo.lock"] {
        assert!(repo().join(file).is_file(), "{file}");
    }
    let out = levee_cmd(&[
        "check",
        "--file-only",
        "-c",
        &repo().join("dist/container.toml").display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !engine {
        eprintln!("docker build --check skipped: no Docker engine on this machine");
        return;
    }
    let out = Command::new("docker")
        .args(["build", "--check", "."])
        .current_dir(repo())
        .output()
        .expect("docker");
    assert!(out.status.success(), "{}", text(&out));
}

/// Purges the package however the test ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "levee"]).output();
    }
}

/// `cargo deb` builds the package from this build's binary, with the man
/// pages and completions generated from it; dpkg installs it (binary, unit,
/// man pages, example config, the `levee` user); the installed levee starts
/// from the installed config (its ports moved to free ones) and drops to
/// `levee`; purge takes it all away again.
#[test]
fn the_deb_installs_starts_and_purges() {
    let root = fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")));
    if !root {
        eprintln!("skipped: dpkg -i needs root");
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let has_deb = Command::new(&cargo)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_deb {
        eprintln!(
            "skipped: cargo-deb is not installed (scripts/test installs it: cargo install cargo-deb)"
        );
        return;
    }
    if Path::new("/var/lib/dpkg/info/levee.list").exists() {
        eprintln!("skipped: a levee package is installed on this machine already; not touching it");
        return;
    }
    // The binary under test, in the profile directory cargo-deb reads.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_levee"));
    let profile_dir = bin.parent().expect("target/debug");
    let assets = profile_dir.join("deb-assets");
    let _ = fs::remove_dir_all(&assets);
    let man = assets.join("man");
    let out = levee_cmd(&["man", "--out-dir", &man.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let gz = Command::new("sh")
        .arg("-c")
        .arg("gzip -9n \"$0\"/*.1")
        .arg(&man)
        .status()
        .expect("gzip");
    assert!(gz.success());
    for (shell, file) in [
        ("bash", "levee.bash"),
        ("zsh", "_levee"),
        ("fish", "levee.fish"),
    ] {
        let out = levee_cmd(&["completions", shell]);
        fs::write(assets.join(file), out.stdout).expect("write completion");
    }
    let dir = TempDir::new("deb");
    let deb = dir.join("levee.deb");
    // The debug build is packaged as it is (cargo-deb warns that it wants
    // a release build; a release build is for shipping, not for this test).
    let out = Command::new(&cargo)
        .args([
            "deb",
            "-p",
            "levee",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "-o",
        ])
        .arg(&deb)
        .current_dir(repo())
        .output()
        .expect("cargo deb");
    assert!(out.status.success(), "{}", text(&out));
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .expect("dpkg-deb");
    let listing = String::from_utf8_lossy(&listing.stdout);
    for path in [
        "./usr/bin/levee",
        "./usr/lib/systemd/system/levee.service",
        "./usr/share/man/man1/levee.1.gz",
        "./usr/share/man/man1/levee-upgrade.1.gz",
        "./etc/levee/levee.toml",
        "./usr/share/bash-completion/completions/levee",
    ] {
        assert!(
            listing.contains(path),
            "{path} not in the package:\n{listing}"
        );
    }

    let installed = Installed;
    let out = Command::new("dpkg")
        .arg("-i")
        .arg(&deb)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("dpkg");
    assert!(out.status.success(), "dpkg -i: {}", text(&out));
    let version = Command::new("/usr/bin/levee")
        .arg("--version")
        .output()
        .expect("levee");
    assert!(text(&version).contains(env!("CARGO_PKG_VERSION")));
    let uid = Command::new("id")
        .args(["-u", "levee"])
        .output()
        .expect("id");
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
    assert!(!uid.is_empty() && uid != "0", "no levee user: {uid}");
    if let Some(man) = support::find_in_path("man") {
        let out = Command::new(man)
            .args(["-w", "levee"])
            .output()
            .expect("man -w");
        assert!(
            text(&out).contains("/usr/share/man/man1/levee.1.gz"),
            "{}",
            text(&out)
        );
    }
    // The unit as installed, with its binary and user there now.
    let out = Command::new("systemd-analyze")
        .args([
            "verify",
            "--man=no",
            "/usr/lib/systemd/system/levee.service",
        ])
        .output()
        .expect("systemd-analyze");
    let complaints: Vec<String> = text(&out)
        .lines()
        .filter(|l| l.contains("levee.service") && !l.contains("network-online"))
        .map(str::to_owned)
        .collect();
    assert!(complaints.is_empty(), "{complaints:?}");

    // Started as the unit would (LEVEE_CONFIG), from the installed config
    // with its ports moved to free ones, as root: it drops to `levee`.
    let (port, admin) = (free_port(), free_port());
    let config = fs::read_to_string("/etc/levee/levee.toml")
        .expect("installed config")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin}"));
    let file = dir.join("levee.toml");
    fs::write(&file, config).expect("write");
    Command::new("chmod")
        .arg("755")
        .arg(dir.path())
        .status()
        .expect("chmod");
    let mut child = Command::new("/usr/bin/levee")
        .arg("run")
        .env("LEVEE_CONFIG", &file)
        .stderr(fs::File::create(dir.join("stderr.log")).expect("log"))
        .spawn()
        .expect("installed levee");
    let up = poll(Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let page = support::curl(&[&format!("http://127.0.0.1:{port}/")]);
    let ready = support::curl(&[&format!("http://127.0.0.1:{admin}/readyz")]);
    let status = fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let exited = poll(Duration::from_secs(15), || child.try_wait().ok().flatten());
    if exited.is_none() {
        let _ = child.kill();
    }
    let log = fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    assert!(up.is_some(), "the installed levee did not start:\n{log}");
    assert!(text(&page).contains("levee is running"), "{}", text(&page));
    assert_eq!(String::from_utf8_lossy(&ready.stdout), "ready\n");
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or_default();
    assert_eq!(
        uid_line,
        format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}"),
        "{log}"
    );
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}\n{log}");

    drop(installed);
    assert!(
        !Path::new("/usr/bin/levee").exists(),
        "purge left the binary"
    );
    assert!(
        !Path::new("/etc/levee/levee.toml").exists(),
        "purge left the config"
    );
}
