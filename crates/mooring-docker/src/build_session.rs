//! A BuildKit session: how a build gets its `secrets` without them ever entering the
//! build's context, its image or a file on the host. `POST /session` is upgraded to
//! HTTP/2, on which the Engine is the gRPC client and Mooring answers two methods:
//! `grpc.health.v1.Health/Check` (the Engine drops a session that does not) and
//! `moby.buildkit.secrets.v1.Secrets/GetSecret` (the value of one id, from memory).
//! Nothing else is offered: no file sync, no SSH agent, no registry credentials.
//! The session lives as long as the value returned by [`start`].

use crate::engine_http::{error_text, Engine};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioExecutor;
use prost::Message;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

const HEALTH: &str = "/grpc.health.v1.Health/Check";
const SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";

/// `moby.buildkit.secrets.v1.GetSecretRequest` (its annotations unread).
#[derive(Clone, PartialEq, Message)]
struct GetSecretRequest {
    #[prost(string, tag = "1")]
    id: String,
}

/// `moby.buildkit.secrets.v1.GetSecretResponse`.
#[derive(Clone, PartialEq, Message)]
struct GetSecretResponse {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
}

/// `grpc.health.v1.HealthCheckResponse`; 1 is `SERVING`.
#[derive(Clone, PartialEq, Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// gRPC's status codes used here.
const NOT_FOUND: u32 = 5;
const UNIMPLEMENTED: u32 = 12;
const INVALID_ARGUMENT: u32 = 3;

/// An open session; it ends when this is dropped.
pub(crate) struct Session {
    pub(crate) id: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens a session on `engine` that answers the build's requests for `secrets` (by
/// id).
pub(crate) async fn start(
    engine: &Engine,
    secrets: BTreeMap<String, Vec<u8>>,
) -> Result<Session, String> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| e.to_string())?;
    let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let request = Engine::request("POST", "/session")
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, "h2c")
        .header("X-Docker-Expose-Session-Uuid", &id)
        .header("X-Docker-Expose-Session-Name", "mooring")
        .header("X-Docker-Expose-Session-Sharedkey", &id)
        .header("X-Docker-Expose-Session-Grpc-Method", HEALTH)
        .header("X-Docker-Expose-Session-Grpc-Method", SECRET)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = engine.send(request).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(format!(
            "the Engine refused a build session: {}",
            error_text(response).await
        ));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| format!("the build session's upgrade failed: {e}"))?;
    let secrets = Arc::new(secrets);
    let task = tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| answer(req, secrets.clone()));
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(upgraded, service)
            .await;
    });
    Ok(Session { id, task })
}

type Body =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// One gRPC call of the Engine's.
async fn answer(
    request: Request<Incoming>,
    secrets: Arc<BTreeMap<String, Vec<u8>>>,
) -> Result<Response<Body>, Infallible> {
    let method = request.uri().path().to_string();
    let body = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(Err((INVALID_ARGUMENT, "unreadable request")))),
    };
    let Some(message) = unframe(body) else {
        return Ok(reply(Err((INVALID_ARGUMENT, "malformed gRPC message"))));
    };
    Ok(reply(match method.as_str() {
        HEALTH => Ok(HealthCheckResponse { status: 1 }.encode_to_vec()),
        SECRET => match GetSecretRequest::decode(message) {
            Ok(r) => match secrets.get(&r.id) {
                Some(data) => Ok(GetSecretResponse { data: data.clone() }.encode_to_vec()),
                None => Err((NOT_FOUND, "no such secret in the service's build.secrets")),
            },
            Err(_) => Err((INVALID_ARGUMENT, "malformed secret request")),
        },
        _ => Err((UNIMPLEMENTED, "not offered by Mooring")),
    }))
}

/// The message of a unary call's request: one length-prefixed, uncompressed frame.
fn unframe(mut body: Bytes) -> Option<Bytes> {
    if body.len() < 5 || body[0] != 0 {
        return None;
    }
    body.advance(1);
    let len = body.get_u32() as usize;
    (body.len() == len).then_some(body)
}

/// A unary call's answer: the message (framed) and an OK status in the trailers, or
/// only a status.
fn reply(result: Result<Vec<u8>, (u32, &'static str)>) -> Response<Body> {
    let mut frames = Vec::new();
    let mut trailers = HeaderMap::new();
    match result {
        Ok(message) => {
            let mut framed = BytesMut::with_capacity(5 + message.len());
            framed.put_u8(0);
            framed.put_u32(message.len() as u32);
            framed.extend_from_slice(&message);
            frames.push(Ok(Frame::data(framed.freeze())));
            trailers.insert("grpc-status", 0.into());
        }
        Err((code, why)) => {
            trailers.insert("grpc-status", code.into());
            trailers.insert("grpc-message", HeaderValue::from_static(why));
        }
    }
    frames.push(Ok(Frame::trailers(trailers)));
    let mut response = Response::new(StreamBody::new(futures_util::stream::iter(frames)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}
