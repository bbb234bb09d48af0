//! `cargo bench -p cairn-crypto`: AES-256-GCM sealing of a 256 KiB chunk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cairn_crypto::MasterKey;
use divan::counter::BytesCount;

const LEN: usize = 256 << 10;

#[divan::bench]
fn seal_256kib(b: divan::Bencher) {
    let sealer = MasterKey::from_hex(&"11".repeat(32))
        .unwrap()
        .chunk_sealer();
    let plain = vec![0x5au8; LEN];
    b.counter(BytesCount::new(LEN))
        .bench(|| sealer.seal(&[3; 32], divan::black_box(&plain)).unwrap());
}

#[divan::bench]
fn open_256kib(b: divan::Bencher) {
    let sealer = MasterKey::from_hex(&"11".repeat(32))
        .unwrap()
        .chunk_sealer();
    let sealed = sealer.seal(&[3; 32], &vec![0x5au8; LEN]).unwrap();
    b.counter(BytesCount::new(LEN))
        .bench(|| sealer.open(&[3; 32], divan::black_box(&sealed)).unwrap());
}

fn main() {
    divan::main();
}
