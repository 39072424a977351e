//! Compiles the kernels' host emulation (kernels/host.cpp) for the plugin's
//! emulated device, and, with feature `cuda`, checks that `make cuda` compiled
//! the kernels with nvcc (the PTX and cubin the plugin embeds).

fn main() {
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-env-changed=MAPCACHE_CUDA_KERNELS");
    cc::Build::new()
        .cpp(true)
        .file("kernels/host.cpp")
        .include("kernels")
        .flag_if_supported("-std=c++14")
        .warnings(true)
        .compile("mapcache_cuda_host");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        let dir = std::env::var("MAPCACHE_CUDA_KERNELS").unwrap_or_else(|_| {
            panic!(
                "feature `cuda` embeds the kernels nvcc compiled: build with `make cuda`, \
                 which sets MAPCACHE_CUDA_KERNELS to their directory"
            )
        });
        for file in ["rehash.ptx", "rehash.cubin"] {
            let path = std::path::Path::new(&dir).join(file);
            assert!(
                path.is_file(),
                "{} is missing: run `make cuda`",
                path.display()
            );
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
