//! MD5 of many request bodies at once, four streams per SIMD pass.
//!
//! The ETag of every single PUT and part is the MD5 of its body, and MD5 is
//! one long dependency chain per stream: a core hashes ~0.7 GB/s however
//! the code is written, and on a 2-core box it was 40 % of a 16 MiB PUT's
//! CPU. Four independent streams, though, fill four 32-bit lanes: the same
//! instructions hash four blocks. With AVX-512VL (`avx512`, chosen at run
//! time) that is ~2 GB/s in aggregate on one core; elsewhere four scalar
//! chains interleaved by the compiler give ~1.3 GB/s. This module owns
//! that: a small pool of hashing threads (`lane_threads`), each serving any
//! number of streams, four at a time, round-robin, a bounded slice per turn
//! so no stream starves. A stream alone (or the last one of a pass with
//! data left) is hashed by the scalar function, so a lone upload is no
//! slower than with a plain MD5.
//!
//! Frames are handed over in batches of `BATCH_BYTES` (one wake-up of a
//! lane thread per batch, not per frame). Memory is bounded per stream:
//! one batch being filled, [`Md5Stream::update`] waits while
//! `STREAM_QUEUE_BATCHES` batches are queued, and a turn takes at most
//! `TURN_BYTES` out of the queue to hash.
//!
//! It must never see anything but body bytes, and never block a tokio
//! worker: the lane threads are plain OS threads, the async side only waits
//! on semaphores and oneshot channels.
//!
//! It is its own crate because it is the only code in Cairn's libraries
//! that needs `unsafe`: one call into the AVX-512 functions (`avx512.rs`),
//! made only after the CPU reported the features they use. Every other
//! library crate forbids `unsafe` outright. It knows nothing of S3 or HTTP.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Bytes of frames collected before they go to a lane thread.
const BATCH_BYTES: usize = 128 << 10;
/// Batches a stream may have queued and not yet taken by a lane thread.
const STREAM_QUEUE_BATCHES: usize = 4;
/// Bytes of one stream hashed per turn before the next stream gets a lane.
const TURN_BYTES: usize = 1 << 20;
const LANES: usize = 4;
/// Blocks per lane handed to one four-lane call (4 KiB of blocks on the
/// stack): the state stays in registers between them.
const PASS_BLOCKS: usize = 16;
/// How long a lane thread waits for more streams to fill its lanes before
/// hashing those ready. A stream's queue holds `STREAM_QUEUE_BATCHES` of
/// `BATCH_BYTES` (~3 ms of a 150 MiB/s upload), so writers do not stall.
const FILL_WAIT: Duration = Duration::from_micros(500);

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// Per-step left rotations (RFC 1321).
const ROT: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// Per-step constants: floor(|sin(i + 1)| × 2^32) (RFC 1321).
const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

/// The message word each step reads.
const fn word_index(i: usize) -> usize {
    match i / 16 {
        0 => i,
        1 => (5 * i + 1) % 16,
        2 => (3 * i + 5) % 16,
        _ => (7 * i) % 16,
    }
}

fn words(block: &[u8; 64]) -> [u32; 16] {
    std::array::from_fn(|w| {
        u32::from_le_bytes([
            block[4 * w],
            block[4 * w + 1],
            block[4 * w + 2],
            block[4 * w + 3],
        ])
    })
}

/// Calls `$step!(i, round)` for the 64 steps with literal indices, so every
/// constant, rotation and word index is known at compile time.
macro_rules! all_steps {
    ($step:ident) => {
        $step!(0, 0);
        $step!(1, 0);
        $step!(2, 0);
        $step!(3, 0);
        $step!(4, 0);
        $step!(5, 0);
        $step!(6, 0);
        $step!(7, 0);
        $step!(8, 0);
        $step!(9, 0);
        $step!(10, 0);
        $step!(11, 0);
        $step!(12, 0);
        $step!(13, 0);
        $step!(14, 0);
        $step!(15, 0);
        $step!(16, 1);
        $step!(17, 1);
        $step!(18, 1);
        $step!(19, 1);
        $step!(20, 1);
        $step!(21, 1);
        $step!(22, 1);
        $step!(23, 1);
        $step!(24, 1);
        $step!(25, 1);
        $step!(26, 1);
        $step!(27, 1);
        $step!(28, 1);
        $step!(29, 1);
        $step!(30, 1);
        $step!(31, 1);
        $step!(32, 2);
        $step!(33, 2);
        $step!(34, 2);
        $step!(35, 2);
        $step!(36, 2);
        $step!(37, 2);
        $step!(38, 2);
        $step!(39, 2);
        $step!(40, 2);
        $step!(41, 2);
        $step!(42, 2);
        $step!(43, 2);
        $step!(44, 2);
        $step!(45, 2);
        $step!(46, 2);
        $step!(47, 2);
        $step!(48, 3);
        $step!(49, 3);
        $step!(50, 3);
        $step!(51, 3);
        $step!(52, 3);
        $step!(53, 3);
        $step!(54, 3);
        $step!(55, 3);
        $step!(56, 3);
        $step!(57, 3);
        $step!(58, 3);
        $step!(59, 3);
        $step!(60, 3);
        $step!(61, 3);
        $step!(62, 3);
        $step!(63, 3);
    };
}

#[cfg(target_arch = "x86_64")]
mod avx512;

/// The operations the MD5 steps need, on one word (`u32`) or four lanes
/// ([`Lanes`]); [`md5_steps`] is written once over them.
trait Word: Copy {
    fn splat(x: u32) -> Self;
    fn add(self, o: Self) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    fn not(self) -> Self;
    fn rotl(self, s: u32) -> Self;
}

impl Word for u32 {
    #[inline(always)]
    fn splat(x: u32) -> u32 {
        x
    }
    #[inline(always)]
    fn add(self, o: u32) -> u32 {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn and(self, o: u32) -> u32 {
        self & o
    }
    #[inline(always)]
    fn or(self, o: u32) -> u32 {
        self | o
    }
    #[inline(always)]
    fn xor(self, o: u32) -> u32 {
        self ^ o
    }
    #[inline(always)]
    fn not(self) -> u32 {
        !self
    }
    #[inline(always)]
    fn rotl(self, s: u32) -> u32 {
        self.rotate_left(s)
    }
}

/// The 64 steps of one block: `state` (a, b, c, d) in, the state to add
/// to the chaining value out.
#[inline(always)]
fn md5_steps<W: Word>(state: [W; 4], m: &[W; 16]) -> [W; 4] {
    let [mut a, mut b, mut c, mut d] = state;
    macro_rules! step {
        ($i:literal, $round:literal) => {{
            let f = match $round {
                0 => b.and(c).or(b.not().and(d)),
                1 => d.and(b).or(d.not().and(c)),
                2 => b.xor(c).xor(d),
                _ => c.xor(b.or(d.not())),
            };
            let t = a
                .add(f)
                .add(W::splat(K[$i]))
                .add(m[word_index($i)])
                .rotl(ROT[$i])
                .add(b);
            a = d;
            d = c;
            c = b;
            b = t;
        }};
    }
    all_steps!(step);
    [a, b, c, d]
}

/// One MD5 block into one state.
fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let out = md5_steps(*state, &words(block));
    for (s, v) in state.iter_mut().zip(out) {
        *s = s.wrapping_add(v);
    }
}

/// Four u32 lanes, written so the compiler keeps them in one SSE2 register.
#[derive(Clone, Copy)]
#[repr(align(16))]
struct Lanes([u32; LANES]);

// Each operation spelled out lane by lane: LLVM keeps the four chains
// interleaved (closures or `array::map` here defeat that — measured).
impl Word for Lanes {
    #[inline(always)]
    fn splat(x: u32) -> Lanes {
        Lanes([x; LANES])
    }
    #[inline(always)]
    fn add(self, o: Lanes) -> Lanes {
        let (a, b) = (self.0, o.0);
        Lanes([
            a[0].wrapping_add(b[0]),
            a[1].wrapping_add(b[1]),
            a[2].wrapping_add(b[2]),
            a[3].wrapping_add(b[3]),
        ])
    }
    #[inline(always)]
    fn and(self, o: Lanes) -> Lanes {
        let (a, b) = (self.0, o.0);
        Lanes([a[0] & b[0], a[1] & b[1], a[2] & b[2], a[3] & b[3]])
    }
    #[inline(always)]
    fn or(self, o: Lanes) -> Lanes {
        let (a, b) = (self.0, o.0);
        Lanes([a[0] | b[0], a[1] | b[1], a[2] | b[2], a[3] | b[3]])
    }
    #[inline(always)]
    fn xor(self, o: Lanes) -> Lanes {
        let (a, b) = (self.0, o.0);
        Lanes([a[0] ^ b[0], a[1] ^ b[1], a[2] ^ b[2], a[3] ^ b[3]])
    }
    #[inline(always)]
    fn not(self) -> Lanes {
        let a = self.0;
        Lanes([!a[0], !a[1], !a[2], !a[3]])
    }
    #[inline(always)]
    fn rotl(self, s: u32) -> Lanes {
        let a = self.0;
        Lanes([
            a[0].rotate_left(s),
            a[1].rotate_left(s),
            a[2].rotate_left(s),
            a[3].rotate_left(s),
        ])
    }
}

/// One block into each of four states (the same steps as [`compress`]).
#[inline(never)]
fn compress4(states: &mut [[u32; 4]; LANES], blocks: &[[u8; 64]; LANES]) {
    let mut m = [Lanes::splat(0); 16];
    for (w, mw) in m.iter_mut().enumerate() {
        for (l, block) in blocks.iter().enumerate() {
            mw.0[l] = u32::from_le_bytes([
                block[4 * w],
                block[4 * w + 1],
                block[4 * w + 2],
                block[4 * w + 3],
            ]);
        }
    }
    let mut regs = [Lanes::splat(0); 4];
    for (j, r) in regs.iter_mut().enumerate() {
        for (l, state) in states.iter().enumerate() {
            r.0[l] = state[j];
        }
    }
    let [a, b, c, d] = md5_steps(regs, &m);
    for (l, state) in states.iter_mut().enumerate() {
        state[0] = state[0].wrapping_add(a.0[l]);
        state[1] = state[1].wrapping_add(b.0[l]);
        state[2] = state[2].wrapping_add(c.0[l]);
        state[3] = state[3].wrapping_add(d.0[l]);
    }
}

/// Where one stream is: its chaining state, the bytes of a block not yet
/// complete, and how many bytes it has been given.
#[derive(Clone, Copy)]
struct Md5State {
    h: [u32; 4],
    partial: [u8; 64],
    partial_len: usize,
    len: u64,
}

impl Md5State {
    fn new() -> Self {
        Md5State {
            h: INIT,
            partial: [0; 64],
            partial_len: 0,
            len: 0,
        }
    }

    /// Pads and returns the digest (RFC 1321 §3.1–3.5).
    fn finish(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let mut block = self.partial;
        let n = self.partial_len;
        block[n] = 0x80;
        block[n + 1..].fill(0);
        if n >= 56 {
            compress(&mut self.h, &block);
            block = [0; 64];
        }
        block[56..].copy_from_slice(&bits.to_le_bytes());
        compress(&mut self.h, &block);
        let mut out = [0u8; 16];
        for (o, h) in out.chunks_exact_mut(4).zip(self.h) {
            o.copy_from_slice(&h.to_le_bytes());
        }
        out
    }
}

/// The bytes one stream hands the lane thread for one turn, as 64-byte
/// blocks; what does not fill a block stays in the state's `partial`.
struct Turn {
    state: Md5State,
    frames: VecDeque<Bytes>,
    offset: usize,
}

impl Turn {
    /// Copies complete blocks into `out` (whole runs of a frame at once)
    /// until it is full or the frames run out; the bytes that do not make a
    /// block go into the state's `partial`. Returns how many it copied.
    fn fill_blocks(&mut self, out: &mut [[u8; 64]]) -> usize {
        let mut n = 0;
        while n < out.len() {
            let s = &mut self.state;
            let Some(frame) = self.frames.front() else {
                break;
            };
            let rest = &frame[self.offset..];
            if s.partial_len == 0 && rest.len() >= 64 {
                let whole = (rest.len() / 64).min(out.len() - n);
                let bytes = whole * 64;
                out[n..n + whole]
                    .as_flattened_mut()
                    .copy_from_slice(&rest[..bytes]);
                n += whole;
                self.offset += bytes;
                s.len += bytes as u64;
            } else {
                let take = rest.len().min(64 - s.partial_len);
                s.partial[s.partial_len..s.partial_len + take].copy_from_slice(&rest[..take]);
                s.partial_len += take;
                s.len += take as u64;
                self.offset += take;
                if s.partial_len == 64 {
                    s.partial_len = 0;
                    out[n] = s.partial;
                    n += 1;
                }
            }
            if self.offset == frame.len() {
                self.frames.pop_front();
                self.offset = 0;
            }
        }
        n
    }
}

/// Blocks of four streams for one pass: `[lane][block]`.
type PassBlocks = [[[u8; 64]; PASS_BLOCKS]; LANES];

/// Lane `l` hashes its first `counts[l]` blocks, `blocks[l][..counts[l]]`.
fn compress4_many(states: &mut [[u32; 4]; LANES], blocks: &PassBlocks, counts: [usize; LANES]) {
    #[cfg(target_arch = "x86_64")]
    if avx512::compress4_many(states, blocks, counts) {
        return;
    }
    compress4_many_portable(states, blocks, counts);
}

/// [`compress4_many`] on any CPU.
fn compress4_many_portable(
    states: &mut [[u32; 4]; LANES],
    blocks: &PassBlocks,
    counts: [usize; LANES],
) {
    let rounds = counts.iter().copied().max().unwrap_or(0);
    // `r` picks the r-th block of every lane (`blocks[l][r]`).
    #[allow(clippy::needless_range_loop)]
    for r in 0..rounds {
        let quad: [[u8; 64]; LANES] = std::array::from_fn(|l| blocks[l][r]);
        let mut next = *states;
        compress4(&mut next, &quad);
        for (l, state) in states.iter_mut().enumerate() {
            if r < counts[l] {
                *state = next[l];
            }
        }
    }
}

/// Hashes the turns: up to `PASS_BLOCKS` blocks of each per four-lane
/// call while at least two have blocks left, then the last one alone.
fn hash_turns(turns: &mut [Turn]) {
    debug_assert!(turns.len() <= LANES);
    let mut blocks: PassBlocks = [[[0u8; 64]; PASS_BLOCKS]; LANES];
    loop {
        let mut counts = [0usize; LANES];
        for ((t, lane), count) in turns.iter_mut().zip(&mut blocks).zip(&mut counts) {
            *count = t.fill_blocks(lane);
        }
        let live = counts.iter().filter(|&&c| c > 0).count();
        if live == 0 {
            return;
        }
        if live == 1 {
            // One stream left: the scalar function is faster than a
            // register with three idle lanes.
            for ((t, lane), count) in turns.iter_mut().zip(&blocks).zip(counts) {
                for block in &lane[..count] {
                    compress(&mut t.state.h, block);
                }
            }
            continue;
        }
        let mut states = [INIT; LANES];
        for (state, t) in states.iter_mut().zip(turns.iter()) {
            *state = t.state.h;
        }
        compress4_many(&mut states, &blocks, counts);
        for (t, state) in turns.iter_mut().zip(states) {
            t.state.h = state;
        }
    }
}

struct StreamEntry {
    state: Md5State,
    batches: VecDeque<(Vec<Bytes>, OwnedSemaphorePermit)>,
    /// Being hashed by a lane thread right now (its state is out).
    busy: bool,
    finished: Option<oneshot::Sender<[u8; 16]>>,
}

#[derive(Default)]
struct Shared {
    streams: HashMap<u64, StreamEntry>,
    /// Streams with queued batches or a pending finish, in turn order.
    ready: VecDeque<u64>,
    next_id: u64,
}

/// A pool of MD5 lane threads; see the module comment.
pub struct Md5Lanes {
    shared: Mutex<Shared>,
    work: Condvar,
}

impl Md5Lanes {
    /// The process-wide pool, started on first use: one lane thread per
    /// four cores (at least one), each ~1.6 GB/s with four streams.
    /// `None` if not one lane thread could be started (the caller then
    /// hashes on its own thread).
    pub fn global() -> Option<&'static Arc<Md5Lanes>> {
        static POOL: OnceLock<Option<Arc<Md5Lanes>>> = OnceLock::new();
        POOL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Md5Lanes::start(cores.div_ceil(4))
        })
        .as_ref()
    }

    /// A pool with up to `threads` lane threads; `None` if none started.
    fn start(threads: usize) -> Option<Arc<Md5Lanes>> {
        let pool = Arc::new(Md5Lanes {
            shared: Mutex::new(Shared::default()),
            work: Condvar::new(),
        });
        let mut started = 0;
        for i in 0..threads.max(1) {
            let p = pool.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("cairn-md5-{i}"))
                .spawn(move || p.run());
            match spawned {
                Ok(_) => started += 1,
                // Streams complete on the threads that did start.
                Err(e) => tracing::error!("starting MD5 thread {i}: {e}"),
            }
        }
        (started > 0).then_some(pool)
    }

    pub fn stream(self: &Arc<Self>) -> Md5Stream {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.streams.insert(
            id,
            StreamEntry {
                state: Md5State::new(),
                batches: VecDeque::new(),
                busy: false,
                finished: None,
            },
        );
        Md5Stream {
            pool: self.clone(),
            id,
            room: Arc::new(Semaphore::new(STREAM_QUEUE_BATCHES)),
            batch: Vec::new(),
            batch_bytes: 0,
            done: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a stream ready for a turn (once) and wakes a lane thread.
    fn make_ready(&self, s: &mut Shared, id: u64) {
        if s.streams.get(&id).is_some_and(|e| !e.busy) && !s.ready.contains(&id) {
            s.ready.push_back(id);
            self.work.notify_one();
        }
    }

    fn run(&self) {
        loop {
            // Take up to four ready streams' queued frames (at most
            // TURN_BYTES each) and their states.
            let mut turns = Vec::with_capacity(LANES);
            let mut ids = Vec::with_capacity(LANES);
            {
                let mut s = self.lock();
                while s.ready.is_empty() {
                    s = self.work.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                // A pass costs the same with one lane filled as with four:
                // give the other streams' next batches a moment to arrive.
                let deadline = Instant::now() + FILL_WAIT;
                loop {
                    let idle = s.streams.values().filter(|e| !e.busy).count();
                    let now = Instant::now();
                    if s.ready.len() >= idle.min(LANES) || now >= deadline {
                        break;
                    }
                    s = self
                        .work
                        .wait_timeout(s, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                while ids.len() < LANES {
                    let Some(id) = s.ready.pop_front() else {
                        break;
                    };
                    let Some(e) = s.streams.get_mut(&id) else {
                        continue; // dropped while waiting
                    };
                    let mut frames = VecDeque::new();
                    let mut bytes = 0;
                    while bytes < TURN_BYTES {
                        // The permit goes with the batch taken: the writer
                        // may queue more while this turn hashes.
                        let Some((batch, _permit)) = e.batches.pop_front() else {
                            break;
                        };
                        bytes += batch.iter().map(Bytes::len).sum::<usize>();
                        frames.extend(batch);
                    }
                    e.busy = true;
                    turns.push(Turn {
                        state: e.state,
                        frames,
                        offset: 0,
                    });
                    ids.push(id);
                }
            }
            hash_turns(&mut turns);
            let mut s = self.lock();
            for (id, turn) in ids.into_iter().zip(turns) {
                debug_assert!(turn.frames.is_empty(), "a turn hashes all it took");
                let Some(e) = s.streams.get_mut(&id) else {
                    continue;
                };
                e.state = turn.state;
                e.busy = false;
                if !e.batches.is_empty() {
                    self.make_ready(&mut s, id);
                } else if e.finished.is_some()
                    && let Some(e) = s.streams.remove(&id)
                    && let Some(tx) = e.finished
                {
                    // The receiver may be gone (request dropped): nothing to do.
                    let _ = tx.send(e.state.finish());
                }
            }
        }
    }
}

impl std::fmt::Debug for Md5Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Md5Lanes").finish_non_exhaustive()
    }
}

/// One body's MD5 on the lane pool. Dropping it without `finish` forgets
/// the stream.
pub struct Md5Stream {
    pool: Arc<Md5Lanes>,
    id: u64,
    room: Arc<Semaphore>,
    /// Frames collected for the next hand-over.
    batch: Vec<Bytes>,
    batch_bytes: usize,
    done: bool,
}

impl std::fmt::Debug for Md5Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Md5Stream")
            .field("id", &self.id)
            .field("batch_bytes", &self.batch_bytes)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the MD5 pool stopped")]
pub struct Md5PoolStopped;

impl Md5Stream {
    /// Adds `frame`; every `BATCH_BYTES` the collected frames go to the
    /// pool, waiting while `STREAM_QUEUE_BATCHES` batches are queued.
    pub async fn update(&mut self, frame: Bytes) -> Result<(), Md5PoolStopped> {
        if frame.is_empty() {
            return Ok(());
        }
        self.batch_bytes += frame.len();
        self.batch.push(frame);
        if self.batch_bytes >= BATCH_BYTES {
            self.hand_over().await?;
        }
        Ok(())
    }

    async fn hand_over(&mut self) -> Result<(), Md5PoolStopped> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let permit = self
            .room
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Md5PoolStopped)?;
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let mut s = self.pool.lock();
        let e = s.streams.get_mut(&self.id).ok_or(Md5PoolStopped)?;
        e.batches.push_back((batch, permit));
        self.pool.make_ready(&mut s, self.id);
        Ok(())
    }

    /// The digest of everything given to `update`.
    pub async fn finish(mut self) -> Result<[u8; 16], Md5PoolStopped> {
        self.hand_over().await?;
        let (tx, rx) = oneshot::channel();
        {
            let mut s = self.pool.lock();
            let e = s.streams.get_mut(&self.id).ok_or(Md5PoolStopped)?;
            e.finished = Some(tx);
            if e.batches.is_empty() && !e.busy {
                // Nothing left to hash: finish here.
                if let Some(e) = s.streams.remove(&self.id) {
                    self.done = true;
                    return Ok(e.state.finish());
                }
            }
            self.pool.make_ready(&mut s, self.id);
        }
        self.done = true;
        rx.await.map_err(|_| Md5PoolStopped)
    }
}

impl Drop for Md5Stream {
    fn drop(&mut self) {
        if !self.done {
            let mut s = self.pool.lock();
            s.streams.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};
    use proptest::prelude::*;

    fn reference(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }

    fn scalar(data: &[u8]) -> [u8; 16] {
        let mut t = Turn {
            state: Md5State::new(),
            frames: VecDeque::from([Bytes::copy_from_slice(data)]),
            offset: 0,
        };
        hash_turns(std::slice::from_mut(&mut t));
        t.state.finish()
    }

    #[test]
    fn rfc1321_vectors() {
        for (input, hex) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex::encode(scalar(input.as_bytes())), hex);
        }
    }

    fn pseudo(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 7) as u8)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Up to four streams of different lengths, cut into frames at
        /// arbitrary places, hashed together: each equals plain MD5.
        #[test]
        fn lanes_match_md5(
            lens in proptest::collection::vec(0usize..6000, 1..=4),
            cut in 1usize..200,
        ) {
            let datas: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, n)| pseudo(*n, i as u8)).collect();
            let mut turns: Vec<Turn> = datas.iter().map(|d| Turn {
                state: Md5State::new(),
                frames: d.chunks(cut).map(Bytes::copy_from_slice).collect(),
                offset: 0,
            }).collect();
            hash_turns(&mut turns);
            for (t, d) in turns.into_iter().zip(&datas) {
                prop_assert_eq!(t.state.finish(), reference(d));
            }
        }
    }

    /// Every four-lane path this CPU has agrees with one-stream MD5
    /// compression block for block, including lanes that stop early
    /// (`counts`): the portable lanes everywhere, and the dispatching
    /// `compress4_many` (the AVX-512 lanes where the CPU has them).
    #[test]
    fn simd_and_portable_lanes_agree() {
        #[cfg(target_arch = "x86_64")]
        if !avx512::available() {
            eprintln!("no AVX-512F/VL on this CPU: only the portable lanes are checked");
        }
        let data: Vec<u8> = pseudo(PASS_BLOCKS * LANES * 64, 7);
        let mut blocks: PassBlocks = [[[0u8; 64]; PASS_BLOCKS]; LANES];
        for (i, piece) in data.chunks_exact(64).enumerate() {
            blocks[i % LANES][i / LANES].copy_from_slice(piece);
        }
        for counts in [[16, 16, 16, 16], [16, 0, 3, 1], [0, 5, 16, 0], [1, 1, 1, 1]] {
            let start: [[u32; 4]; LANES] =
                std::array::from_fn(|l| std::array::from_fn(|j| INIT[j] ^ (l * 77 + j) as u32));
            let mut portable = start;
            compress4_many_portable(&mut portable, &blocks, counts);
            let mut simd = start;
            compress4_many(&mut simd, &blocks, counts);
            assert_eq!(simd, portable, "counts {counts:?}");
            for (l, n) in counts.iter().enumerate() {
                let mut one = start[l];
                for block in &blocks[l][..*n] {
                    compress(&mut one, block);
                }
                assert_eq!(portable[l], one, "lane {l} of {counts:?}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_streams_through_the_pool() {
        let pool = Md5Lanes::start(1).unwrap();
        let mut tasks = Vec::new();
        for s in 0..7u8 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let data = pseudo(300_000 + usize::from(s) * 7_777, s);
                let mut st = pool.stream();
                for piece in data.chunks(1000 + usize::from(s) * 333) {
                    st.update(Bytes::copy_from_slice(piece)).await.unwrap();
                }
                (st.finish().await.unwrap(), reference(&data))
            }));
        }
        // A stream dropped half-way does not disturb the others.
        let mut dropped = pool.stream();
        dropped.update(Bytes::from(pseudo(5000, 99))).await.unwrap();
        drop(dropped);
        for t in tasks {
            let (got, want) = t.await.unwrap();
            assert_eq!(got, want);
        }
        let empty = pool.stream();
        assert_eq!(empty.finish().await.unwrap(), reference(b""));
        assert!(
            pool.lock().streams.is_empty(),
            "finished streams are removed"
        );
    }
}
