//! Seeds for the independent random streams of a run.
//!
//! Each stream (initialisation, the order of epoch `e`, ...) is seeded from `(seed, stream, index)`
//! alone, never from the state of another stream, so epoch 7 of a run is the same whether the run
//! went straight through or was stopped and resumed at epoch 5.

/// Stream of the initial parameters.
pub const INIT_STREAM: u64 = 0x1A17_0000;
// The per-epoch pairing and shuffling has its own key and uses the epoch as ChaCha's stream
// number: `crate::data::batches::epoch_rng`.

/// splitmix64's finaliser: a bijective mix with good avalanche, so nearby inputs give unrelated seeds.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of item `index` of stream `stream` of a run seeded with `seed`.
pub fn stream_seed(seed: u64, stream: u64, index: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ index)
}
