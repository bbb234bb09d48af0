//! Placement: which drives hold the k+m shards of a chunk.
//!
//! Rendezvous (highest-random-weight) hashing: every drive gets a score from
//! `(chunk id, drive index)`, and the `k+m` best-scoring drives take shards
//! 0, 1, … in score order. It is deterministic, spreads data and parity
//! shards evenly (so reads, which prefer data shards, are spread too), and
//! adding a drive moves only the shards that now score best there. The
//! cluster issue extends the score to (node, drive) pairs with one shard per
//! node first.

use cairn_dedup::ChunkId;

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: a fixed bijective mixer, not a checksum or MAC.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Drive indexes (into `0..drive_count`) for shards `0..shard_count`.
/// Requires `shard_count <= drive_count` (checked when the engine opens).
pub fn place(chunk: &ChunkId, drive_count: usize, shard_count: usize) -> Vec<usize> {
    debug_assert!(shard_count <= drive_count);
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&chunk.as_bytes()[..8]);
    // Chunk ids are keyed BLAKE3 output: already uniform, so 8 bytes suffice.
    let seed = u64::from_le_bytes(seed);
    let mut scored: Vec<(u64, usize)> = (0..drive_count)
        .map(|d| {
            (
                mix(seed ^ mix((d as u64).wrapping_add(0x9e37_79b9_7f4a_7c15))),
                d,
            )
        })
        .collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    scored.truncate(shard_count);
    scored.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u32) -> ChunkId {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_le_bytes());
        ChunkId::from_bytes(*blake3::hash(&b).as_bytes())
    }

    #[test]
    fn distinct_and_deterministic() {
        for i in 0..100 {
            let p = place(&id(i), 9, 6);
            let mut s = p.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 6);
            assert_eq!(p, place(&id(i), 9, 6));
        }
    }

    #[test]
    fn data_shards_are_spread_over_all_drives() {
        let mut first = [0usize; 6];
        for i in 0..6000 {
            first[place(&id(i), 6, 6)[0]] += 1;
        }
        for c in first {
            assert!((800..1200).contains(&c), "{first:?}");
        }
    }

    #[test]
    fn adding_a_drive_moves_little() {
        let mut moved = 0;
        for i in 0..3000 {
            let a = place(&id(i), 8, 6);
            let b = place(&id(i), 9, 6);
            moved += a.iter().filter(|d| !b.contains(d)).count();
        }
        // Ideal: 6/9 of chunks gain drive 8 ⇒ ~2000 shards of 18000 move.
        assert!(moved < 2600, "moved {moved}");
    }
}
