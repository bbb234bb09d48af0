//! The key layouts are the on-disk format: pinned byte for byte, and each
//! read back to the key it was made from.

use cairn_dedup::ChunkId;

use super::*;
use crate::meta::Table;
use crate::meta_command::MetaCf;
use crate::records::VersionId;

#[test]
fn key_layouts_are_fixed() {
    let upload = UploadId([0xAB; 16]);
    let version = VersionId([0xCD; 16]);
    assert_eq!(Buckets::key("photos"), b"photos");
    assert_eq!(
        Objects::key((0x0102, "a/b")),
        [0, 0, 0, 0, 0, 0, 1, 2, b'a', b'/', b'b']
    );
    let mut manifest = vec![0xCD; 16];
    manifest.extend_from_slice(&[0, 0, 1, 0]);
    assert_eq!(Manifests::key((version, 256)).to_vec(), manifest);
    assert_eq!(InlineData::key(version), [0xCD; 16]);
    let chunk = ChunkId::from_bytes([7; 32]);
    assert_eq!(Chunks::key(&chunk), [7; 32]);
    assert_eq!(Uploads::key(upload), [0xAB; 16]);
    let mut index = vec![0, 0, 0, 0, 0, 0, 0, 9, b'k', 0];
    index.extend_from_slice(&[0xAB; 16]);
    assert_eq!(UploadIndex::key((9, "k", upload)), index);
    let mut part = vec![0xAB; 16];
    part.extend_from_slice(&[0, 0, 0, 3]);
    assert_eq!(Parts::key((upload, 3)).to_vec(), part);
    assert_eq!(System::key("totals"), b"totals");
    assert_eq!(UploadIndex::encode(&()), b"");
    let mut version = vec![0, 0, 0, 0, 0, 0, 0, 9, b'k', 0];
    version.extend_from_slice(&(u64::MAX - 5).to_be_bytes());
    assert_eq!(Versions::key((9, "k", 5)), version);
}

#[test]
fn each_table_names_its_column_family() {
    let cfs = [
        Buckets::CF,
        Objects::CF,
        Manifests::CF,
        InlineData::CF,
        Chunks::CF,
        Uploads::CF,
        UploadIndex::CF,
        Parts::CF,
        System::CF,
        Versions::CF,
    ];
    // `events` has no table: its rows are appended (`MetaOp::Append`) and
    // read by `notifications.rs`.
    assert_eq!(cfs[..], MetaCf::ALL[..10]);
    assert_eq!(MetaCf::ALL[10], MetaCf::Events);
}

#[test]
fn keys_read_back() {
    let upload = UploadId([3; 16]);
    let version = VersionId([4; 16]);
    assert_eq!(Buckets::decode_key(b"b1").unwrap().as_deref(), Some("b1"));
    assert!(Buckets::decode_key(&[0xFF]).is_err());
    assert_eq!(
        Objects::decode_key(&Objects::key((5, "x\0y"))).unwrap(),
        Some((5, "x\0y".to_owned()))
    );
    assert_eq!(Objects::decode_key(&[1, 2]).unwrap(), None);
    assert_eq!(
        Manifests::decode_key(&Manifests::key((version, 7))).unwrap(),
        Some((version, 7))
    );
    assert_eq!(InlineData::decode_key(&[4; 16]).unwrap(), Some(version));
    let chunk = ChunkId::from_bytes([8; 32]);
    assert_eq!(
        Chunks::decode_key(Chunks::key(&chunk)).unwrap(),
        Some(chunk)
    );
    assert_eq!(Chunks::decode_key(&[8; 31]).unwrap(), None);
    assert_eq!(Uploads::decode_key(&[3; 16]).unwrap(), Some(upload));
    // A key holding 0x00 itself still splits at the last one.
    assert_eq!(
        UploadIndex::decode_key(&UploadIndex::key((2, "a\0b", upload))).unwrap(),
        Some((2, "a\0b".to_owned(), upload))
    );
    assert_eq!(
        Parts::decode_key(&Parts::key((upload, 10_000))).unwrap(),
        Some((upload, 10_000))
    );
    assert_eq!(Parts::decode_key(&[3; 19]).unwrap(), None);
    assert_eq!(
        System::decode_key(b"gc/state").unwrap().as_deref(),
        Some("gc/state")
    );
}
