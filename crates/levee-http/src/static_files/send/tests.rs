use std::io::Write as _;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use super::super::tests::TempDir;
use super::*;

/// A file of `len` bytes that are not periodic in any small power of two, so
/// an off-by-some offset cannot go unnoticed.
fn patterned_file(dir: &TempDir, len: usize) -> (File, Vec<u8>) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251 % 256) as u8)
        .collect();
    let path = dir.path().join("payload.bin");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&data))
        .expect("write payload");
    (File::open(&path).expect("open payload"), data)
}

async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (accepted.expect("accept").0, client.expect("connect"))
}

/// Sends the range, closes the sender, and returns what the peer received.
async fn transfer(
    send: impl AsyncFnOnce(&TcpStream) -> io::Result<u64>,
) -> (io::Result<u64>, Vec<u8>) {
    let (sender, mut receiver) = socket_pair().await;
    let reader = tokio::spawn(async move {
        // Let the socket buffers fill first, so the sender must see EAGAIN
        // (loopback buffers autotune to a few MB, hence the large files).
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut got = Vec::new();
        receiver.read_to_end(&mut got).await.expect("read");
        got
    });
    let result = send(&sender).await;
    drop(sender);
    (result, reader.await.expect("reader task"))
}

#[tokio::test]
async fn sends_exactly_the_range_of_a_large_file() {
    let dir = TempDir::new("send");
    let (file, data) = patterned_file(&dir, 16 << 20);
    let (start, len) = (12_345u64, (12 << 20) + 17);
    let (sent, got) = transfer(async |s: &TcpStream| send_range(s, &file, start, len).await).await;
    assert_eq!(sent.expect("send_range"), len);
    assert_eq!(got.len() as u64, len);
    assert!(
        got == data[start as usize..(start + len) as usize],
        "received bytes differ"
    );
}

#[tokio::test]
async fn sends_a_range_twice_from_one_file() {
    let dir = TempDir::new("send");
    let (file, data) = patterned_file(&dir, 4096);
    let (sent, got) = transfer(async |s: &TcpStream| {
        let a = send_range(s, &file, 4000, 96).await?;
        let b = send_range(s, &file, 0, 10).await?;
        Ok(a + b)
    })
    .await;
    assert_eq!(sent.expect("send_range"), 106);
    assert_eq!(got, [&data[4000..], &data[..10]].concat());
}

#[tokio::test]
async fn copy_fallback_sends_exactly_the_range() {
    let dir = TempDir::new("send");
    let (file, data) = patterned_file(&dir, 10 << 20);
    let (start, len) = (777u64, (9 << 20) + 3);
    let (sent, got) = transfer(async |s: &TcpStream| copy_range(s, &file, start, len).await).await;
    assert_eq!(sent.expect("copy_range"), len);
    assert!(
        got == data[start as usize..(start + len) as usize],
        "received bytes differ"
    );
}

#[tokio::test]
async fn zero_length_sends_nothing() {
    let dir = TempDir::new("send");
    let (file, _) = patterned_file(&dir, 10);
    let (sent, got) = transfer(async |s: &TcpStream| send_range(s, &file, 3, 0).await).await;
    assert_eq!(sent.expect("send_range"), 0);
    assert!(got.is_empty());
}

#[tokio::test]
async fn a_file_shorter_than_promised_is_an_error() {
    let dir = TempDir::new("send");
    let (file, data) = patterned_file(&dir, 1000);
    let (sent, got) = transfer(async |s: &TcpStream| send_range(s, &file, 900, 200).await).await;
    let err = sent.expect_err("range past EOF");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(got, &data[900..]);
    let (sent, _) = transfer(async |s: &TcpStream| copy_range(s, &file, 900, 200).await).await;
    assert_eq!(
        sent.expect_err("range past EOF").kind(),
        io::ErrorKind::UnexpectedEof
    );
}
