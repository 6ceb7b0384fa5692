//! Declares the `heist_ntt` configuration: `--cfg heist_ntt="portable"` builds the NTT
//! without its SIMD kernels.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(heist_ntt, values(\"portable\"))");
}
