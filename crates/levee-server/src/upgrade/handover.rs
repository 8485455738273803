//! The listening sockets of a binary upgrade, passed from the old process
//! to the new one over the control socket with `SCM_RIGHTS`: descriptors
//! of the same sockets, so the kernel's accept queues are shared and no
//! connection waiting in one is lost.
//!
//! Each `sendmsg` carries up to [`BATCH`] descriptors and, as its bytes,
//! one manifest line per descriptor saying what it is; the last ends with
//! `end`. The manifest is parsed apart from any I/O ([`parse`]).
//!
//! ```text
//! listener 127.0.0.1:8080      a [[listener]]'s socket, by its configured address
//! admin 127.0.0.1:9090         [admin]'s socket
//! control /run/levee/ctl.sock  the control socket itself
//! end
//! ```

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// Descriptors per message, below the kernel's limit (`SCM_MAX_FD`, 253).
const BATCH: usize = 200;

/// The longest manifest accepted: a line per descriptor, a few thousand
/// descriptors at most.
const MAX_MANIFEST: usize = 1 << 20;

/// What a handed-over descriptor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Listener(SocketAddr),
    Admin(SocketAddr),
    Control(PathBuf),
}

impl Kind {
    fn line(&self) -> String {
        match self {
            Kind::Listener(a) => format!("listener {a}\n"),
            Kind::Admin(a) => format!("admin {a}\n"),
            Kind::Control(p) => format!("control {}\n", p.display()),
        }
    }
}

/// What [`parse`] makes of the manifest so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Manifest {
    /// `end` has not come yet.
    Incomplete,
    Done(Vec<Kind>),
}

/// Parses the manifest received so far.
pub(crate) fn parse(text: &[u8]) -> io::Result<Manifest> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let text = std::str::from_utf8(text).map_err(|_| bad("manifest is not UTF-8".into()))?;
    let mut kinds = Vec::new();
    let mut rest = text;
    while let Some((line, after)) = rest.split_once('\n') {
        rest = after;
        let (word, arg) = line.split_once(' ').unwrap_or((line, ""));
        let addr = || {
            arg.parse::<SocketAddr>()
                .map_err(|_| bad(format!("manifest line `{line}`: not an address")))
        };
        kinds.push(match word {
            "end" if rest.is_empty() => return Ok(Manifest::Done(kinds)),
            "listener" => Kind::Listener(addr()?),
            "admin" => Kind::Admin(addr()?),
            "control" if !arg.is_empty() => Kind::Control(PathBuf::from(arg)),
            _ => return Err(bad(format!("manifest line `{line}` not understood"))),
        });
    }
    Ok(Manifest::Incomplete)
}

/// Sends `items` over a blocking `socket`.
pub(crate) fn send(socket: BorrowedFd<'_>, items: &[(Kind, BorrowedFd<'_>)]) -> io::Result<()> {
    let batches: Vec<&[(Kind, BorrowedFd<'_>)]> = items.chunks(BATCH).collect();
    if batches.is_empty() {
        return write_all(socket, b"end\n");
    }
    let last = batches.len() - 1;
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(BATCH))];
    for (n, batch) in batches.iter().enumerate() {
        let mut text: String = batch.iter().map(|(k, _)| k.line()).collect();
        if n == last {
            text.push_str("end\n");
        }
        let fds: Vec<BorrowedFd<'_>> = batch.iter().map(|(_, fd)| *fd).collect();
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::other("descriptors do not fit the message"));
        }
        // The descriptors go with the batch's first bytes; the rest of
        // its text, if the socket took only part, follows plainly.
        let bytes = text.as_bytes();
        let sent = rustix::net::sendmsg(
            socket,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        write_all(socket, bytes.get(sent..).unwrap_or_default())?;
    }
    Ok(())
}

fn write_all(socket: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = rustix::net::send(socket, bytes, SendFlags::NOSIGNAL)?;
        bytes = bytes.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// Receives the descriptors and their manifest from a blocking `socket`
/// (its read timeout bounds each wait).
pub(crate) fn receive(socket: impl AsFd) -> io::Result<Vec<(Kind, OwnedFd)>> {
    let mut text = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(BATCH))];
    let mut buf = [0u8; 4096];
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            &socket,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if got.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
            return Err(io::Error::other("descriptors were cut off"));
        }
        if got.bytes == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        text.extend_from_slice(buf.get(..got.bytes).unwrap_or_default());
        if text.len() > MAX_MANIFEST {
            return Err(io::Error::other("manifest too long"));
        }
        if let Manifest::Done(kinds) = parse(&text)? {
            if kinds.len() != fds.len() {
                return Err(io::Error::other(format!(
                    "{} descriptors for {} manifest lines",
                    fds.len(),
                    kinds.len()
                )));
            }
            return Ok(kinds.into_iter().zip(fds).collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn the_manifest_is_read_across_any_split() {
        let text = b"listener 127.0.0.1:8080\nadmin [::1]:9090\ncontrol /run/levee/c.sock\nend\n";
        for cut in 0..text.len() {
            let head = text.get(..cut).expect("in range");
            assert_eq!(
                parse(head).expect("valid so far"),
                Manifest::Incomplete,
                "cut {cut}"
            );
        }
        let Manifest::Done(kinds) = parse(text).expect("valid") else {
            panic!("not done");
        };
        assert_eq!(
            kinds,
            [
                Kind::Listener("127.0.0.1:8080".parse().expect("addr")),
                Kind::Admin("[::1]:9090".parse().expect("addr")),
                Kind::Control("/run/levee/c.sock".into()),
            ]
        );
    }

    #[test]
    fn a_bad_manifest_is_refused() {
        assert!(parse(b"listener nowhere\n").is_err());
        assert!(parse(b"socket 127.0.0.1:80\n").is_err());
        assert!(parse(b"control \n").is_err());
        assert!(parse(b"end\nlistener 127.0.0.1:80\n").is_err());
    }

    /// More sockets than one message carries arrive whole and in order,
    /// and are the same sockets: a connection to one is accepted on the
    /// descriptor received.
    #[test]
    fn sockets_go_over_in_batches_and_stay_the_same_sockets() {
        let listeners: Vec<TcpListener> = (0..BATCH + 5)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let items: Vec<(Kind, BorrowedFd<'_>)> = listeners
            .iter()
            .map(|l| (Kind::Listener(l.local_addr().expect("addr")), l.as_fd()))
            .collect();
        let (a, b) = UnixStream::pair().expect("pair");
        let receiver = std::thread::spawn(move || receive(&b));
        send(a.as_fd(), &items).expect("send");
        let got = receiver.join().expect("join").expect("receive");
        assert_eq!(got.len(), listeners.len());
        let mut received = Vec::new();
        for ((kind, fd), l) in got.into_iter().zip(&listeners) {
            assert_eq!(kind, Kind::Listener(l.local_addr().expect("addr")));
            received.push(TcpListener::from(fd));
        }
        // A connection to the sender's socket waits in the queue the
        // receiver's descriptor accepts from.
        let last = received.last().expect("one");
        let addr = listeners.last().expect("one").local_addr().expect("addr");
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let (_, peer) = last.accept().expect("accepted");
        assert_eq!(Some(peer), client.local_addr().ok());
    }
}
