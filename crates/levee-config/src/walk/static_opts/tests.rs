//! The static route options: what they build, and each error with its place.

use std::time::Duration;

use crate::model::{Action, Dotfiles, StaticOptions};
use crate::tests::{errors_of, ok};

const L: &str = "[[listener]]\naddress = \"127.0.0.1:80\"\n";

fn options(route: &str) -> StaticOptions {
    let config = ok(&format!("{L}[[route]]\nstatic = \"/srv\"\n{route}"));
    match &config.routes[0].action {
        Action::Static(s) => {
            let again = ok(&crate::to_toml(&config));
            assert_eq!(again.routes, config.routes, "round trip");
            s.options.clone()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults_hide_dotfiles_but_the_well_known_ones() {
    let o = options("");
    assert_eq!(o, StaticOptions::default());
    assert_eq!(o.dotfiles, Dotfiles::Hide);
    assert_eq!(o.dotfiles_allow, ["/.well-known/"]);
    assert!(!o.listing && o.try_files.is_empty() && o.expires.is_none());
}

#[test]
fn every_option_is_read() {
    let o = options(
        "dotfiles = \"deny\"\ndotfiles_allow = [\"/.well-known/\", \"/pub/.keys/\"]\nexpires = \"7d\"\nexpires_by_extension = { CSS = \"30d\", html = \"0s\" }\nlisting = true\ntry_files = [\"$uri\", \"$uri/\", \"/index.html\", \"=404\"]\n",
    );
    assert_eq!(o.dotfiles, Dotfiles::Deny);
    assert_eq!(o.dotfiles_allow, ["/.well-known/", "/pub/.keys/"]);
    assert_eq!(o.expires, Some(Duration::from_secs(7 * 86_400)));
    assert_eq!(
        o.expires_by_extension,
        [
            ("css".to_owned(), Duration::from_secs(30 * 86_400)),
            ("html".to_owned(), Duration::ZERO)
        ]
    );
    assert!(o.listing);
    assert_eq!(o.try_files, ["$uri", "$uri/", "/index.html", "=404"]);
}

#[test]
fn each_error_names_its_place() {
    let errors = errors_of(&format!(
        "{L}[[route]]\nstatic = \"/srv\"\ndotfiles = \"maybe\"\nexpires_by_extension = {{ \".css\" = \"1d\" }}\ntry_files = [\"=404\", \"index.html\", \"=99\"]\n"
    ));
    assert_eq!(
        errors,
        [
            "t.toml:5:12: route[0].dotfiles: `maybe`: expected \"hide\" (404), \"deny\" (403) or \"allow\"",
            "t.toml:6:26: route[0].expires_by_extension.\".css\": an extension is written without its dot, such as `css`",
            "t.toml:7:14: route[0].try_files[0]: `=STATUS` must be the last candidate",
            "t.toml:7:22: route[0].try_files[1]: `index.html`: expected `$uri`, `$uri/`, a path starting with `/` (written as a route path), or `=STATUS`",
            "t.toml:7:36: route[0].try_files[2]: `=STATUS` takes a status from 400 to 599",
        ]
    );
    let errors = errors_of(&format!(
        "{L}[upstream.a]\nservers = [\"127.0.0.1:1\"]\n[[route]]\nproxy = \"a\"\nlisting = true\n"
    ));
    assert_eq!(
        errors,
        ["t.toml:7:1: route[0].listing: `listing` only applies to `static` routes, not `proxy`"]
    );
}
