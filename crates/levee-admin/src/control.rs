//! `POST /reload`: the admin listener asks the control thread to run the
//! same reload as SIGHUP, and answers with its verdict, every error of a
//! refused config included (`file:line:column: key: message`).
//!
//! The reload itself belongs to `levee-server`, which owns the running
//! server; this is only the channel to it and the answer.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::server::Reply;

/// A reload waits this long for the control thread before answering 503.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The config file now in force.
    Reloaded(PathBuf),
    /// Refused: the running config stays. One line per problem.
    Refused(Vec<String>),
}

/// A reload request: where to send the outcome.
pub type Ask = oneshot::Sender<Outcome>;

/// The admin listener's end of the channel.
#[derive(Debug, Clone)]
pub struct Reloader(mpsc::Sender<Ask>);

/// A channel from the admin listener to the control thread; the control
/// thread receives on the second half and answers each [`Ask`].
pub fn channel() -> (Reloader, mpsc::Receiver<Ask>) {
    // One at a time is enough: reloads run one after another anyway.
    let (tx, rx) = mpsc::channel(4);
    (Reloader(tx), rx)
}

/// Asks for a reload and turns its outcome into the API's answer.
pub async fn reload(reloader: Option<&Reloader>) -> Reply {
    let Some(reloader) = reloader else {
        return Reply::error(503, "this levee cannot reload through the admin listener");
    };
    let (tx, rx) = oneshot::channel();
    if reloader.0.send(tx).await.is_err() {
        return Reply::error(503, "levee is stopping");
    }
    match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
        Ok(Ok(Outcome::Reloaded(file))) => {
            Reply::json(200, &json!({ "reloaded": file.display().to_string() }))
        }
        Ok(Ok(Outcome::Refused(errors))) => Reply::json(
            422,
            &json!({
                "error": "reload refused; the running config stays",
                "errors": errors,
            }),
        ),
        Ok(Err(_)) => Reply::error(503, "levee is stopping"),
        Err(_) => Reply::error(503, "the reload did not finish in time"),
    }
}
