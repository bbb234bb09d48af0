//! Lifecycle rules as the engine stores and evaluates them: which rule
//! applies to which object version, and what it asks for (expire the
//! current version, expire noncurrent versions, remove expired delete
//! markers, abort incomplete multipart uploads).
//!
//! Owns: the rule model, its versioned metadata encoding and the pure
//! evaluation of a rule against one version. Must never: read or write
//! the metadata store, touch chunk data, or know S3 XML (the S3 layer
//! translates its documents into this model).
