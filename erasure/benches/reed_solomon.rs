//! `cargo bench -p cairn-erasure`: 4+2 Reed–Solomon over a 256 KiB sealed
//! chunk: encode, decode with all data shards, decode with two lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use cairn_erasure::ErasureCoder;
use divan::counter::BytesCount;

const LEN: usize = 256 << 10;

fn input() -> Vec<u8> {
    (0..LEN).map(|i| (i * 31 % 251) as u8).collect()
}

#[divan::bench]
fn encode_4_2(b: divan::Bencher) {
    let coder = ErasureCoder::new(4, 2).unwrap();
    let data = input();
    b.counter(BytesCount::new(LEN))
        .bench(|| coder.encode(divan::black_box(&data)).unwrap());
}

#[divan::bench(args = [0, 2])]
fn decode_4_2_with_lost_data_shards(b: divan::Bencher, lost: usize) {
    let coder = ErasureCoder::new(4, 2).unwrap();
    let encoded = coder.encode(&input()).unwrap();
    b.counter(BytesCount::new(LEN)).bench(|| {
        let shards: Vec<Option<Bytes>> = (0..6)
            .map(|i| (i >= lost).then(|| encoded.shard(i)))
            .collect();
        coder.decode(shards, LEN).unwrap()
    });
}

fn main() {
    divan::main();
}
