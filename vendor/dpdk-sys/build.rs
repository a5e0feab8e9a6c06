//! Finds the system DPDK with pkg-config, compiles the C shim against it and generates the
//! bindings with bindgen from DPDK's own headers (nothing copied into this crate).

use std::env;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let dpdk = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(l) => l,
        Err(e) => {
            // `cargo build --workspace` builds this crate even when nothing enables the
            // `dpdk` feature: leave it empty then, and say why, rather than fail a build
            // that needs no DPDK. A build with the feature fails on the missing names.
            println!(
                "cargo:warning=dpdk-sys: DPDK >= 22.11 not found through pkg-config ({}); the bindings are empty. For the `dpdk` feature: apt-get install libdpdk-dev libclang-dev",
                e.to_string().lines().next().unwrap_or("")
            );
            std::fs::write(out.join("bindings.rs"), "").expect("writing empty bindings");
            return;
        }
    };
    // DPDK's pkg-config also passes -include rte_config.h and -march=...: give clang and cc
    // the same flags as a C program built against it.
    let cflags = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();

    let mut cc = cc::Build::new();
    cc.file("shim.c").include(".").opt_level(3).warnings(true);
    for p in &dpdk.include_paths {
        cc.include(p);
    }
    for f in cflags
        .split_whitespace()
        .filter(|f| f.starts_with("-march"))
    {
        cc.flag(f);
    }
    cc.compile("vsw_dpdk_shim");

    let mut b = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_arg("-I.")
        .allowlist_function("rte_eal_init|rte_eal_cleanup|rte_strerror|rte_thread_register")
        .allowlist_function("rte_socket_id|rte_lcore_count")
        .allowlist_function("rte_dev_probe|rte_dev_remove|rte_eal_hotplug_add|rte_eal_hotplug_remove")
        .allowlist_function("rte_eth_dev_.*|rte_eth_rx_queue_setup|rte_eth_tx_queue_setup")
        .allowlist_function("rte_eth_stats_get|rte_eth_stats_reset|rte_eth_link_get_nowait")
        .allowlist_function("rte_eth_promiscuous_enable|rte_eth_macaddr_get|rte_eth_find_next.*")
        .allowlist_function("rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_lookup")
        .allowlist_function("vsw_.*")
        .allowlist_type("rte_mbuf|rte_eth_conf|rte_eth_dev_info|rte_eth_stats|rte_eth_link")
        .allowlist_var("RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_BUF_SIZE|RTE_MAX_ETHPORTS|RTE_ETH_NAME_MAX_LEN|SOCKET_ID_ANY|RTE_ETH_LINK_UP")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for p in &dpdk.include_paths {
        b = b.clang_arg(format!("-I{}", p.display()));
    }
    for f in cflags.split_whitespace() {
        if f.starts_with("-march") || f == "-include" || f.ends_with(".h") {
            b = b.clang_arg(f);
        }
    }
    b.generate()
        .expect("bindgen could not read DPDK's headers")
        .write_to_file(out.join("bindings.rs"))
        .expect("writing the bindings");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=wrapper.h");
}
