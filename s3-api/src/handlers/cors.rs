//! PutBucketCors and GetBucketCors (DeleteBucketCors is the shared
//! `delete_bucket_document`). Preflights and the
//! headers of actual responses are the service's (cors.rs holds the rules).
//!
//! Must never: store rules that do not validate (every check happens before
//! anything is stored), or store anything but the canonical document
//! (`CorsRules::to_document`), which is what GetBucketCors answers and what
//! the access cache parses again.

use std::sync::Arc;

use cairn_storage_engine::BucketDocument;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::context::{RequestCtx, ServiceInner};
use crate::cors::CorsRules;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::response::{RespBody, empty_response, xml_response};

use super::{read_xml_body, require_integrity_header};

pub(crate) async fn put_bucket_cors(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    svc.engine.bucket_info(&bucket)?;
    // S3 requires Content-MD5 (or a checksum) on PutBucketCors.
    require_integrity_header(ctx)?;
    let (text, _) = read_xml_body(ctx, body).await?;
    let rules = CorsRules::parse(&text)?;
    svc.engine
        .set_bucket_document(
            &bucket,
            BucketDocument::Cors,
            Some(rules.to_document().into_bytes()),
        )
        .await?;
    empty_response(StatusCode::OK)
}

pub(crate) fn get_bucket_cors(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let Some(document) = svc
        .engine
        .bucket_document(ctx.bucket()?, BucketDocument::Cors)?
    else {
        return Err(S3Error::new(S3ErrorCode::NoSuchCORSConfiguration));
    };
    let text = String::from_utf8(document).map_err(S3Error::internal)?;
    xml_response(StatusCode::OK, text)
}
