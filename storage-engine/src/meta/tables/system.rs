//! `system`: ASCII name → a value whose format the name's owner defines
//! (access keys, garbage-collection state, the stored totals — which only
//! `totals.rs` and the store's apply write, by merge). Owns that layout
//! only: values are bytes here.

use crate::error::CodecError;
use crate::meta::Table;
use crate::meta_command::MetaCf;

/// The `system` column family.
#[derive(Clone, Copy, Debug)]
pub struct System;

impl Table for System {
    const CF: MetaCf = MetaCf::System;
    type Key<'a> = &'a str;
    type KeyBytes<'a> = &'a [u8];
    /// Names read back (lossy: names are ASCII).
    type KeyOwned = String;
    type Value = Vec<u8>;

    fn key(name: Self::Key<'_>) -> Self::KeyBytes<'_> {
        name.as_bytes()
    }

    fn decode_key(bytes: &[u8]) -> Result<Option<String>, CodecError> {
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn decode(bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(bytes.to_vec())
    }

    fn encode(v: &Vec<u8>) -> Vec<u8> {
        v.clone()
    }
}
