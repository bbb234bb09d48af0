//! Response bodies and the small helpers every handler answers with.
//!
//! Owns: the response body type (`RespBody`, re-exported as
//! `cairn_s3_api::RespBody`) and how a complete answer is built (an XML
//! document, an empty body).
//!
//! Must never: decide a status, a header or a document's content (the
//! handlers and the service do), or import `service.rs` or the handlers: it
//! sits below both.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};

use crate::error::{S3Error, S3Result};

/// What a streamed body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response's body: a whole buffer or a stream (GetObject).
pub type RespBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body of these bytes.
pub(crate) fn full(body: impl Into<Bytes>) -> RespBody {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// No body.
pub(crate) fn empty() -> RespBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// An XML document (`crate::xml::to_xml`) with its content type.
pub(crate) fn xml_response(status: StatusCode, xml: String) -> S3Result<Response<RespBody>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(full(xml))
        .map_err(S3Error::internal)
}

/// A status without a body.
pub(crate) fn empty_response(status: StatusCode) -> S3Result<Response<RespBody>> {
    Response::builder()
        .status(status)
        .body(empty())
        .map_err(S3Error::internal)
}
