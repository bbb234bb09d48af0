//! `cargo bench -p cairn-dedup`: FastCDC chunking and keyed BLAKE3 ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use cairn_dedup::{ChunkIdKey, ChunkerConfig, StreamChunker};
use divan::counter::BytesCount;

const LEN: usize = 16 << 20;

fn data() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[divan::bench]
fn chunk_16mib_in_64kib_pieces(b: divan::Bencher) {
    let input = data();
    b.counter(BytesCount::new(LEN)).bench(|| {
        let mut c = StreamChunker::new(ChunkerConfig::default()).unwrap();
        let mut n = 0usize;
        for piece in input.chunks(64 << 10) {
            c.push(Bytes::copy_from_slice(piece));
            while let Some(ch) = c.next_chunk() {
                n += ch.len();
            }
        }
        while let Some(ch) = c.finish() {
            n += ch.len();
        }
        divan::black_box(n)
    });
}

#[divan::bench]
fn keyed_blake3_id_of_256kib(b: divan::Bencher) {
    let key = ChunkIdKey::from_bytes([7; 32]);
    let input = &data()[..256 << 10];
    b.counter(BytesCount::new(input.len()))
        .bench(|| key.chunk_id(divan::black_box(input)));
}

fn main() {
    divan::main();
}
