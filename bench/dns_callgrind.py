#!/usr/bin/env python3
"""Instructions per DNS query, counted by callgrind: repeatable on a busy
machine where bench/dns.py's CPU seconds are not, so it is the A/B measure
for the query path (bench/README.md, "DNS instructions per query").

    cargo build --profile profiling -p levee-dns --example per_query
    python3 bench/dns_callgrind.py [--binary target/profiling/examples/per_query]
                                   [--queries 20000] [--kinds plain,edns,cookie]

The example answers bench/dns.py's zone without sockets (the fleet record
`www` from a live set of one, the static `mail`), so the kernel's share is
left out. Each name is run twice under `valgrind --tool=callgrind`, with
1,000 queries and with 1,000 + --queries; the difference of the two totals
over --queries is one query's cost, without start-up or the first queries
(which fill the stored replies). Each name is measured as the UDP loop
answers it (stored replies replayed) and the full way (`full`: hickory's
decode, the lookup, the encode), which is what every query cost before. Each kind of query is measured:
`plain` (no EDNS, dnsperf's default), `edns` (an OPT record, `dnsperf -e`)
and `cookie` (an OPT record with a client cookie and levee's server cookie,
as a resolver sends once it has one).
"""
import argparse, os, re, subprocess, tempfile

NAMES = ["www.example.test", "mail.example.test"]
WARM = 1000


def total(binary, name, n, mode, kind):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        binary, name, str(n), mode, kind], check=True, capture_output=True)
        with open(out) as f:
            for line in f:
                m = re.match(r"(?:totals|summary): (\d+)", line)
                if m:
                    return int(m.group(1))
    raise SystemExit(f"no totals from callgrind for {binary}")


def per_query(binary, name, queries, mode, kind):
    return (total(binary, name, WARM + queries, mode, kind) - total(binary, name, WARM, mode, kind)) / queries


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/profiling/examples/per_query")
    ap.add_argument("--queries", type=int, default=20000)
    ap.add_argument("--kinds", default="plain,edns,cookie",
                    help="query kinds, comma-separated: plain, edns, cookie")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    print(f"{'query':<20} {'kind':<7} {'full way':>10} {'replayed':>10} {'replayed/full':>14}"
          "  (instructions per query)")
    for kind in a.kinds.split(","):
        for name in NAMES:
            full = per_query(binary, name, a.queries, "full", kind)
            fast = per_query(binary, name, a.queries, "replay", kind)
            print(f"{name + ' A':<20} {kind:<7} {full:>10.0f} {fast:>10.0f} {fast / full:>14.3f}")


if __name__ == "__main__":
    main()
