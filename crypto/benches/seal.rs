//! `cargo bench -p cairn-crypto`: AES-256-GCM sealing of a 256 KiB chunk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cairn_crypto::DataRootKey;
use divan::counter::BytesCount;

const LEN: usize = 256 << 10;

#[divan::bench]
fn seal_256kib(b: divan::Bencher) {
    let sealer = DataRootKey::from_hex(&"11".repeat(32))
        .unwrap()
        .chunk_sealer();
    let plain = vec![0x5au8; LEN];
    b.counter(BytesCount::new(LEN))
        .bench(|| sealer.seal(&[3; 32], divan::black_box(&plain)).unwrap());
}

#[divan::bench]
fn open_256kib(b: divan::Bencher) {
    let sealer = DataRootKey::from_hex(&"11".repeat(32))
        .unwrap()
        .chunk_sealer();
    let sealed = sealer.seal(&[3; 32], &vec![0x5au8; LEN]).unwrap();
    b.counter(BytesCount::new(LEN))
        .bench(|| sealer.open(&[3; 32], divan::black_box(&sealed)).unwrap());
}

/// The same AES-256-GCM seal with `ring`, for comparison.
#[divan::bench]
fn seal_256kib_ring(b: divan::Bencher) {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x11; 32]).unwrap());
    let plain = vec![0x5au8; LEN];
    b.counter(BytesCount::new(LEN)).bench(|| {
        let mut buf = plain.clone();
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([7; 12]),
                Aad::from(&[3u8; 32]),
                &mut buf,
            )
            .unwrap();
        (buf, tag)
    });
}

fn main() {
    divan::main();
}
