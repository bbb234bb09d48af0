//! Four MD5 streams in one AVX-512VL register.
//!
//! Why this needs more than the SSE2 baseline: an MD5 step is a chain of
//! boolean function → add → rotate → add. With AVX-512VL the boolean
//! function is one `vpternlogd` and the rotate one `vprold`, so a step is
//! four dependent instructions for four streams. With SSE2 they are three
//! instructions each, and the scalar four-stream code needs ~9 instructions
//! per stream and step. Measured in a standalone harness on this project's
//! 2-core EPYC (aggregate over four 64 MiB streams): scalar four-lane
//! 1.3 GB/s, SSE2/AVX2 vectors 1.1 GB/s, this 1.9–2.0 GB/s — with a
//! quarter of the instructions, which matters most when the other hardware
//! thread of the core is busy.
//!
//! Intrinsics can only be called from a `#[target_feature]` function, and
//! calling one of those is `unsafe`: [`compress4_many`] is the crate's one
//! `unsafe` block, entered only after the CPU reported both features.

use std::arch::x86_64::{
    __m128i, __mmask8, _mm_add_epi32, _mm_extract_epi32, _mm_mask_add_epi32, _mm_rol_epi32,
    _mm_set_epi32, _mm_set1_epi32, _mm_ternarylogic_epi32,
};

use super::{K, LANES, PassBlocks, ROT, word_index, words};

/// `vpternlogd` immediates of the four rounds' functions of (b, c, d):
/// F = b ? c : d, G = d ? b : c, H = b ^ c ^ d, I = c ^ (b | !d).
const TERNLOG: [i32; 4] = [0xCA, 0xE4, 0x96, 0x39];

/// Whether this CPU runs [`compress4_many_avx512`].
pub(super) fn available() -> bool {
    // std caches the CPUID answer: this is an atomic load after the first call.
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
}

/// Lane `l` hashes its first `counts[l]` blocks, `blocks[l][..counts[l]]`.
/// Returns `false`, touching nothing, when the CPU lacks AVX-512F/VL.
#[allow(unsafe_code)]
pub(super) fn compress4_many(
    states: &mut [[u32; 4]; LANES],
    blocks: &PassBlocks,
    counts: [usize; LANES],
) -> bool {
    if !available() {
        return false;
    }
    // SAFETY: the function only requires AVX-512F and AVX-512VL, which
    // `available` just confirmed this CPU has; it takes no raw pointers.
    unsafe { compress4_many_avx512(states, blocks, counts) };
    true
}

#[target_feature(enable = "avx512f,avx512vl")]
fn compress4_many_avx512(
    states: &mut [[u32; 4]; LANES],
    blocks: &PassBlocks,
    counts: [usize; LANES],
) {
    debug_assert!(counts.iter().all(|&c| c <= blocks[0].len()));
    // Register j holds word j of the four states, lane l in element l.
    let column = |j: usize| {
        _mm_set_epi32(
            states[3][j] as i32,
            states[2][j] as i32,
            states[1][j] as i32,
            states[0][j] as i32,
        )
    };
    let mut h = [column(0), column(1), column(2), column(3)];
    let rounds = counts.iter().copied().max().unwrap_or(0);
    // `r` picks the r-th block of every lane (`blocks[l][r]`).
    #[allow(clippy::needless_range_loop)]
    for r in 0..rounds {
        // Lanes whose blocks run past `counts` keep their state.
        let live: __mmask8 = (0..LANES)
            .filter(|&l| r < counts[l])
            .fold(0, |k, l| k | (1 << l));
        let w: [[u32; 16]; LANES] = std::array::from_fn(|l| words(&blocks[l][r]));
        let m: [__m128i; 16] = std::array::from_fn(|i| {
            _mm_set_epi32(
                w[3][i] as i32,
                w[2][i] as i32,
                w[1][i] as i32,
                w[0][i] as i32,
            )
        });
        let [mut a, mut b, mut c, mut d] = h;
        macro_rules! step {
            ($i:literal, $round:literal) => {{
                // a + K + M does not depend on the previous step; the
                // black box keeps LLVM from re-associating it behind the
                // boolean function, which would lengthen every step's
                // dependency chain by two adds (measured: 1.6 vs 2.0 GB/s).
                let x = std::hint::black_box(_mm_add_epi32(
                    a,
                    _mm_add_epi32(m[word_index($i)], _mm_set1_epi32(K[$i] as i32)),
                ));
                let f = _mm_ternarylogic_epi32::<{ TERNLOG[$round] }>(b, c, d);
                let t = _mm_add_epi32(_mm_rol_epi32::<{ ROT[$i] as i32 }>(_mm_add_epi32(x, f)), b);
                a = d;
                d = c;
                c = b;
                b = t;
            }};
        }
        all_steps!(step);
        for (hj, v) in h.iter_mut().zip([a, b, c, d]) {
            *hj = _mm_mask_add_epi32(*hj, live, *hj, v);
        }
    }
    for (j, v) in h.into_iter().enumerate() {
        states[0][j] = _mm_extract_epi32::<0>(v) as u32;
        states[1][j] = _mm_extract_epi32::<1>(v) as u32;
        states[2][j] = _mm_extract_epi32::<2>(v) as u32;
        states[3][j] = _mm_extract_epi32::<3>(v) as u32;
    }
}
