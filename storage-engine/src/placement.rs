//! Placement: which drives hold the k+m shards of a chunk.
//!
//! Rendezvous (highest-random-weight) hashing: every drive gets a score from
//! `(chunk id, drive index)`, and the `k+m` best-scoring drives take shards
//! 0, 1, … in score order. It is deterministic, spreads data and parity
//! shards evenly (so reads, which prefer data shards, are spread too), and
//! adding a drive moves only the shards that now score best there.
//!
//! Across nodes ([`place_across_nodes`], for the cluster of issue 8) the
//! failure domain is the node: shards go one per node first, in rounds —
//! round 0 takes every node's best-scoring drive, ranked by score; round 1
//! every node's second best; and so on until k+m drives are chosen. So k+m
//! shards land on min(k+m, nodes) distinct nodes, and with one node the rule
//! is exactly [`place`] (a drive's key is `node << 16 | drive`).

use cairn_dedup::ChunkId;

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: a fixed bijective mixer, not a checksum or MAC.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A drive's score for a chunk: higher wins.
fn score(seed: u64, drive_key: u64) -> u64 {
    mix(seed ^ mix(drive_key.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

fn seed_of(chunk: &ChunkId) -> u64 {
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&chunk.as_bytes()[..8]);
    // Chunk ids are keyed BLAKE3 output: already uniform, so 8 bytes suffice.
    u64::from_le_bytes(seed)
}

/// A drive of the cluster: which node, and its index on that node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterDrive {
    pub node: u16,
    pub drive: u16,
}

impl ClusterDrive {
    fn key(self) -> u64 {
        (u64::from(self.node) << 16) | u64::from(self.drive)
    }
}

/// Indexes into `drives` for shards `0..shard_count`, one per node first
/// (see the module comment). Requires `shard_count <= drives.len()`.
pub fn place_across_nodes(
    chunk: &ChunkId,
    drives: &[ClusterDrive],
    shard_count: usize,
) -> Vec<usize> {
    debug_assert!(shard_count <= drives.len());
    let seed = seed_of(chunk);
    // Per node, its drives best first.
    let mut by_node: std::collections::BTreeMap<u16, Vec<(u64, usize)>> = Default::default();
    for (i, d) in drives.iter().enumerate() {
        by_node
            .entry(d.node)
            .or_default()
            .push((score(seed, d.key()), i));
    }
    for list in by_node.values_mut() {
        list.sort_unstable_by(|a, b| b.cmp(a));
    }
    let mut out = Vec::with_capacity(shard_count);
    let mut round = 0;
    while out.len() < shard_count {
        let mut picks: Vec<(u64, usize)> = by_node
            .values()
            .filter_map(|list| list.get(round).copied())
            .collect();
        if picks.is_empty() {
            break; // fewer drives than shards: the caller's bug
        }
        picks.sort_unstable_by(|a, b| b.cmp(a));
        out.extend(
            picks
                .into_iter()
                .take(shard_count - out.len())
                .map(|(_, i)| i),
        );
        round += 1;
    }
    out
}

/// Drive indexes (into `0..drive_count`) for shards `0..shard_count`.
/// Requires `shard_count <= drive_count` (checked when the engine opens).
/// The single-node rule, kept as the reference that [`place_across_nodes`]
/// must equal on one node (tested); the engine calls that one.
#[cfg(test)]
pub fn place(chunk: &ChunkId, drive_count: usize, shard_count: usize) -> Vec<usize> {
    debug_assert!(shard_count <= drive_count);
    let seed = seed_of(chunk);
    let mut scored: Vec<(u64, usize)> = (0..drive_count)
        .map(|d| (score(seed, d as u64), d))
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

    fn cluster(nodes: u16, drives_per_node: u16) -> Vec<ClusterDrive> {
        (0..nodes)
            .flat_map(|node| (0..drives_per_node).map(move |drive| ClusterDrive { node, drive }))
            .collect()
    }

    #[test]
    fn one_node_places_like_the_single_node_rule() {
        let drives = cluster(1, 8);
        for i in 0..500 {
            assert_eq!(place_across_nodes(&id(i), &drives, 6), place(&id(i), 8, 6));
        }
    }

    #[test]
    fn shards_go_to_as_many_nodes_as_exist() {
        for (nodes, per_node) in [(3u16, 2u16), (3, 4), (6, 1), (6, 3), (8, 2)] {
            let drives = cluster(nodes, per_node);
            for i in 0..300 {
                let p = place_across_nodes(&id(i), &drives, 6);
                assert_eq!(p, place_across_nodes(&id(i), &drives, 6), "deterministic");
                let mut distinct = p.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), 6, "six distinct drives");
                let mut per = std::collections::HashMap::<u16, usize>::new();
                for &d in &p {
                    *per.entry(drives[d].node).or_default() += 1;
                }
                assert_eq!(
                    per.len(),
                    usize::from(nodes).min(6),
                    "{nodes} nodes: {per:?}"
                );
                // Balanced: no node holds more than its share rounded up, so
                // 4+2 over 3 nodes survives any one node (2 shards) down.
                let most = per.values().max().copied().unwrap_or(0);
                assert!(most <= 6usize.div_ceil(usize::from(nodes)), "{per:?}");
            }
        }
    }

    #[test]
    fn adding_a_node_moves_little() {
        let before = cluster(6, 2);
        let after = cluster(7, 2);
        let mut moved = 0;
        for i in 0..3000 {
            let a: Vec<ClusterDrive> = place_across_nodes(&id(i), &before, 6)
                .into_iter()
                .map(|d| before[d])
                .collect();
            let b: Vec<ClusterDrive> = place_across_nodes(&id(i), &after, 6)
                .into_iter()
                .map(|d| after[d])
                .collect();
            moved += a.iter().filter(|d| !b.contains(d)).count();
        }
        // Ideal: the new node takes 1/7 of all shards = 18000 / 7 ≈ 2571.
        assert!(moved < 3300, "moved {moved}");
        let mut first = [0usize; 7];
        for i in 0..7000 {
            first[usize::from(after[place_across_nodes(&id(i), &after, 6)[0]].node)] += 1;
        }
        for c in first {
            assert!((800..1200).contains(&c), "data shard 0 per node: {first:?}");
        }
    }
}
