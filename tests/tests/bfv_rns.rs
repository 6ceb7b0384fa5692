//! The HPS RNS tools of BFV (exact basis extension, `round(t/Q · x)` from `Q` and from
//! `Q ∪ P`) against big-integer arithmetic.

use heist_core::arith::Modulus;
use heist_core::primes::{is_prime, ntt_primes};
use heist_core::rns::{Coeff, RnsPoly};
use heist_he::bfv::rns::{BasisExtender, ScaleRound};
use heist_tests::big::Big;
use heist_tests::seeded_rng;
use proptest::prelude::*;
use rand_core::RngCore;

const N: usize = 16;

fn moduli(ps: &[u64]) -> Vec<Modulus> {
    ps.iter().map(|&p| Modulus::new(p).unwrap()).collect()
}

/// Disjoint prime lists `Q` (`k` primes of `qbits`) and `P` (`l` primes of `pbits`).
fn bases(k: usize, qbits: u32, l: usize, pbits: u32) -> (Vec<u64>, Vec<u64>) {
    let q = ntt_primes(qbits, 2 * N as u64, k, &[]).unwrap();
    let p = ntt_primes(pbits, 2 * N as u64, l, &q).unwrap();
    (q, p)
}

fn random_poly(rng: &mut impl RngCore, ps: &[u64]) -> RnsPoly<Coeff> {
    let data = ps
        .iter()
        .flat_map(|&p| (0..N).map(|_| rng.next_u64() % p).collect::<Vec<_>>())
        .collect();
    RnsPoly::from_vec(N, ps.len(), data)
}

fn residues(x: &RnsPoly<Coeff>, c: usize) -> Vec<u64> {
    (0..x.limbs()).map(|i| x.limb(i)[c]).collect()
}

/// `x mod p` for the centred representative of `x ∈ [0, m)`.
fn centred_mod(x: &Big, m: &Big, p: u64) -> u64 {
    let half = m.divmod(&Big::from_u64(2)).0;
    if *x <= half {
        x.rem_u64(p)
    } else {
        (p - m.sub(x).rem_u64(p)) % p
    }
}

/// `round(t·x/Q) mod o` for `x ∈ [0, R)`.
fn scale_oracle(x: &Big, q: &Big, t: u64, o: u64) -> u64 {
    // floor((2·t·x + Q) / (2Q))
    let num = x.mul_u64(2 * t).add(q);
    let (quot, _) = num.divmod(&q.mul_u64(2));
    quot.rem_u64(o)
}

proptest! {
    #![proptest_config(heist_tests::seeded_config(16))]

    #[test]
    fn extension_gives_the_centred_value(seed in any::<u64>(), k in 1usize..=5, l in 1usize..=4) {
        let mut rng = seeded_rng("bfv-rns-extend", seed);
        let (q, p) = bases(k, 50 + (seed % 12) as u32, l, 61);
        let ext = BasisExtender::new(&moduli(&q), &moduli(&p));
        let x = random_poly(&mut rng, &q);
        let y = ext.extend(&x);
        let qq = Big::product(&q);
        for c in 0..N {
            let xb = Big::from_residues(&residues(&x, c), &q);
            for (j, &pj) in p.iter().enumerate() {
                prop_assert_eq!(y.limb(j)[c], centred_mod(&xb, &qq, pj), "coefficient {}, prime {}", c, j);
            }
        }
    }

    #[test]
    fn decryption_scaling_is_rounded_division(seed in any::<u64>(), k in 1usize..=6, tbits in 2u32..=40) {
        let mut rng = seeded_rng("bfv-rns-decrypt", seed);
        let (q, _) = bases(k, 40 + (seed % 23) as u32, 1, 61);
        let mut t = (rng.next_u64() % (1 << tbits)).max(3) | 1;
        while !is_prime(t) || q.contains(&t) {
            t += 2;
        }
        let tm = Modulus::new(t).unwrap();
        let scaler = ScaleRound::new(&moduli(&q), &[tm], t, false);
        let x = random_poly(&mut rng, &q);
        let out = scaler.scale(&x, None);
        let qq = Big::product(&q);
        for c in 0..N {
            let xb = Big::from_residues(&residues(&x, c), &q);
            prop_assert_eq!(out.limb(0)[c], scale_oracle(&xb, &qq, t, t), "coefficient {}", c);
        }
    }

    #[test]
    fn multiplication_scaling_is_rounded_division(seed in any::<u64>(), k in 1usize..=4, l in 1usize..=5) {
        let mut rng = seeded_rng("bfv-rns-mul", seed);
        let (q, p) = bases(k, 45 + (seed % 17) as u32, l, 61);
        let t = 65537;
        let scaler = ScaleRound::new(&moduli(&q), &moduli(&p), t, true);
        let xq = random_poly(&mut rng, &q);
        let xp = random_poly(&mut rng, &p);
        let out = scaler.scale(&xq, Some(&xp));
        let qq = Big::product(&q);
        let all: Vec<u64> = q.iter().chain(&p).copied().collect();
        for c in 0..N {
            let mut r = residues(&xq, c);
            r.extend(residues(&xp, c));
            let xb = Big::from_residues(&r, &all);
            for (j, &pj) in p.iter().enumerate() {
                prop_assert_eq!(out.limb(j)[c], scale_oracle(&xb, &qq, t, pj), "coefficient {}, prime {}", c, j);
            }
        }
    }
}

#[test]
fn extension_at_the_edges_of_the_centred_range() {
    // x = 0, 1, -1 and ±(Q/2 - Q/2^40), given by their residues: the extension is exact
    // up to `k·2^-66·Q` from ±Q/2 (see the documentation of `heist_he::bfv::rns`).
    let (q, p) = bases(3, 55, 3, 61);
    let ext = BasisExtender::new(&moduli(&q), &moduli(&p));
    let qq = Big::product(&q);
    let half = qq.divmod(&Big::from_u64(2)).0;
    let margin = qq.divmod(&Big::from_u64(1 << 40)).0;
    let values = [
        Big::from_u64(0),
        Big::from_u64(1),
        qq.sub(&Big::from_u64(1)),
        half.sub(&margin),
        qq.sub(&half).add(&margin),
    ];
    let mut data = vec![0u64; 3 * N];
    for (i, &qi) in q.iter().enumerate() {
        for (c, v) in values.iter().enumerate() {
            data[i * N + c] = v.rem_u64(qi);
        }
    }
    let y = ext.extend(&RnsPoly::from_vec(N, 3, data));
    for (j, &pj) in p.iter().enumerate() {
        for (c, v) in values.iter().enumerate() {
            assert_eq!(
                y.limb(j)[c],
                centred_mod(v, &qq, pj),
                "value {c}, prime {j}"
            );
        }
    }
    // The centred value of Q - 1 is -1.
    assert_eq!(y.limb(0)[2], p[0] - 1);
}

#[test]
#[should_panic(expected = "in both bases")]
fn overlapping_bases_are_rejected() {
    let (q, _) = bases(2, 50, 1, 61);
    BasisExtender::new(&moduli(&q), &moduli(&q[..1]));
}
