//! The Engine's API where bollard does not reach: a BuildKit build (its progress comes
//! as protobuf in `aux`, which bollard 0.18 cannot read without its gRPC stack) and a
//! build session (the connection is upgraded, and the Engine calls us over it). Plain
//! HTTP/1.1 over the Engine's socket, one connection per request, no API version in the
//! path (the daemon serves its current one, as with bollard).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;

/// Where the Engine listens, and connections kept open for [`Engine::call`] (to a
/// remote Engine each new one costs a TLS or SSH handshake in the bridge).
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    socket: PathBuf,
    idle:
        std::sync::Arc<std::sync::Mutex<Vec<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>>,
    /// The connection the Engine's id was last read on ([`Engine::call_anchoring`]):
    /// while it stays open, whatever answers on it is that same Engine.
    anchor: std::sync::Arc<tokio::sync::Mutex<Option<Sender>>>,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// How long a call on the anchor may take before the connection is given up.
const ANCHOR_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connections [`Engine::call`] keeps open.
const IDLE_KEPT: usize = 4;

impl Engine {
    pub(crate) fn unix(socket: impl Into<PathBuf>) -> Engine {
        Engine {
            socket: socket.into(),
            idle: Default::default(),
            anchor: Default::default(),
        }
    }

    /// A new connection to the Engine.
    async fn connect(&self) -> Result<Sender, String> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.socket.display()))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// [`Engine::call`] on a new connection, kept afterwards as the anchor (see
    /// [`Engine::call_on_anchor`]).
    pub(crate) async fn call_anchoring(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(hyper::StatusCode, Bytes), String> {
        let mut anchor = self.anchor.lock().await;
        *anchor = None;
        let mut sender = self.connect().await?;
        let answer = answer(&mut sender, request).await?;
        *anchor = Some(sender);
        Ok(answer)
    }

    /// `request` on the anchor, when it is still open: `None` when there is none (or
    /// it closed — the Engine restarted, the machine went away), and the request was
    /// not sent.
    pub(crate) async fn call_on_anchor(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Option<Result<(hyper::StatusCode, Bytes), String>> {
        let mut anchor = self.anchor.lock().await;
        let sender = anchor.as_mut()?;
        if sender.ready().await.is_err() {
            *anchor = None;
            return None;
        }
        // A connection that went silent (a half-open one) is given up, not waited on.
        let answer = match tokio::time::timeout(ANCHOR_WAIT, answer(sender, request)).await {
            Ok(a) => a,
            Err(_) => Err("no answer on the kept connection".into()),
        };
        if answer.is_err() {
            *anchor = None;
        }
        Some(answer)
    }

    /// A request with a whole body and a whole answer (the JSON API's), on a kept
    /// connection when one is free: the answer's status and body.
    pub(crate) async fn call(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(hyper::StatusCode, Bytes), String> {
        let kept = loop {
            let Some(mut sender) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                break None;
            };
            if sender.ready().await.is_ok() {
                break Some(sender);
            }
        };
        let mut sender = match kept {
            Some(s) => s,
            None => self.connect().await?,
        };
        let answer = answer(&mut sender, request).await?;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_KEPT {
            idle.push(sender);
        }
        Ok(answer)
    }

    /// Sends `request` on a new connection that may be upgraded (see
    /// [`hyper::upgrade::on`]); the response's head, its body still to read.
    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, String> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.socket.display()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            // Ends with the response's body, or when an upgraded connection closes.
            let _ = connection.with_upgrades().await;
        });
        sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())
    }

    /// A request to `path` (with its query) on the Engine.
    pub(crate) fn request(method: &str, path: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("http://docker{path}"))
            .header(hyper::header::HOST, "docker")
    }
}

/// Reads a body of newline-separated JSON messages, giving `each` one message at a time.
pub(crate) async fn json_lines(
    mut body: Incoming,
    mut each: impl FnMut(serde_json::Value) -> Result<(), String>,
) -> Result<(), String> {
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the Engine's answer: {e}"))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            parse_line(&line, &mut each)?;
        }
    }
    parse_line(&pending, &mut each)
}

fn parse_line(
    line: &[u8],
    each: &mut impl FnMut(serde_json::Value) -> Result<(), String>,
) -> Result<(), String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value = serde_json::from_slice(line).map_err(|e| {
        format!(
            "the Engine sent an unreadable message ({e}): {}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        )
    })?;
    each(value)
}

/// The Engine's error message in a failed answer's body (`{"message": …}`), else the
/// body itself.
pub(crate) async fn error_text(response: Response<Incoming>) -> String {
    let status = response.status();
    let body = match response.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return format!("{status}: {e}"),
    };
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
    format!("{message} ({status})")
}

/// Sends `request` on `sender`: the answer's status and whole body.
async fn answer(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
) -> Result<(hyper::StatusCode, Bytes), String> {
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the Engine's answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}
