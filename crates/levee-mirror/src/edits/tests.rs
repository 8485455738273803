//! Runtime edits over the config's mirrors, and the rules that make every
//! fleet member converge on the shared table.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::shared::Row;
use super::*;

fn mirror(name: &str, weight: u32) -> Mirror {
    let mut m = Mirror::new(name);
    m.http = Some(format!("http://{name}.example/pub"));
    m.weight = weight;
    m
}

/// A set named `name` whose config has mirror `a` (weight 100), in a
/// fresh directory.
fn set(name: &str, shared: bool) -> Arc<MirrorSet> {
    let dir = std::env::temp_dir().join(format!("levee-edits-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut config = levee_config::MirrorSet::new(name, dir.clone(), dir.join("state"));
    config.mirrors = vec![mirror("a", 100)];
    let set = MirrorSet::obtain(&config).expect("obtain");
    set.set_shared(shared);
    set
}

/// Name, weight, enabled and source of each listed mirror.
fn listed(s: &MirrorSet) -> Vec<(String, u32, bool, &'static str)> {
    s.view()
        .mirrors
        .iter()
        .map(|m| {
            let c = &m.profile.config;
            (c.name.clone(), c.weight, c.enabled, m.source.as_str())
        })
        .collect()
}

fn row(version: u64, edit: Option<Edit>) -> Row {
    Row { version, edit }
}

fn switched(on: bool) -> Edit {
    Edit {
        mirror: None,
        enabled: Some(on),
    }
}

#[test]
fn edits_lie_over_the_config_until_reset() {
    let s = set("overlay", false);
    s.put(mirror("b", 7)).expect("put");
    assert_eq!(s.switch("a", false).expect("saved"), Outcome::Done);
    assert_eq!(
        listed(&s),
        [
            ("a".into(), 100, false, "config+api"),
            ("b".into(), 7, true, "api")
        ]
    );
    assert!(!s.view().mirrors[0].live.enabled());
    // Saved with the switch, read back by a new list.
    let saved = Edits::load(&s.state_dir());
    let list = saved.list(&[mirror("a", 100)]);
    assert_eq!(list[0].1, Source::Edited);
    assert!(!list[0].0.enabled);
    // A whole table replaces the file's, and states `enabled` itself.
    s.put(mirror("a", 3)).expect("put");
    assert_eq!(listed(&s)[0], ("a".into(), 3, true, "config+api"));
    assert!(s.view().mirrors[0].live.enabled());
    // Reset: the file's mirror as the file has it; an added one is gone.
    assert_eq!(s.reset("a").expect("saved"), Outcome::Done);
    assert_eq!(s.reset("b").expect("saved"), Outcome::Done);
    assert_eq!(listed(&s), [("a".into(), 100, true, "config")]);
    assert_eq!(s.reset("a").expect("saved"), Outcome::NoSuch);
    assert_eq!(s.switch("zz", true).expect("saved"), Outcome::NoSuch);
    assert!(Edits::load(&s.state_dir()).all().next().is_none());
}

#[test]
fn the_shared_form_round_trips_and_is_held_to_the_config_rules() {
    let mut m = mirror("b", 9);
    m.country = Some("DE".into());
    m.location = Some((52.5, 13.4));
    let e = Edit {
        mirror: Some(m),
        enabled: Some(false),
    };
    assert_eq!(Edit::from_json(&e.to_json()), Ok(e));
    assert_eq!(
        Edit::from_json(&serde_json::json!({"enabled": true})),
        Ok(switched(true))
    );
    for bad in [
        serde_json::json!({}),
        serde_json::json!({"enabled": "yes"}),
        serde_json::json!({"mirror": {"name": "x", "weight": 0, "http": "http://x"}}),
    ] {
        assert!(Edit::from_json(&bad).is_err(), "{bad}");
    }
}

#[test]
fn local_edits_are_unsent_only_when_shared() {
    let alone = set("alone", false);
    alone.put(mirror("b", 1)).expect("put");
    assert!(alone.take_unsent().expect("lock").is_empty());
    let s = set("unsent", true);
    s.put(mirror("b", 1)).expect("put");
    s.switch("a", false).expect("saved");
    s.reset("b").expect("saved");
    let unsent = s.take_unsent().expect("lock");
    let names: Vec<&str> = unsent.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(unsent[0].1, Some(switched(false).to_json()));
    assert_eq!(unsent[1].1, None, "a reset deletes the row");
    assert!(s.take_unsent().expect("lock").is_empty(), "taken");
    // A write that failed is unsent again, also after a restart.
    s.unsent_again(["a".to_owned()]);
    let saved = Edits::load(&s.state_dir());
    assert!(saved.unsent.contains("a"));
}

#[test]
fn heard_edits_apply_in_version_order() {
    let s = set("heard", true);
    assert!(
        s.apply_shared("a", row(5, Some(switched(false))))
            .expect("lock")
    );
    assert!(!s.view().mirrors[0].live.enabled());
    // An older write heard late changes nothing.
    assert!(
        !s.apply_shared("a", row(4, Some(switched(true))))
            .expect("lock")
    );
    assert!(!s.view().mirrors[0].live.enabled());
    let added = Edit {
        mirror: Some(mirror("c", 2)),
        enabled: None,
    };
    assert!(s.apply_shared("c", row(6, Some(added))).expect("lock"));
    assert_eq!(listed(&s)[1], ("c".into(), 2, true, "api"));
    assert!(s.apply_shared("c", row(7, None)).expect("lock"));
    assert_eq!(listed(&s).len(), 1);
    // Heard edits are not this member's to write.
    assert!(s.take_unsent().expect("lock").is_empty());
    // A local edit not yet written wins over what is heard meanwhile.
    s.switch("a", true).expect("saved");
    assert!(
        !s.apply_shared("a", row(9, Some(switched(false))))
            .expect("lock")
    );
    assert!(s.view().mirrors[0].live.enabled());
}

#[test]
fn a_load_makes_the_table_the_list_but_keeps_unsent_edits() {
    let s = set("load", true);
    s.put(mirror("b", 1)).expect("put");
    let mut rows = BTreeMap::new();
    rows.insert("a".to_owned(), row(3, Some(switched(false))));
    rows.insert(
        "d".to_owned(),
        row(
            4,
            Some(Edit {
                mirror: Some(mirror("d", 4)),
                enabled: None,
            }),
        ),
    );
    // b is unsent: kept, and written later over the table.
    assert_eq!(s.load_shared(Some((4, rows.clone()))).expect("lock"), 2);
    assert_eq!(
        listed(&s),
        [
            ("a".into(), 100, false, "config+api"),
            ("b".into(), 1, true, "api"),
            ("d".into(), 4, true, "api")
        ]
    );
    // Once written, a table without b removes it.
    let unsent = s.take_unsent().expect("lock");
    assert_eq!(unsent.len(), 1);
    assert_eq!(s.load_shared(Some((5, rows))).expect("lock"), 1);
    assert_eq!(listed(&s).len(), 2);
    // Redis without the table (restarted empty): nothing is dropped, and
    // every edit is to be written again.
    assert_eq!(s.load_shared(None).expect("lock"), 0);
    assert_eq!(listed(&s).len(), 2);
    let names: Vec<String> = s
        .take_unsent()
        .expect("lock")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["a", "d"]);
}
