//! SSE-KMS as S3 defines it, on Cairn's built-in key service: the
//! `x-amz-server-side-encryption: aws:kms` headers of a request (or the
//! bucket's default encryption), turned into an object's envelope (its
//! data key wrapped by the named key, storage-engine `KmsEnvelope`) and
//! cipher (crypto's `kms`); and the reverse on reads.
//!
//! Owns: parsing and validating the KMS headers (S3's errors for each
//! mistake), resolving a key reference (id, key ARN, `alias/NAME`, alias
//! ARN; none: the default key `aws/s3`), refusing a missing key
//! (`KMS.NotFoundException`) or a disabled one (`KMS.DisabledException`,
//! on writes and on reads of its objects), and the response headers.
//!
//! Must never: encrypt under a key other than the one named (a reference
//! that does not resolve is refused, never replaced by a default); return
//! an SSE-KMS object's bytes while its key is disabled; log key material.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cairn_crypto::customer_key::ObjectCipher;
use cairn_crypto::kms::{DataKey, wrap_aad};
use cairn_storage_engine::{DEFAULT_KMS_ALIAS, KmsEnvelope};
use http::{HeaderMap, HeaderValue};

use crate::context::{RequestCtx, ServiceInner};
use crate::error::{S3Error, S3ErrorCode, S3Result};

const SSE: &str = "x-amz-server-side-encryption";
const KEY_ID: &str = "x-amz-server-side-encryption-aws-kms-key-id";
const CONTEXT: &str = "x-amz-server-side-encryption-context";
const BUCKET_KEY: &str = "x-amz-server-side-encryption-bucket-key-enabled";
/// Largest encryption context accepted (its base64 form). KMS itself
/// limits a context to 8 KiB; S3's headers are smaller still in practice.
const CONTEXT_MAX_BYTES: usize = 8 << 10;

/// What a write asks for: encryption under a key-service key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KmsRequest {
    /// The key as the request (or bucket default) named it; `None`: the
    /// default key `aws/s3`.
    pub(crate) key_ref: Option<String>,
    /// The encryption context as sent (base64 JSON), empty if none.
    pub(crate) context: String,
    pub(crate) bucket_key_enabled: bool,
}

/// A new object's (or upload's) envelope and cipher.
pub(crate) struct KmsWrite {
    pub(crate) envelope: KmsEnvelope,
    pub(crate) cipher: ObjectCipher,
}

fn invalid(message: &str, name: &str, value: &str) -> S3Error {
    S3Error::invalid_argument(message, name, value)
}

/// The KMS encryption a write's headers ask for (`None`: they ask for none;
/// the bucket default may still apply, see [`for_new_object`]). Refuses a
/// key id or context without `aws:kms`, a context that is not base64 JSON
/// of string pairs, and a bucket-key flag that is not a boolean.
pub(crate) fn requested(ctx: &RequestCtx) -> S3Result<Option<KmsRequest>> {
    let h = &ctx.parts.headers;
    let text = |name: &str| -> S3Result<Option<String>> {
        match h.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|_| invalid("The header value is not valid.", name, "")),
        }
    };
    let sse = text(SSE)?;
    let key_ref = text(KEY_ID)?;
    let context = text(CONTEXT)?;
    let bucket_key = text(BUCKET_KEY)?;
    let is_kms = sse.as_deref() == Some("aws:kms");
    if !is_kms {
        for (name, value) in [(KEY_ID, &key_ref), (CONTEXT, &context)] {
            if let Some(v) = value {
                return Err(invalid(
                    "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
                    name,
                    v,
                ));
            }
        }
        return Ok(None);
    }
    if let Some(k) = &key_ref {
        parse_reference(k).ok_or_else(|| invalid("Invalid keyId.", KEY_ID, k))?;
    }
    let context = context.unwrap_or_default();
    if !context.is_empty() {
        check_context(&context)?;
    }
    let bucket_key_enabled = match bucket_key.as_deref() {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(invalid(
                "The bucket key enabled header must be true or false.",
                BUCKET_KEY,
                v,
            ));
        }
    };
    Ok(Some(KmsRequest {
        key_ref,
        context,
        bucket_key_enabled,
    }))
}

/// An encryption context as S3 takes it: base64 of a UTF-8 JSON object
/// whose values are strings.
fn check_context(context: &str) -> S3Result<()> {
    let refuse = || {
        invalid(
            "The encryption context must be a base64-encoded UTF-8 JSON object of string values.",
            CONTEXT,
            "",
        )
    };
    if context.len() > CONTEXT_MAX_BYTES {
        return Err(refuse());
    }
    let json = BASE64.decode(context).map_err(|_| refuse())?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&json).map_err(|_| refuse())?;
    if map.values().all(serde_json::Value::is_string) {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// A key reference, parsed: a key id or an alias (without `alias/`).
#[derive(Debug, PartialEq, Eq)]
enum KeyReference<'a> {
    Id(&'a str),
    Alias(&'a str),
}

fn parse_reference(r: &str) -> Option<KeyReference<'_>> {
    if let Some(alias) = r.strip_prefix("alias/") {
        return Some(KeyReference::Alias(alias));
    }
    if let Some(rest) = r.strip_prefix("arn:aws:kms:") {
        // region:account:key/ID or region:account:alias/NAME
        let (region, rest) = rest.split_once(':')?;
        let (_account, resource) = rest.split_once(':')?;
        if region.is_empty() {
            return None;
        }
        // The region is checked against the server's when resolving.
        return if let Some(id) = resource.strip_prefix("key/") {
            Some(KeyReference::Id(id))
        } else {
            Some(KeyReference::Alias(resource.strip_prefix("alias/")?))
        };
    }
    if r.is_empty() || r.contains(['/', ':']) {
        return None;
    }
    Some(KeyReference::Id(r))
}

/// The region an ARN names (`None` for a bare id or alias).
fn arn_region(r: &str) -> Option<&str> {
    r.strip_prefix("arn:aws:kms:")?.split(':').next()
}

/// The ARN S3 reports for key `id` (Cairn has no accounts: the account
/// field is empty, as in the `arn:aws:iam:::user/NAME` principals).
pub(crate) fn key_arn(region: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}::key/{id}")
}

/// The id of the key `reference` (as [`requested`] accepted it) names on
/// this server; a bare id or key ARN is not looked up here (the one read
/// of the key's record, in [`begin`], finds it or not).
async fn resolve(svc: &ServiceInner, reference: Option<&str>) -> S3Result<String> {
    let Some(r) = reference else {
        return Ok(svc.engine.default_kms_key().await?.id);
    };
    let not_found = || {
        S3Error::from(cairn_storage_engine::EngineError::NoSuchKmsKey(
            r.to_owned(),
        ))
    };
    if arn_region(r).is_some_and(|region| region != svc.config.region) {
        return Err(not_found());
    }
    let found = match parse_reference(r) {
        Some(KeyReference::Id(id)) => Some(id.to_owned()),
        // The default key is made on first use however it is named.
        Some(KeyReference::Alias(DEFAULT_KMS_ALIAS)) => {
            Some(svc.engine.default_kms_key().await?.id)
        }
        Some(KeyReference::Alias(a)) => svc.engine.kms_key_by_alias(a)?.map(|k| k.id),
        None => None,
    };
    found.ok_or_else(not_found)
}

/// The canonical ARN of the key `reference` names, if it names one (what
/// bucket policies compare `s3:x-amz-server-side-encryption-aws-kms-key-id`
/// with, so that `alias/x`, the bare id or an ARN with another account
/// are all the same key). Creates nothing.
pub(crate) fn canonical_arn(svc: &ServiceInner, reference: &str) -> S3Result<Option<String>> {
    let r = reference.trim();
    if arn_region(r).is_some_and(|region| region != svc.config.region) {
        return Ok(None);
    }
    let found = match parse_reference(r) {
        Some(KeyReference::Id(id)) => svc.engine.kms_key(id)?,
        Some(KeyReference::Alias(a)) => svc.engine.kms_key_by_alias(a)?,
        None => None,
    };
    Ok(found.map(|k| key_arn(&svc.config.region, &k.id)))
}

fn disabled(svc: &ServiceInner, id: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::KmsDisabled,
        format!("{} is disabled.", key_arn(&svc.config.region, id)),
    )
}

/// A stored PutBucketEncryption document's default, when it is `aws:kms`
/// (read once per configuration change, into the access cache).
pub(crate) fn parse_bucket_default(stored: &[u8]) -> Result<Option<KmsRequest>, String> {
    let text = std::str::from_utf8(stored).map_err(|e| e.to_string())?;
    let doc: crate::xml::ServerSideEncryptionConfigurationDoc =
        crate::xml::parse(text).map_err(|e| e.to_string())?;
    let Some(rule) = doc.rules.into_iter().next() else {
        return Ok(None);
    };
    let Some(default) = rule.default else {
        return Ok(None);
    };
    if default.sse_algorithm.as_deref().map(str::trim) != Some("aws:kms") {
        return Ok(None);
    }
    Ok(Some(KmsRequest {
        key_ref: default.kms_master_key_id.map(|k| k.trim().to_owned()),
        context: String::new(),
        bucket_key_enabled: rule.bucket_key_enabled.as_deref().map(str::trim) == Some("true"),
    }))
}

/// The bucket's default encryption, when it is `aws:kms` (from the access
/// cache: no read per write). A stored document that no longer parses
/// refuses the write rather than store it unencrypted by KMS.
fn bucket_default(svc: &ServiceInner, bucket: &str) -> S3Result<Option<KmsRequest>> {
    let Some(facts) = svc.access_cache.get(&svc.engine, bucket)? else {
        return Err(S3Error::new(S3ErrorCode::NoSuchBucket));
    };
    match &facts.kms_default {
        Ok(default) => Ok(default.clone()),
        Err(e) => Err(S3Error::internal(format!(
            "the bucket's default encryption is unreadable: {e}"
        ))),
    }
}

/// The KMS encryption a new object (or upload) at `bucket/key` gets: what
/// the request asks for, else the bucket's default when that is
/// `aws:kms` and the request asks for no other encryption (no
/// `x-amz-server-side-encryption` and no SSE-C).
pub(crate) fn for_new_object(
    svc: &ServiceInner,
    ctx: &RequestCtx,
    bucket: &str,
    other_encryption_requested: bool,
) -> S3Result<Option<KmsRequest>> {
    if let Some(r) = requested(ctx)? {
        return Ok(Some(r));
    }
    if other_encryption_requested || ctx.parts.headers.contains_key(SSE) {
        return Ok(None);
    }
    let Some(mut default) = bucket_default(svc, bucket)? else {
        return Ok(None);
    };
    // The request's bucket-key flag wins over the bucket's, as on S3.
    match crate::headers::header_str(&ctx.parts.headers, BUCKET_KEY).map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("true") => default.bucket_key_enabled = true,
        Some(v) if v.eq_ignore_ascii_case("false") => default.bucket_key_enabled = false,
        Some(v) => {
            return Err(invalid(
                "The bucket key enabled header must be true or false.",
                BUCKET_KEY,
                v,
            ));
        }
        None => {}
    }
    Ok(Some(default))
}

/// Wraps a new data key for `bucket/key` under the requested key's newest
/// material: the envelope to store and the cipher to encrypt with.
pub(crate) async fn begin(
    svc: &ServiceInner,
    request: &KmsRequest,
    bucket: &str,
    key: &str,
) -> S3Result<KmsWrite> {
    let id = resolve(svc, request.key_ref.as_deref()).await?;
    let (info, material) = match svc.engine.kms_key_material(&id, None) {
        Ok(found) => found,
        // Named by id or ARN: reported as the request named it.
        Err(cairn_storage_engine::EngineError::NoSuchKmsKey(_)) => {
            return Err(S3Error::from(
                cairn_storage_engine::EngineError::NoSuchKmsKey(
                    request.key_ref.clone().unwrap_or(id),
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !info.enabled {
        return Err(disabled(svc, &info.id));
    }
    let data_key = DataKey::generate().map_err(S3Error::internal)?;
    let aad = wrap_aad(&info.id, info.versions, bucket, key, &request.context);
    let wrapped_key = material.wrap(&data_key, &aad).map_err(S3Error::internal)?;
    Ok(KmsWrite {
        envelope: KmsEnvelope {
            key_id: info.id,
            key_version: info.versions,
            wrapped_key,
            context: request.context.clone(),
            bucket_key_enabled: request.bucket_key_enabled,
        },
        cipher: data_key.object_cipher(),
    })
}

/// The cipher of an object (or upload) at `bucket/key` with `envelope`:
/// its data key unwrapped, if its key exists and is enabled.
pub(crate) fn open(
    svc: &ServiceInner,
    envelope: &KmsEnvelope,
    bucket: &str,
    key: &str,
) -> S3Result<ObjectCipher> {
    let (info, material) = match svc
        .engine
        .kms_key_material(&envelope.key_id, Some(envelope.key_version))
    {
        Ok(found) => found,
        Err(cairn_storage_engine::EngineError::NoSuchKmsKey(_)) => {
            return Err(S3Error::from(
                cairn_storage_engine::EngineError::NoSuchKmsKey(key_arn(
                    &svc.config.region,
                    &envelope.key_id,
                )),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !info.enabled {
        return Err(disabled(svc, &info.id));
    }
    let aad = wrap_aad(
        &envelope.key_id,
        envelope.key_version,
        bucket,
        key,
        &envelope.context,
    );
    let data_key = material.unwrap(&envelope.wrapped_key, &aad).map_err(|e| {
        S3Error::internal(format!(
            "the data key of {bucket}/{key} does not unwrap: {e}"
        ))
    })?;
    Ok(data_key.object_cipher())
}

/// The cipher of an existing object or upload whose metadata is `meta`,
/// if it is an SSE-KMS one (`None` otherwise).
pub(crate) fn for_existing(
    svc: &ServiceInner,
    meta: &cairn_storage_engine::ObjectMetadata,
    bucket: &str,
    key: &str,
) -> S3Result<Option<ObjectCipher>> {
    meta.sse_kms
        .as_ref()
        .map(|envelope| open(svc, envelope, bucket, key))
        .transpose()
}

/// The response headers of an SSE-KMS object (or upload).
pub(crate) fn echo(svc: &ServiceInner, h: &mut HeaderMap, envelope: &KmsEnvelope) {
    h.insert(SSE, HeaderValue::from_static("aws:kms"));
    if let Ok(v) = HeaderValue::from_str(&key_arn(&svc.config.region, &envelope.key_id)) {
        h.insert(KEY_ID, v);
    }
    if !envelope.context.is_empty()
        && let Ok(v) = HeaderValue::from_str(&envelope.context)
    {
        h.insert(CONTEXT, v);
    }
    if envelope.bucket_key_enabled {
        h.insert(BUCKET_KEY, HeaderValue::from_static("true"));
    }
}

/// Whether `reference` can name a key (PutBucketEncryption's
/// `KMSMasterKeyID`: its shape only; S3 resolves it on each write).
pub(crate) fn valid_reference(reference: &str) -> bool {
    parse_reference(reference.trim()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_kms_names_them() {
        let id = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
        assert_eq!(parse_reference(id), Some(KeyReference::Id(id)));
        assert_eq!(
            parse_reference("alias/backups"),
            Some(KeyReference::Alias("backups"))
        );
        assert_eq!(
            parse_reference(&format!("arn:aws:kms:us-east-1::key/{id}")),
            Some(KeyReference::Id(id))
        );
        assert_eq!(
            parse_reference("arn:aws:kms:eu-west-1:123456789012:alias/aws/s3"),
            Some(KeyReference::Alias("aws/s3"))
        );
        assert_eq!(
            arn_region("arn:aws:kms:eu-west-1:1:key/x"),
            Some("eu-west-1")
        );
        for bad in [
            "",
            "a/b",
            "arn:aws:kms:us-east-1",
            "arn:aws:kms::1:key/x",
            "arn:aws:kms:r:1:bucket/x",
        ] {
            assert_eq!(parse_reference(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_context_is_base64_json_of_strings() {
        let b = |s: &str| BASE64.encode(s);
        assert!(check_context(&b(r#"{"team":"ops","x":""}"#)).is_ok());
        assert!(check_context(&b("{}")).is_ok());
        for bad in [
            b(r#"{"n":1}"#),
            b("[]"),
            b("not json"),
            "@@@".into(),
            b(&format!(r#"{{"a":"{}"}}"#, "x".repeat(9000))),
        ] {
            assert!(check_context(&bad).is_err(), "{bad}");
        }
    }
}
