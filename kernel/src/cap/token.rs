//! Token generation.
//!
//! A token is `E_k(counter)`, where `E` is a 64-bit block cipher (a six-round
//! Feistel network whose round function is SipHash-2-4) and `k` is a key drawn
//! at boot from every entropy source the machine has (RDSEED and RDRAND
//! where CPUID reports them, TSC jitter, the RTC, the loader's data: see
//! [`super::entropy`]). Because `E_k` is a permutation and the counter only
//! grows, tokens never repeat; because `k` is secret, seeing some tokens says
//! nothing useful about the others. The counter carries the CPU number in its
//! top byte, so each core can mint without coordination. The counter
//! values that encrypt to 0 or 1 are skipped: those two values mark empty and
//! deleted slots in capability tables, so they are never tokens.

/// Mints tokens.
pub struct TokenGen {
    key: [u64; 2],
    counter: u64,
}

const ROUNDS: u64 = 6;

impl TokenGen {
    /// A generator keyed from `seed` material (an entropy pool's output).
    pub fn new(seed: &[u64], cpu: u8) -> Self {
        let mut k0 = 0x736f_6d65_7073_6575u64;
        let mut k1 = 0x646f_7261_6e64_6f6du64;
        for (i, &s) in seed.iter().enumerate() {
            k0 = siphash24([k0, k1], s ^ i as u64);
            k1 = siphash24([k1, k0], s.rotate_left(17));
        }
        TokenGen { key: [k0, k1], counter: (cpu as u64) << 56 }
    }

    /// A fresh token: never 0 or 1, never returned before by this generator.
    pub fn fresh(&mut self) -> u64 {
        loop {
            self.counter += 1;
            let t = self.encrypt(self.counter);
            if t > 1 {
                return t;
            }
        }
    }

    fn encrypt(&self, x: u64) -> u64 {
        let (mut l, mut r) = ((x >> 32) as u32, x as u32);
        for round in 0..ROUNDS {
            let f = siphash24(self.key, (round << 32) | r as u64) as u32;
            (l, r) = (r, l ^ f);
        }
        ((l as u64) << 32) | r as u64
    }

    #[cfg(test)]
    fn decrypt(&self, y: u64) -> u64 {
        let (mut l, mut r) = ((y >> 32) as u32, y as u32);
        for round in (0..ROUNDS).rev() {
            let f = siphash24(self.key, (round << 32) | l as u64) as u32;
            (l, r) = (r ^ f, l);
        }
        ((l as u64) << 32) | r as u64
    }
}

/// SipHash-2-4 of one 64-bit word.
pub(crate) fn siphash24(key: [u64; 2], m: u64) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let round = |v: &mut [u64; 4]| {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    };
    let blocks = [m, 8u64 << 56]; // the message word, then the length block
    for b in blocks {
        v[3] ^= b;
        round(&mut v);
        round(&mut v);
        v[0] ^= b;
    }
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::collections::HashSet;

    #[test]
    fn siphash_matches_reference_vector() {
        // SipHash-2-4 reference key 00..0f, message 00..07 (from the paper's
        // test vectors: 64-bit output for an 8-byte input).
        let key = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
        assert_eq!(siphash24(key, 0x0706_0504_0302_0100), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn tokens_are_unique_nonzero_and_invertible() {
        let mut g = TokenGen::new(&[1, 2, 3], 0);
        let mut seen = HashSet::new();
        for i in 1..=100_000u64 {
            let t = g.fresh();
            assert!(t > 1, "0 and 1 are reserved");
            assert!(seen.insert(t), "token repeated");
            assert_eq!(g.decrypt(t), i, "the cipher must be a permutation");
        }
    }

    #[test]
    fn different_seeds_and_cpus_give_unrelated_tokens() {
        let a: std::vec::Vec<u64> = (0..64).map({
            let mut g = TokenGen::new(&[1], 0);
            move |_| g.fresh()
        }).collect();
        let mut b = TokenGen::new(&[2], 0);
        let mut c = TokenGen::new(&[1], 1);
        for x in &a {
            assert_ne!(*x, b.fresh());
            assert_ne!(*x, c.fresh());
        }
        // Successive tokens differ in about half their bits (no visible counter).
        let avg: u32 = a.windows(2).map(|w| (w[0] ^ w[1]).count_ones()).sum::<u32>() / 63;
        assert!((24..=40).contains(&avg), "average bit difference {avg}");
    }
}
