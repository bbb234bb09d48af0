//! Object content that is a pure function of (seed, kind, key, length), so a
//! GET can be checked byte for byte without the tool keeping what it wrote.
//!
//! Content is cut into [`BLOCK_BYTES`] blocks that are generated
//! independently: a PUT body is produced block by block as it is sent and a
//! GET body is compared block by block as it arrives, so memory stays at a
//! few blocks per request whatever the object size. This module never does
//! I/O and never holds more than one object's current block.
//!
//! Kinds:
//! * `random`: unique per object, incompressible, never deduplicated. Each
//!   4 KiB segment is a 4 KiB window of a fixed 1 MiB random pool XORed
//!   with a 64-bit word drawn from the key's seed and the segment's number,
//!   starting at a key-dependent place in the pool: generating and checking
//!   it costs about a memory copy, so the client stays cheap beside a
//!   server that reads at GB/s.
//! * `compressible`: CSV telemetry lines (timestamp, device, four readings
//!   that drift like real sensors), unique per object; zstd packs it ~5–10×.
//! * `dup`: the same random bytes for every object of a run's seed, whatever
//!   the key (objects of different sizes share their common prefix): after
//!   the first copy, a store with dedup keeps only metadata.

use std::sync::OnceLock;

use bytes::Bytes;

/// Bytes per independently generated block.
pub const BLOCK_BYTES: usize = 64 * 1024;
/// Random content: words of the shared pool (1 MiB).
const POOL_WORDS: u64 = 1 << 17;
/// Random content: words XORed with the same word of the key's stream (4 KiB).
const SEGMENT_WORDS: u64 = 512;
const WORDS_PER_BLOCK: u64 = BLOCK_BYTES as u64 / 8;
/// The pool's fixed seed: the pool is the same in every run and every build.
const POOL_SEED: u64 = 0x6361_6972_6e2d_6265; // "cairn-be"

/// The random pool that `random` and `dup` content is drawn from.
fn pool() -> &'static [u64] {
    static POOL: OnceLock<Box<[u64]>> = OnceLock::new();
    POOL.get_or_init(|| (0..POOL_WORDS).map(|i| wy_word(POOL_SEED, i)).collect())
}

/// What object bodies contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DataKind {
    /// Pseudo-random bytes, unique per object: incompressible, not dedupable.
    Random,
    /// CSV-like sensor log text, unique per object: compresses ~5-10x.
    #[value(alias = "sensor", alias = "text")]
    Compressible,
    /// The same random bytes in every object: dedups to one copy.
    #[value(alias = "duplicate")]
    Dup,
}

impl DataKind {
    pub fn name(self) -> &'static str {
        match self {
            DataKind::Random => "random",
            DataKind::Compressible => "compressible",
            DataKind::Dup => "dup",
        }
    }

    fn tag(self) -> u64 {
        match self {
            DataKind::Random => 1,
            DataKind::Compressible => 2,
            DataKind::Dup => 3,
        }
    }
}

/// The splitmix64 finaliser applied to `a` combined with `b`: a cheap,
/// well-mixed 64-bit hash of two words.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(31);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of a key, mixed: the per-key part of an object's seed.
fn key_hash(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h, key.len() as u64)
}

const WY_P0: u64 = 0xa076_1d64_78bd_642f;
const WY_P1: u64 = 0xe703_7ed1_a0b4_28db;

/// Word `index` of the wyrand stream started at `seed`. wyrand's state only
/// ever advances by a constant, so any word can be computed directly.
#[inline]
fn wy_word(seed: u64, index: u64) -> u64 {
    let s = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(WY_P0));
    let t = u128::from(s).wrapping_mul(u128::from(s ^ WY_P1));
    ((t >> 64) as u64) ^ (t as u64)
}

/// Sequential wyrand, for choices (keys, mixes, sensor walks).
#[derive(Clone, Debug)]
pub struct Rng {
    seed: u64,
    counter: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng {
            seed: mix(seed, 0x5eed),
            counter: 0,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let v = wy_word(self.seed, self.counter);
        self.counter = self.counter.wrapping_add(1);
        v
    }

    /// A value in `[0, n)` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The content of one object: `len` bytes determined by kind and seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Content {
    kind: DataKind,
    seed: u64,
    len: u64,
}

impl Content {
    /// The content of `key` in a run seeded with `run_seed`.
    pub fn for_key(kind: DataKind, run_seed: u64, key: &str, len: u64) -> Content {
        let base = mix(run_seed, kind.tag());
        let seed = match kind {
            DataKind::Dup => base,
            DataKind::Random | DataKind::Compressible => mix(base, key_hash(key)),
        };
        Content { kind, seed, len }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn blocks(&self) -> u64 {
        self.len.div_ceil(BLOCK_BYTES as u64)
    }

    fn block_len(&self, index: u64) -> usize {
        let start = index.saturating_mul(BLOCK_BYTES as u64);
        self.len.saturating_sub(start).min(BLOCK_BYTES as u64) as usize
    }

    /// Appends block `index` to `out` (BLOCK_BYTES bytes, fewer for the last
    /// block, none past the end).
    pub fn append_block(&self, index: u64, out: &mut Vec<u8>) {
        let len = self.block_len(index);
        if len == 0 {
            return;
        }
        let start = out.len();
        match self.kind {
            DataKind::Random | DataKind::Dup => {
                out.resize(start + len, 0);
                pooled_random(self.seed, index, &mut out[start..]);
            }
            DataKind::Compressible => {
                sensor_lines(mix(self.seed, index), index, len, out);
                out.truncate(start + len);
            }
        }
    }

    /// Bytes `[first_block * BLOCK_BYTES, ...)` for up to `max_blocks`
    /// blocks, as one buffer: a frame of a PUT body.
    pub fn frame(&self, first_block: u64, max_blocks: u64) -> Bytes {
        let end = self.blocks().min(first_block.saturating_add(max_blocks));
        let blocks = end.saturating_sub(first_block) as usize;
        let mut out = Vec::with_capacity(blocks * BLOCK_BYTES + 256);
        for index in first_block..end {
            self.append_block(index, &mut out);
        }
        Bytes::from(out)
    }
}

/// Segment `number` of the random content with `seed`: the pool window it
/// starts from and the word it is XORed with.
fn random_segment(seed: u64, number: u64) -> (&'static [u64], u64) {
    // Where this key's content starts in the pool, on a segment boundary so
    // that no segment wraps around the pool's end.
    let start = (mix(seed, 0x9001) % (POOL_WORDS / SEGMENT_WORDS)) * SEGMENT_WORDS;
    let at = ((start + number * SEGMENT_WORDS) % POOL_WORDS) as usize;
    (
        &pool()[at..at + SEGMENT_WORDS as usize],
        wy_word(seed, number),
    )
}

const SEGMENT_BYTES: u64 = SEGMENT_WORDS * 8;

/// Fills `dst` (block `index`, at most BLOCK_BYTES) with random content.
fn pooled_random(seed: u64, index: u64, dst: &mut [u8]) {
    let first_segment = index * WORDS_PER_BLOCK / SEGMENT_WORDS;
    for (n, segment) in dst.chunks_mut(SEGMENT_BYTES as usize).enumerate() {
        let (window, key_word) = random_segment(seed, first_segment + n as u64);
        let whole_words = segment.len() / 8;
        let mut chunks = segment.chunks_exact_mut(8);
        for (d, p) in (&mut chunks).zip(window) {
            d.copy_from_slice(&(p ^ key_word).to_le_bytes());
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let last = (window[whole_words] ^ key_word).to_le_bytes();
            let n = tail.len();
            tail.copy_from_slice(&last[..n]);
        }
    }
}

/// The first byte of `data` (random content from byte `offset` on) that is
/// not what it must be. Compares in place, eight bytes at a time, without
/// generating the expected bytes first: this is what a verified GET costs.
fn pooled_mismatch(seed: u64, offset: u64, data: &[u8]) -> Option<usize> {
    let byte_at = |window: &[u64], key_word: u64, i: usize| {
        ((window[i / 8] ^ key_word) >> (8 * (i % 8))) as u8
    };
    let mut pos = 0usize;
    while pos < data.len() {
        let at = offset + pos as u64;
        let (window, key_word) = random_segment(seed, at / SEGMENT_BYTES);
        let first = (at % SEGMENT_BYTES) as usize;
        let n = (data.len() - pos).min(SEGMENT_BYTES as usize - first);
        let piece = &data[pos..pos + n];
        // Unaligned head, whole words, tail.
        let head = ((8 - first % 8) % 8).min(n);
        let (words, tail) = piece[head..].as_chunks::<8>();
        let first_word = (first + head) / 8;
        let mut diff = 0u64;
        for (w, p) in words.iter().zip(&window[first_word..]) {
            diff |= u64::from_le_bytes(*w) ^ p ^ key_word;
        }
        let head_ok = (0..head).all(|i| piece[i] == byte_at(window, key_word, first + i));
        let tail_start = head + words.len() * 8;
        let tail_ok =
            (0..tail.len()).all(|i| tail[i] == byte_at(window, key_word, first + tail_start + i));
        if diff != 0 || !head_ok || !tail_ok {
            // Rare: find the exact byte.
            let bad = (0..n).find(|&i| piece[i] != byte_at(window, key_word, first + i));
            return Some(pos + bad.unwrap_or(0));
        }
        pos += n;
    }
    None
}

/// Checks a body as it streams in against the content it must have and
/// reports the first differing byte. Random content is compared in place;
/// text content one generated block at a time.
#[derive(Debug)]
pub struct Verifier {
    content: Content,
    received: u64,
    block_index: Option<u64>,
    expected: Vec<u8>,
    first_mismatch: Option<u64>,
}

impl Verifier {
    pub fn new(content: Content) -> Self {
        Verifier {
            content,
            received: 0,
            block_index: None,
            expected: Vec::new(),
            first_mismatch: None,
        }
    }

    /// Feeds the next piece of the body, in order.
    pub fn update(&mut self, data: &[u8]) {
        let start = self.received;
        self.received += data.len() as u64;
        if self.first_mismatch.is_some() {
            return;
        }
        // Bytes past the object's end are reported by the length check.
        let inside = self
            .content
            .len()
            .saturating_sub(start)
            .min(data.len() as u64) as usize;
        let data = &data[..inside];
        let found = match self.content.kind {
            DataKind::Random | DataKind::Dup => pooled_mismatch(self.content.seed, start, data),
            DataKind::Compressible => self.generated_mismatch(start, data),
        };
        self.first_mismatch = found.map(|i| start + i as u64);
    }

    fn generated_mismatch(&mut self, start: u64, data: &[u8]) -> Option<usize> {
        let mut pos = 0usize;
        while pos < data.len() {
            let at = start + pos as u64;
            let index = at / BLOCK_BYTES as u64;
            if self.block_index != Some(index) {
                self.expected.clear();
                self.content.append_block(index, &mut self.expected);
                self.block_index = Some(index);
            }
            let offset = (at % BLOCK_BYTES as u64) as usize;
            let n = (data.len() - pos).min(self.expected.len() - offset);
            let want = &self.expected[offset..offset + n];
            let got = &data[pos..pos + n];
            if want != got {
                let bad = want.iter().zip(got).position(|(a, b)| a != b);
                return Some(pos + bad.unwrap_or(0));
            }
            pos += n;
        }
        None
    }

    /// Ok if every byte matched and the length is right; else what differed.
    pub fn finish(&self) -> Result<(), String> {
        if let Some(at) = self.first_mismatch {
            return Err(format!(
                "body differs from the expected content at byte {at}"
            ));
        }
        if self.received != self.content.len() {
            return Err(format!(
                "body has {} bytes, expected {}",
                self.received,
                self.content.len()
            ));
        }
        Ok(())
    }
}

/// Appends `value` in decimal, zero-padded to `width` digits.
fn push_digits(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while value > 0 && i > 0 {
        i -= 1;
        buf[i] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    let digits = (buf.len() - i).max(width).min(buf.len());
    out.extend_from_slice(&buf[buf.len() - digits..]);
}

/// Appends hundredths as a decimal with two places: 2137 → `21.37`.
fn push_centi(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    let v = value.unsigned_abs();
    push_digits(out, v / 100, 1);
    out.push(b'.');
    push_digits(out, v % 100, 2);
}

/// Appends at least `len` bytes of CSV sensor lines such as
/// `2026-06-07T12:34:56.750Z,dev-04242,temp=21.37,hum=45.10,pres=1013.25,bat=3.71`:
/// 64 devices reporting in turn every ~250 ms, each reading a slow random
/// walk, as a gateway's log looks.
fn sensor_lines(seed: u64, block_index: u64, len: usize, out: &mut Vec<u8>) {
    const DEVICES: usize = 64;
    let mut rng = Rng::new(seed);
    let target = out.len() + len;
    let first_device = rng.below(90_000);
    let day = 1 + rng.below(28);
    // Blocks follow each other in time, about a minute apart.
    let mut ms = (block_index * 60_000 + rng.below(1_000)) % 86_400_000;
    let mut state: [[i64; 4]; DEVICES] = [[0; 4]; DEVICES];
    for s in state.iter_mut() {
        *s = [
            1_500 + rng.below(1_000) as i64,   // temperature, centi-°C
            3_000 + rng.below(4_000) as i64,   // humidity, centi-%
            100_000 + rng.below(3_000) as i64, // pressure, centi-hPa
            360 + rng.below(60) as i64,        // battery, centi-V
        ];
    }
    let mut device = 0usize;
    while out.len() < target {
        let r = rng.next_u64();
        let s = &mut state[device];
        s[0] += (r & 0xf) as i64 - 7;
        s[1] += ((r >> 4) & 0xf) as i64 - 7;
        s[2] += ((r >> 8) & 0x7) as i64 - 3;
        if (r >> 12) & 0xff == 0 {
            s[3] -= 1;
        }
        out.extend_from_slice(b"2026-06-");
        push_digits(out, day, 2);
        out.push(b'T');
        push_digits(out, ms / 3_600_000, 2);
        out.push(b':');
        push_digits(out, (ms / 60_000) % 60, 2);
        out.push(b':');
        push_digits(out, (ms / 1_000) % 60, 2);
        out.push(b'.');
        push_digits(out, ms % 1_000, 3);
        out.extend_from_slice(b"Z,dev-");
        push_digits(out, first_device + device as u64, 5);
        out.extend_from_slice(b",temp=");
        push_centi(out, s[0]);
        out.extend_from_slice(b",hum=");
        push_centi(out, s[1]);
        out.extend_from_slice(b",pres=");
        push_centi(out, s[2]);
        out.extend_from_slice(b",bat=");
        push_centi(out, s[3]);
        out.push(b'\n');
        device += 1;
        if device == DEVICES {
            device = 0;
            ms = (ms + 240 + rng.below(20)) % 86_400_000;
        }
    }
}

/// One IoT message: a JSON document of 200 B to ~4 KiB with a device's
/// latest readings, as a fleet of sensors posts them. Determined by
/// `(run_seed, key)`.
pub fn iot_reading(run_seed: u64, key: &str, device: u64, unix_ms: u64) -> Bytes {
    use std::fmt::Write;
    const SENSORS: [(&str, &str, u64, u64); 6] = [
        // name, unit, low and high bound in hundredths
        ("temp", "C", 1_500, 3_500),
        ("hum", "%", 2_000, 9_000),
        ("pres", "hPa", 98_000, 104_000),
        ("co2", "ppm", 40_000, 200_000),
        ("lux", "lx", 0, 5_000_000),
        ("bat", "V", 300, 420),
    ];
    let mut rng = Rng::new(mix(run_seed, key_hash(key)));
    let target = 200 + rng.below(4_096 - 200) as usize;
    let mut s = String::with_capacity(target + 128);
    let _ = write!(
        s,
        "{{\"device\":\"device-{device:05}\",\"ts\":{unix_ms},\"fw\":\"2.{}.{}\",\"site\":\"site-{:03}\",\"readings\":[",
        rng.below(10),
        rng.below(30),
        device % 97
    );
    let mut first = true;
    while s.len() < target {
        let (name, unit, low, high) = SENSORS[rng.below(SENSORS.len() as u64) as usize];
        let v = low + rng.below(high - low);
        let _ = write!(
            s,
            "{}{{\"sensor\":\"{name}\",\"value\":{}.{:02},\"unit\":\"{unit}\",\"ok\":{}}}",
            if first { "" } else { "," },
            v / 100,
            v % 100,
            rng.below(100) != 0
        );
        first = false;
    }
    s.push_str("]}");
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(c: &Content) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..c.blocks() {
            c.append_block(i, &mut out);
        }
        out
    }

    #[test]
    fn content_is_deterministic_and_exactly_sized() {
        for kind in [DataKind::Random, DataKind::Compressible, DataKind::Dup] {
            for len in [
                0,
                1,
                7,
                8,
                9,
                4096,
                BLOCK_BYTES as u64,
                3 * BLOCK_BYTES as u64 + 5,
            ] {
                let c = Content::for_key(kind, 42, "p/obj-00000001", len);
                let a = whole(&c);
                assert_eq!(a.len() as u64, len, "{kind:?} {len}");
                assert_eq!(a, whole(&Content::for_key(kind, 42, "p/obj-00000001", len)));
            }
        }
    }

    #[test]
    fn keys_and_seeds_change_content_except_for_dup() {
        let len = 10_001;
        for kind in [DataKind::Random, DataKind::Compressible, DataKind::Dup] {
            let a = whole(&Content::for_key(kind, 1, "k/a", len));
            let b = whole(&Content::for_key(kind, 1, "k/b", len));
            let other_seed = whole(&Content::for_key(kind, 2, "k/a", len));
            assert_eq!(a == b, kind == DataKind::Dup, "{kind:?}");
            assert_ne!(a, other_seed, "{kind:?}");
        }
    }

    #[test]
    fn random_segments_never_repeat_within_or_across_objects() {
        // A repeated 4 KiB segment would let a dedup or compressing store
        // shrink "random" content.
        let mut seen = std::collections::HashSet::new();
        for key in ["a", "b"] {
            let c = Content::for_key(DataKind::Random, 1, key, 4 << 20);
            for segment in whole(&c).chunks(4096) {
                assert!(seen.insert(segment.to_vec()), "repeated segment in {key}");
            }
        }
    }

    #[test]
    fn frames_concatenate_to_the_content() {
        let c = Content::for_key(DataKind::Compressible, 7, "x", 5 * BLOCK_BYTES as u64 + 17);
        let mut framed = Vec::new();
        let mut next = 0;
        while next < c.blocks() {
            framed.extend_from_slice(&c.frame(next, 2));
            next += 2;
        }
        assert_eq!(framed, whole(&c));
    }

    #[test]
    fn random_is_incompressible_looking_and_text_is_text() {
        let r = whole(&Content::for_key(DataKind::Random, 3, "r", 1 << 16));
        let mut counts = [0u32; 256];
        for b in &r {
            counts[*b as usize] += 1;
        }
        // 65536 bytes over 256 values: 256 expected each; no value far off.
        assert!(
            counts.iter().all(|&n| (150..370).contains(&n)),
            "{counts:?}"
        );

        let t = whole(&Content::for_key(DataKind::Compressible, 3, "t", 1 << 16));
        assert!(t.iter().all(|b| b.is_ascii()));
        assert!(t.starts_with(b"2026-06-"));
        let line = t.split(|&b| b == b'\n').next().unwrap_or_default();
        let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        assert_eq!(fields.len(), 6, "{}", String::from_utf8_lossy(line));
    }

    #[test]
    fn verifier_accepts_the_content_in_any_split() {
        for kind in [DataKind::Random, DataKind::Compressible, DataKind::Dup] {
            let c = Content::for_key(kind, 9, "v", 2 * BLOCK_BYTES as u64 + 100);
            let body = whole(&c);
            for piece in [1, 13, 4096, BLOCK_BYTES - 1, BLOCK_BYTES, 1 << 20] {
                let mut v = Verifier::new(c);
                for p in body.chunks(piece) {
                    v.update(p);
                }
                assert_eq!(v.finish(), Ok(()), "{kind:?} piece {piece}");
            }
        }
    }

    #[test]
    fn verifier_reports_a_flipped_byte_a_short_body_and_a_long_one() {
        for kind in [DataKind::Random, DataKind::Compressible, DataKind::Dup] {
            let c = Content::for_key(kind, 9, "v", 3 * BLOCK_BYTES as u64 + 3);
            let body = whole(&c);
            for flip in [0, 5, 4095, 4096, BLOCK_BYTES + 5, body.len() - 1] {
                for piece in [7, 1000, 1 << 20] {
                    let mut flipped = body.clone();
                    flipped[flip] ^= 0x20;
                    let mut v = Verifier::new(c);
                    for p in flipped.chunks(piece) {
                        v.update(p);
                    }
                    let err = v.finish().unwrap_err();
                    assert!(
                        err.contains(&format!("at byte {flip}")),
                        "{kind:?} {flip} {piece}: {err}"
                    );
                }
            }

            let mut v = Verifier::new(c);
            v.update(&body[..body.len() - 1]);
            assert!(v.finish().unwrap_err().contains("expected"), "{kind:?}");

            let mut v = Verifier::new(c);
            v.update(&body);
            v.update(b"!");
            assert!(
                v.finish().unwrap_err().contains("bytes, expected"),
                "{kind:?}"
            );

            // Another seed's content is not this one's.
            let mut v = Verifier::new(Content::for_key(kind, 10, "v", c.len()));
            v.update(&body);
            assert!(v.finish().is_err(), "{kind:?}");
        }
    }

    #[test]
    fn iot_readings_are_json_of_bounded_size() {
        for i in 0..200 {
            let key = format!("iot/device-{i:05}/1-{i}.json");
            let r = iot_reading(5, &key, i, 1_780_000_000_000);
            assert!((200..4_096 + 200).contains(&r.len()), "{}", r.len());
            let v: serde_json::Value = serde_json::from_slice(&r).unwrap();
            assert_eq!(v["device"], format!("device-{i:05}"));
            assert!(v["readings"].as_array().is_some_and(|a| !a.is_empty()));
            assert_eq!(r, iot_reading(5, &key, i, 1_780_000_000_000));
        }
    }

    #[test]
    fn rng_below_stays_in_range() {
        let mut r = Rng::new(1);
        assert!((0..10_000).all(|_| r.below(7) < 7));
        assert_eq!(r.below(0), 0);
    }
}
