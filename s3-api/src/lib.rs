//! The S3 front end of Cairn: HTTP serving (hyper), request routing,
//! SigV4 verification, body decoding (aws-chunked, checksums, Content-MD5),
//! S3 XML and the handlers that turn S3 operations into storage-engine calls.
//!
//! Owns: everything that knows what S3 is — error codes and their XML,
//! header semantics, listing encodings, the mapping of engine errors to S3
//! errors (in one place, `error.rs`).
//!
//! No `unsafe` code (forbidden): the AVX-512 MD5 lanes, the one place that
//! needs it, are their own crate (`cairn-md5-lanes`).
//!
//! Must never: touch drives or RocksDB directly (only through
//! `cairn-storage-engine`), log secrets or signatures, panic or answer 500
//! for a client mistake, or buffer an object body whole in memory.

#![forbid(unsafe_code)]

/// SigV4, aws-chunked and checksums: the `cairn-s3-auth` crate.
pub use cairn_s3_auth as auth;
mod access;
mod audit;
mod body;
mod context;
mod cors;
mod error;
mod handlers;
mod headers;
mod keys;
pub mod listener_limits;
mod metrics;
mod request_rules;
mod response;
mod router;
mod service;
mod sse_c;
mod sse_kms;
mod tags;
mod xml;

pub use access::{ClientFacts, PublicAccessBlock};
pub use context::S3Config;
pub use error::{S3Error, S3ErrorCode};
/// S3's XML timestamp (`2009-10-12T17:50:30.000Z`), also an event's `eventTime`.
pub use headers::iso8601;
pub use keys::{KeyAccess, KeyInfo, KeyRing};
pub use response::RespBody;
pub use router::Operation;
pub use service::{S3Service, serve};

/// The owner id reported in listings (single-tenant: one owner).
pub const OWNER_ID: &str = "cairn";
/// The owner display name reported in listings.
pub const OWNER_DISPLAY_NAME: &str = "cairn";
