use super::*;
use std::os::fd::AsRawFd;
use std::time::Duration;
use tokio::net::TcpListener;

async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (a, b) = tokio::join!(TcpStream::connect(addr), l.accept());
    (a.expect("connect"), b.expect("accept").0)
}

const PACE: Pace = Pace {
    min_bytes: 64 * 1024,
    window: Duration::from_millis(300),
};

#[tokio::test]
async fn a_reader_that_takes_nothing_is_cut_after_one_window() {
    let (mut levee, _client) = pair().await;
    let big = vec![0u8; 16 << 20];
    let started = std::time::Instant::now();
    let r = scope(levee.as_raw_fd(), Some(PACE), async {
        write_all(&mut levee, &big, Duration::from_secs(30)).await
    })
    .await;
    assert!(matches!(r, Err(PaceError::TimedOut)), "{r:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn a_slow_reader_below_the_minimum_is_cut_and_a_fast_one_is_not() {
    for (chunk, expect_cut) in [(512usize, true), (1 << 20, false)] {
        let (mut levee, mut client) = pair().await;
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; chunk];
            loop {
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        let big = vec![0u8; 24 << 20];
        let r = scope(levee.as_raw_fd(), Some(PACE), async {
            write_all(&mut levee, &big, Duration::from_secs(30)).await
        })
        .await;
        assert_eq!(r.is_err(), expect_cut, "chunk {chunk}: {r:?}");
        drop(levee);
        reader.abort();
    }
}

#[tokio::test]
async fn other_sockets_and_unpaced_exchanges_only_get_the_plain_limit() {
    let (mut levee, _client) = pair().await;
    let (other, _peer) = pair().await;
    let big = vec![0u8; 16 << 20];
    let limit = Duration::from_millis(800);
    let started = std::time::Instant::now();
    let r = scope(other.as_raw_fd(), Some(PACE), async {
        write_all(&mut levee, &big, limit).await
    })
    .await;
    assert!(r.is_err());
    assert!(started.elapsed() >= limit, "cut by the plain limit only");
}
