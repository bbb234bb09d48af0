//! Cairn's end-to-end tests, as one test binary: every test runs a real
//! `cairn` process on loopback (the harness in [`common`]) and talks to it
//! as a client would — aws-sdk-s3, hand-built requests, and the real tools
//! (aws CLI, boto3, rclone, restic, s3cmd, s3fs, duplicity, curl, openssl).
//!
//! One binary links RocksDB and the SDK once, and compiles the harness once;
//! a feature's tests are a module here. Run one module with
//! `cargo test --workspace --test it <module>::` (for example
//! `--test it clients::`).
//!
//! | module | what it checks |
//! |---|---|
//! | [`access_keys`] | per-bucket access keys made with `cairn admin key` |
//! | [`backup`] | FUSE mounts and backup tools, restores compared byte for byte |
//! | [`cli_clients`] | the aws CLI, rclone, and `cairn`'s own command line |
//! | [`clients`] | boto3, restic, s3cmd, rclone, aws CLI with default settings |
//! | [`cluster`] | a 3-node cluster: replication, node loss, heal, rebalance, one version history, SSE-KMS keys on every node |
//! | [`crash`] | SIGKILL under concurrent writes (plain and versioned, locked) loses nothing acknowledged |
//! | [`data_dir_compat`] | a data dir written by an earlier main opens and reads back |
//! | [`hostile_clients`] | connection floods, stalls and unsafe defaults |
//! | [`immutable_backups`] | rclone point-in-time copies; a restic backup under Object Lock survives its own key |
//! | [`maintenance`] | `cairn admin heal / scrub / gc / status`, drive identity |
//! | [`master_key`] | `cairn admin master-key rotate`: everything reads back under the new key, the old one is refused, interrupted rotations |
//! | [`notifications`] | event notifications to Mosquitto (MQTT QoS 1) and a signed webhook, across a broker outage and `kill -9` |
//! | [`ops_metrics`] | dashboards and alert rules use metrics the server has |
//! | [`pipeline`] | dedup, compression, encryption at rest, erasure coding |
//! | [`s3_checksums`] | additional checksums on multipart objects |
//! | [`s3_compat`] | versions listing, copies, the wider S3 surface |
//! | [`s3_conditional`] | conditional writes |
//! | [`s3_errors`] | bad input gets S3's error and stores nothing |
//! | [`s3_kms`] | SSE-KMS on the built-in key service: key ids, ARNs and aliases, disabled and rotated keys (also under load), copies between modes, bucket defaults, boto3 |
//! | [`s3_lifecycle`] | lifecycle rules: configuration API, expiration, noncurrent versions, uploads, `x-amz-expiration` |
//! | [`s3_object_lock`] | Object Lock: retention, legal hold, who may bypass |
//! | [`s3_part_copy`] | UploadPartCopy |
//! | [`s3_policy`] | bucket policies, anonymous access, public access blocks |
//! | [`s3_post_object`] | POST Object: boto3 presigned posts sent by `curl -F`, policy conditions, device keys, anonymous forms |
//! | [`s3_sdk`] | S3 behaviour through aws-sdk-s3 |
//! | [`s3_signatures`] | signing modes: SigV4 streaming, trailers, presigned |
//! | [`s3_stalls`] | clients that stop sending a body |
//! | [`s3_versioning`] | versions, delete markers, suspended buckets, versioned listings |
//! | [`tls`] | HTTPS on both listeners |
//! | [`versioned_space`] | 30 versions of a tree cost little more than one; deleting them gives it back |

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod access_keys;
mod audit_log;
mod backup;
mod cli_clients;
mod clients;
mod cluster;
mod crash;
mod data_dir_compat;
mod hostile_clients;
mod immutable_backups;
mod maintenance;
mod master_key;
mod notifications;
mod ops_metrics;
mod pipeline;
mod s3_checksums;
mod s3_compat;
mod s3_conditional;
mod s3_cors;
mod s3_encryption;
mod s3_errors;
mod s3_kms;
mod s3_lifecycle;
mod s3_object_lock;
mod s3_part_copy;
mod s3_policy;
mod s3_post_object;
mod s3_sdk;
mod s3_signatures;
mod s3_sse_c;
mod s3_stalls;
mod s3_versioning;
mod tls;
mod versioned_space;
