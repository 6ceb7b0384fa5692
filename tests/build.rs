//! Declares the `heist_ntt` configuration of `heist-core` (`--cfg heist_ntt="portable"`
//! builds it without its SIMD NTT kernels), which the NTT suite reads to know whether the
//! kernels this CPU supports must run.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(heist_ntt, values(\"portable\"))");
}
