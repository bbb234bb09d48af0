//! ACLs as S3 has them for buckets with Object Ownership "bucket owner
//! enforced" (the default for new S3 buckets since 2023): ACLs are read-only
//! facts, not a way to grant access. Every bucket and object is owned by
//! the one owner with FULL_CONTROL; who may do what is decided by access
//! keys and their bucket grants (keys.rs).
//!
//! So: GetBucketAcl/GetObjectAcl describe that; requests that would *set*
//! an ACL succeed only if what they set is exactly that policy (`private`,
//! `bucket-owner-full-control`, or a document granting FULL_CONTROL to the
//! owner alone) and otherwise fail like S3 does — never a silent success
//! that leaves the data less public than the client asked for, or more.

use std::sync::Arc;

use http::{HeaderMap, Response, StatusCode};
use hyper::body::Incoming;

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::response::{RespBody, empty_response};
use crate::router::Operation;
use crate::xml::AccessControlPolicyDoc;

/// Canned ACLs that say what is true here: only the owner has access.
const CANNED_OWNER_ONLY: &[&str] = &["private", "bucket-owner-full-control"];

/// Refuses `x-amz-acl` values and `x-amz-grant-*` headers that would give
/// anyone but the owner access. Runs before every operation that takes
/// them (CreateBucket, PutObject, CopyObject, CreateMultipartUpload and the
/// two PutAcl operations).
pub(crate) fn check_acl_headers(op: Operation, headers: &HeaderMap) -> S3Result<()> {
    // Every value counts (a second `x-amz-acl` must not slip through), and
    // one that is not text is not the owner-only policy.
    let canned_ok = headers.get_all("x-amz-acl").iter().all(|v| {
        v.to_str()
            .is_ok_and(|v| CANNED_OWNER_ONLY.contains(&v.trim()))
    });
    if canned_ok && !has_grant_headers(headers) {
        return Ok(());
    }
    if op == Operation::CreateBucket {
        return Err(S3Error::new(
            S3ErrorCode::InvalidBucketAclWithObjectOwnership,
        ));
    }
    Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported))
}

fn has_grant_headers(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .any(|k| k.as_str().starts_with("x-amz-grant-"))
}

/// Whether an `AccessControlPolicy` document grants FULL_CONTROL to the
/// owner (`owner_id`, the bucket's owner's canonical id as GetBucketAcl
/// shows it; the account id `cairn` is accepted too, what Cairn showed
/// before buckets had owners) and nothing to anyone else.
fn owner_only(doc: &str, owner_id: &str) -> S3Result<bool> {
    let policy: AccessControlPolicyDoc = crate::xml::parse(doc).map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::MalformedACLError,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    })?;
    let grants = policy.list.map(|l| l.grants).unwrap_or_default();
    Ok(!grants.is_empty()
        && grants.iter().all(|g| {
            g.permission == "FULL_CONTROL"
                && g.grantee.uri.is_none()
                && g.grantee.email.is_none()
                && g.grantee
                    .id
                    .as_deref()
                    .is_some_and(|id| id == owner_id || id == crate::OWNER_ID)
        }))
}

/// PutBucketAcl / PutObjectAcl: accepted (and nothing changes) when the
/// ACL is the owner-only policy already in force; `AccessControlListNotSupported`
/// otherwise.
pub(crate) async fn put_acl(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
    object: bool,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    let owner_key = svc.engine.bucket_info(&bucket)?.owner;
    let owner_id = match owner_key.as_str() {
        "" => String::new(),
        key => svc.engine.canonical_user_id(key),
    };
    if object {
        svc.engine
            .head_version(&bucket, ctx.key()?, ctx.version_id()?.as_ref())?;
    }
    let has_header =
        ctx.parts.headers.contains_key("x-amz-acl") || has_grant_headers(&ctx.parts.headers);
    let (doc, _) = super::read_xml_body(ctx, body).await?;
    match (has_header, doc.trim().is_empty()) {
        // The header was checked before the handler ran.
        (true, true) => {}
        (true, false) => {
            return Err(S3Error::with_message(
                S3ErrorCode::UnexpectedContent,
                "This request does not support content",
            ));
        }
        (false, true) => {
            return Err(S3Error::with_message(
                S3ErrorCode::MissingSecurityHeader,
                "Your request was missing a required header",
            )
            .field("MissingHeaderName", "x-amz-acl"));
        }
        (false, false) => {
            if !owner_only(&doc, &owner_id)? {
                return Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported));
            }
        }
    }
    empty_response(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_owner_only_acls_pass() {
        let put = Operation::PutObject;
        assert!(check_acl_headers(put, &headers(&[])).is_ok());
        assert!(check_acl_headers(put, &headers(&[("x-amz-acl", "private")])).is_ok());
        assert!(
            check_acl_headers(put, &headers(&[("x-amz-acl", "bucket-owner-full-control")])).is_ok()
        );
        let mut two = headers(&[("x-amz-acl", "private")]);
        two.append("x-amz-acl", "public-read".parse().unwrap());
        assert!(
            check_acl_headers(put, &two).is_err(),
            "a second value counts"
        );
        assert_eq!(
            check_acl_headers(put, &headers(&[("x-amz-acl", "public-read")]))
                .unwrap_err()
                .code,
            S3ErrorCode::AccessControlListNotSupported
        );
        assert_eq!(
            check_acl_headers(
                Operation::CreateBucket,
                &headers(&[(
                    "x-amz-grant-read",
                    "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""
                )])
            )
            .unwrap_err()
            .code,
            S3ErrorCode::InvalidBucketAclWithObjectOwnership
        );
    }

    #[test]
    fn policy_documents() {
        let owner = format!(
            r#"<AccessControlPolicy><Owner><ID>{0}</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>{0}</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>"#,
            crate::OWNER_ID
        );
        assert!(owner_only(&owner, "").unwrap());
        // The bucket's owner key, or the account id, is the owner.
        let by_key = owner.replace(crate::OWNER_ID, "CKOWNER");
        assert!(owner_only(&by_key, "CKOWNER").unwrap());
        assert!(owner_only(&owner, "CKOWNER").unwrap());
        assert!(!owner_only(&by_key, "CKOTHER").unwrap());
        let public = owner.replace(
            "</AccessControlList>",
            r#"<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList>"#,
        );
        assert!(!owner_only(&public, "").unwrap());
        assert!(!owner_only("<AccessControlPolicy/>", "").unwrap());
        assert_eq!(
            owner_only("<AccessControlPolicy>", "").unwrap_err().code,
            S3ErrorCode::MalformedACLError
        );
    }
}
