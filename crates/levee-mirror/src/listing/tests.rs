//! The listing parsers on real-looking output, fed whole and in every
//! split, which must give the same entries.

use super::*;

const RSYNC: &[u8] = b"Welcome to the mirror\n\
drwxr-xr-x          4,096 2026/12/06 23:00:00 .\n\
-rw-r--r--     12,345,678 2026/12/06 23:00:01 releases/1.0/image.iso\n\
drwxr-xr-x          4,096 2026/12/06 23:00:00 releases\n\
lrwxrwxrwx             11 2026/12/06 23:00:00 latest -> releases/1.0\n\
-rw-r--r--            100 1999/01/01 00:00:00 odd name\\#012x.txt\n\
-rw-r--r--            100 1999/01/01 00:00:00 ../escape\r\n\
-rw-r--r--           5000 2026/02/29 12:00:00 no-newline";

const NGINX: &[u8] = b"<html>\r\n<head><title>Index of /pub/</title></head>\r\n<body>\r\n\
<h1>Index of /pub/</h1><hr><pre><a href=\"../\">../</a>\r\n\
<a href=\"releases/\">releases/</a>                                          06-Dec-2026 23:00                   -\r\n\
<a href=\"image%20one.iso\">image one.iso</a>                                      06-Dec-2026 23:01            12345678\r\n\
<a href=\"a&amp;b.txt\">a&amp;b.txt</a>                                          01-Jan-2020 00:00                 100\r\n\
<a href=\"http://elsewhere/x\">x</a>\r\n\
</pre><hr></body>\r\n</html>\r\n";

const APACHE: &[u8] = b"<table>\n\
<tr><th><a href=\"?C=N;O=D\">Name</a></th><th><a href=\"?C=M;O=A\">Last modified</a></th></tr>\n\
<tr><td valign=\"top\"><img src=\"/icons/back.gif\" alt=\"[PARENTDIR]\"></td><td><a href=\"/pub/\">Parent Directory</a></td><td>&nbsp;</td><td align=\"right\">  - </td></tr>\n\
<tr><td valign=\"top\"><img src=\"/icons/unknown.gif\" alt=\"[   ]\"></td><td><a href=\"big.iso\">big.iso</a></td><td align=\"right\">2026-12-06 23:00  </td><td align=\"right\">1.2G</td></tr>\n\
<tr><td><a href=\"small.txt\">small.txt</a></td><td align=\"right\">2026-12-06 23:00  </td><td align=\"right\"> 12K</td></tr>\n\
<tr><td><a href=\"exact\">exact</a></td><td align=\"right\">2026-12-06 23:00  </td><td align=\"right\">512 </td></tr>\n\
</table>\n";

fn whole<P: Default>(
    input: &[u8],
    push: impl Fn(&mut P, &[u8], &mut Vec<Entry>),
    finish: impl Fn(&mut P, &mut Vec<Entry>),
) -> Vec<Entry> {
    let mut p = P::default();
    let mut out = Vec::new();
    push(&mut p, input, &mut out);
    finish(&mut p, &mut out);
    out
}

/// Every split point, and byte by byte, give what the whole input gives.
fn splits_agree<P: Default>(
    input: &[u8],
    push: impl Fn(&mut P, &[u8], &mut Vec<Entry>) + Copy,
    finish: impl Fn(&mut P, &mut Vec<Entry>) + Copy,
) -> Vec<Entry> {
    let expected = whole(input, push, finish);
    // Every cut of a short input; around the line limit in a long one.
    let cuts: Vec<usize> = if input.len() < 4096 {
        (0..=input.len()).collect()
    } else {
        [
            0,
            1,
            MAX_LINE - 1,
            MAX_LINE,
            MAX_LINE + 1,
            MAX_LINE + 11,
            input.len() - 1,
            input.len(),
        ]
        .into()
    };
    for cut in cuts {
        let mut p = P::default();
        let mut out = Vec::new();
        push(&mut p, &input[..cut], &mut out);
        push(&mut p, &input[cut..], &mut out);
        finish(&mut p, &mut out);
        assert_eq!(out, expected, "split at {cut}");
    }
    let mut p = P::default();
    let mut out = Vec::new();
    for b in input {
        push(&mut p, std::slice::from_ref(b), &mut out);
    }
    finish(&mut p, &mut out);
    assert_eq!(out, expected, "byte by byte");
    expected
}

#[test]
fn rsync_listing() {
    let e = splits_agree(RSYNC, rsync::Parser::push, rsync::Parser::finish);
    let got: Vec<(&[u8], Kind, Size)> = e.iter().map(|e| (&e.path[..], e.kind, e.size)).collect();
    assert_eq!(
        got,
        [
            (
                &b"releases/1.0/image.iso"[..],
                Kind::File,
                Size::Exact(12_345_678)
            ),
            (&b"releases"[..], Kind::Dir, Size::Exact(4096)),
            (&b"latest"[..], Kind::Link, Size::Exact(11)),
            (&b"odd name\nx.txt"[..], Kind::File, Size::Exact(100)),
            (&b"no-newline"[..], Kind::File, Size::Exact(5000)),
        ]
    );
    assert_eq!(e[0].mtime, civil(2026, 12, 6, 23, 0, 1));
    assert_eq!(e[0].mtime, Some(1_796_598_001));
    assert_eq!(e[4].mtime, civil(2026, 2, 29, 12, 0, 0));
}

#[test]
fn nginx_listing() {
    let e = splits_agree(NGINX, http::Parser::push, http::Parser::finish);
    let got: Vec<(&[u8], Kind, Size)> = e.iter().map(|e| (&e.path[..], e.kind, e.size)).collect();
    assert_eq!(
        got,
        [
            (&b"releases"[..], Kind::Dir, Size::Unknown),
            (&b"image one.iso"[..], Kind::File, Size::Exact(12_345_678)),
            (&b"a&b.txt"[..], Kind::File, Size::Exact(100)),
        ]
    );
    assert_eq!(e[1].mtime, civil(2026, 12, 6, 23, 1, 0));
}

#[test]
fn apache_listing() {
    let e = splits_agree(APACHE, http::Parser::push, http::Parser::finish);
    let got: Vec<(&[u8], Size)> = e.iter().map(|e| (&e.path[..], e.size)).collect();
    assert_eq!(
        got,
        [
            (
                &b"big.iso"[..],
                Size::About {
                    value: (12 << 30) / 10,
                    slack: (1 << 30) / 10 + 1
                }
            ),
            (
                &b"small.txt"[..],
                Size::About {
                    value: 12 << 10,
                    slack: 1 << 10
                }
            ),
            (&b"exact"[..], Size::Exact(512)),
        ]
    );
    assert!(e[1].size.admits(12 * 1024 + 500) && !e[1].size.admits(14 * 1024));
}

#[test]
fn overlong_lines_are_dropped_not_kept() {
    let mut input = vec![b'x'; MAX_LINE + 10];
    input.extend_from_slice(b"\n-rw-r--r--     1 2026/12/06 23:00:00 ok\n");
    let e = splits_agree(&input, rsync::Parser::push, rsync::Parser::finish);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, b"ok");
}

#[test]
fn civil_dates() {
    assert_eq!(civil(1970, 1, 1, 0, 0, 0), Some(0));
    assert_eq!(civil(2000, 3, 1, 0, 0, 0), Some(951_868_800));
    assert_eq!(civil(2026, 13, 1, 0, 0, 0), None);
}
