//! PutBucketEncryption and GetBucketEncryption (DeleteBucketEncryption is
//! the shared `delete_bucket_document`): a
//! bucket's default encryption, as S3 defines it.
//!
//! Every chunk Cairn stores is sealed with AES-256-GCM under server-managed
//! keys whatever a bucket says: that is SSE-S3 (`AES256`), S3's own default
//! for every bucket since 2023, and what GetBucketEncryption answers when
//! nothing was set or after DeleteBucketEncryption. A configuration naming
//! `AES256` is stored and answered as set (its `BucketKeyEnabled` too).
//! One naming `aws:kms` (with a `KMSMasterKeyID`, or none for the default
//! key `aws/s3`) makes every new object without encryption headers an
//! SSE-KMS object under that key (`sse_kms::for_new_object`); the key is
//! resolved on each write, as S3 does, so a missing or disabled key fails
//! the write, not this request.
//!
//! Must never: accept a configuration promising what Cairn does not do —
//! dual-layer KMS (`aws:kms:dsse`) is `501 NotImplemented` — or store one
//! that does not validate.

use std::sync::Arc;

use cairn_storage_engine::BucketDocument;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::response::{RespBody, empty_response, xml_response};
use crate::xml::{
    ServerSideEncryptionConfiguration, ServerSideEncryptionConfigurationDoc, parse, to_xml,
};

use super::{read_xml_body, require_integrity_header};

/// Validates a PutBucketEncryption document; the configuration to store.
fn validate(text: &str) -> S3Result<ServerSideEncryptionConfiguration<'static>> {
    let doc: ServerSideEncryptionConfigurationDoc =
        parse(text).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    // S3 holds exactly one rule, with a default algorithm.
    let [rule] =
        <[_; 1]>::try_from(doc.rules).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    let default = rule
        .default
        .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?;
    let algorithm = default.sse_algorithm.unwrap_or_default();
    let algorithm = match algorithm.trim() {
        "AES256" => "AES256",
        "aws:kms" => "aws:kms",
        "aws:kms:dsse" => {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "Default encryption with aws:kms:dsse (dual-layer KMS) is not implemented: use aws:kms or AES256.",
            ));
        }
        _ => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    let kms_master_key_id = match default.kms_master_key_id.as_deref().map(str::trim) {
        None => None,
        Some(_) if algorithm != "aws:kms" => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
            ));
        }
        Some(id) if crate::sse_kms::valid_reference(id) => Some(id.to_owned().into()),
        Some(_) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The KMSMasterKeyID is not a key id, key ARN, alias/NAME or alias ARN.",
            ));
        }
    };
    let bucket_key_enabled = match rule.bucket_key_enabled.as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    Ok(ServerSideEncryptionConfiguration {
        sse_algorithm: algorithm.into(),
        kms_master_key_id,
        bucket_key_enabled,
    })
}

pub(crate) async fn put_bucket_encryption(
    svc: &Arc<ServiceInner>,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> S3Result<Response<RespBody>> {
    let bucket = ctx.bucket()?.to_owned();
    svc.engine.bucket_info(&bucket)?;
    require_integrity_header(ctx)?;
    let (text, _) = read_xml_body(ctx, body).await?;
    let configuration = validate(&text)?;
    svc.engine
        .set_bucket_document(
            &bucket,
            BucketDocument::Encryption,
            Some(to_xml(&configuration).into_bytes()),
        )
        .await?;
    empty_response(StatusCode::OK)
}

pub(crate) fn get_bucket_encryption(
    svc: &Arc<ServiceInner>,
    ctx: &RequestCtx,
) -> S3Result<Response<RespBody>> {
    let stored = svc
        .engine
        .bucket_document(ctx.bucket()?, BucketDocument::Encryption)?;
    let document = match stored {
        Some(bytes) => String::from_utf8(bytes).map_err(S3Error::internal)?,
        None => to_xml(&ServerSideEncryptionConfiguration {
            sse_algorithm: "AES256".into(),
            kms_master_key_id: None,
            bucket_key_enabled: false,
        }),
    };
    xml_response(StatusCode::OK, document)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rules: &str) -> String {
        format!(
            "<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</ServerSideEncryptionConfiguration>"
        )
    }

    #[test]
    fn aes256_and_aws_kms_are_accepted() {
        let ok = validate(&doc(
            "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule>",
        ))
        .unwrap();
        assert!(ok.bucket_key_enabled);
        let kms = validate(&doc(
            "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID> alias/backups </KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule>",
        ))
        .unwrap();
        assert_eq!(
            to_xml(&kms),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>alias/backups</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"
        );
        // The default key: no KMSMasterKeyID.
        assert!(validate(&doc(
            "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>",
        ))
        .unwrap()
        .kms_master_key_id
        .is_none());
        let code = |rules: &str| validate(&doc(rules)).unwrap_err().code;
        assert_eq!(
            code(
                "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>a/b</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule>"
            ),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(
                "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms:dsse</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>"
            ),
            S3ErrorCode::NotImplemented
        );
        assert_eq!(
            code(
                "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES128</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>"
            ),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            code(
                "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm><KMSMasterKeyID>k</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule>"
            ),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(code(""), S3ErrorCode::MalformedXML);
        assert_eq!(code("<Rule></Rule>"), S3ErrorCode::MalformedXML);
        let one = "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>";
        assert_eq!(code(&one.repeat(2)), S3ErrorCode::MalformedXML);
        assert_eq!(
            code(
                "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BlockedEncryptionTypes><EncryptionType>SSE-C</EncryptionType></BlockedEncryptionTypes></Rule>"
            ),
            S3ErrorCode::MalformedXML
        );
    }
}
