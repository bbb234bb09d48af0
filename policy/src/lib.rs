//! Bucket policies: the IAM policy language as S3 uses it (skeleton; the
//! parser and evaluator land next).
#![forbid(unsafe_code)]
