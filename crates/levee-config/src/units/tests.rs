use super::*;

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("1m500ms"), Ok(Duration::from_millis(60_500)));
    assert_eq!(parse_duration("10S"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
}

#[test]
fn bad_durations() {
    for text in [
        "",
        "10",
        "s",
        "10x",
        "1.5s",
        "-1s",
        "10 s",
        "1d",
        "ms10",
        "99999999999999999999s",
    ] {
        assert!(parse_duration(text).is_err(), "{text:?} should be rejected");
    }
    assert_eq!(
        parse_duration("18446744073709551615h"),
        Err("duration `18446744073709551615h` is too large".to_owned())
    );
}

#[test]
fn sizes() {
    assert_eq!(parse_size("0"), Ok(0));
    assert_eq!(parse_size("123"), Ok(123));
    assert_eq!(parse_size("8k"), Ok(8 * 1024));
    assert_eq!(parse_size("16kb"), Ok(16 * 1024));
    assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
    assert_eq!(parse_size("1m"), Ok(1 << 20));
    assert_eq!(parse_size("100MiB"), Ok(100 << 20));
    assert_eq!(parse_size("100 MB"), Ok(100 << 20));
    assert_eq!(parse_size("2G"), Ok(2 << 30));
    assert_eq!(parse_size("7b"), Ok(7));
}

#[test]
fn bad_sizes() {
    for text in [
        "",
        "k",
        "1.5m",
        "-1",
        "10t",
        "10kk",
        "1 0k",
        "99999999999999999999",
    ] {
        assert!(parse_size(text).is_err(), "{text:?} should be rejected");
    }
    assert_eq!(
        parse_size("17179869184g"),
        Err("size `17179869184g` is too large".to_owned())
    );
}
