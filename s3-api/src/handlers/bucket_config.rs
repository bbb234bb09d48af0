//! Bucket configurations S3 defines that Cairn does not implement yet, read
//! and deleted as S3 answers for a configuration that was never set.
//!
//! Must never: answer a GET with a configuration that is not true of the
//! bucket. Where Cairn's fixed behaviour *is* a configuration (every chunk
//! encrypted with AES-256: SSE-S3; one owner: `BucketOwnerEnforced`), that
//! is what it reports, as S3 reports its own defaults (encryption has its
//! own handlers: encryption.rs).

use std::sync::Arc;

use http::{Response, StatusCode};

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::response::{RespBody, empty_response, xml_response};
use crate::xml::{
    ConfigurationList, ConfigurationListKind, EmptyConfiguration, OwnershipControls,
    RequestPaymentConfiguration, to_xml,
};

/// GetBucketWebsite, GetBucketReplication, ….
pub(crate) fn get_bucket_config(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
    sub: &'static str,
) -> S3Result<Response<RespBody>> {
    svc.engine.bucket_info(ctx.bucket()?)?;
    let not_set = |code| Err(S3Error::new(code));
    let doc = |xml: String| xml_response(StatusCode::OK, xml);
    // The lists of configurations addressed without an `id`: empty.
    let none = |kind| {
        doc(to_xml(&ConfigurationList {
            kind,
            is_truncated: false,
        }))
    };
    use S3ErrorCode as C;
    match sub {
        "website" => not_set(C::NoSuchWebsiteConfiguration),
        "replication" => not_set(C::ReplicationConfigurationNotFoundError),
        // One of a kind, addressed by `id`: none exists.
        "analytics" | "inventory" | "metrics" | "intelligent-tiering" if ctx.query.has("id") => {
            not_set(C::NoSuchConfiguration)
        }
        "analytics" => none(ConfigurationListKind::Analytics),
        "inventory" => none(ConfigurationListKind::Inventory),
        "metrics" => none(ConfigurationListKind::Metrics),
        "intelligent-tiering" => none(ConfigurationListKind::IntelligentTiering),
        // Empty documents: S3's answer when nothing is configured.
        "accelerate" => doc(to_xml(&EmptyConfiguration::Accelerate)),
        "logging" => doc(to_xml(&EmptyConfiguration::Logging)),
        "notification" => doc(to_xml(&EmptyConfiguration::Notification)),
        "requestPayment" => doc(to_xml(&RequestPaymentConfiguration {
            payer: "BucketOwner".into(),
        })),
        // What Cairn always does, reported as S3 reports its defaults.
        "ownershipControls" => doc(to_xml(&OwnershipControls {
            object_ownership: "BucketOwnerEnforced".into(),
        })),
        other => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!("{other} is not implemented by this server."),
        )),
    }
}

/// DeleteBucketCors, DeleteBucketLifecycle, …: nothing is set, so nothing
/// is removed; S3 answers 204 then too.
pub(crate) fn delete_bucket_config(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    svc.engine.bucket_info(ctx.bucket()?)?;
    empty_response(StatusCode::NO_CONTENT)
}
