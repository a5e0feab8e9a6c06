//! The tower layer that tells the connection tracker (`conn.rs`) what each connection is
//! doing: an RPC is in flight from its request to the end of its response body (so a
//! controller's `Stream` or a long `Read` keeps its connection from counting as idle), and
//! a unary request's body is "being received" until it has arrived whole (so a client
//! that stops sending half-way is found and closed).
//!
//! Thread-safety: `Track` is a cheap `Clone`; all state lives in the connection's atomics.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;

use super::conn::{Conn, ReceiveGuard, RpcGuard};
use crate::api_layer::Peer;

/// The bidirectional stream's method: its request body is open for the whole session.
const STREAM_METHOD: &str = "/vswitch.v1.Switch/Stream";

/// Layer adding [`Track`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackLayer;

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

/// Counts RPCs and request bodies on the connection each request came over.
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for Track<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let Some(conn) = req.extensions().get::<Conn>().cloned() else {
            return Box::pin(self.inner.call(req));
        };
        // For the API layer's span (it runs inside this one).
        req.extensions_mut().insert(Peer(Arc::clone(conn.0.peer())));
        let rpc = conn.0.start_rpc();
        let req = if req.uri().path() == STREAM_METHOD {
            req
        } else {
            let receiving = conn.0.start_receiving();
            req.map(|b| {
                Body::new(Receiving {
                    inner: b,
                    guard: Some(receiving),
                })
            })
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|b| {
                Body::new(Held {
                    inner: b,
                    _rpc: rpc,
                })
            }))
        })
    }
}

/// A request body that reports progress, and its end by dropping its guard.
struct Receiving {
    inner: Body,
    guard: Option<ReceiveGuard>,
}

impl HttpBody for Receiving {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(_))) => {
                if let Some(g) = &self.guard {
                    g.progress();
                }
                if self.inner.is_end_stream() {
                    self.guard = None;
                }
            }
            Poll::Ready(_) => self.guard = None,
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body holding its RPC's guard until it ends (or is dropped).
struct Held {
    inner: Body,
    _rpc: RpcGuard,
}

impl HttpBody for Held {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
