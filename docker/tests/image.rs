//! `docker/Dockerfile` builds, and its image runs the switch and the plugin.
//!
//! Opt-in (`cargo test -p vswitch-docker --test image -- --ignored`): about 25 minutes on
//! the 2-core development machine (debootstrap 2.5 min on the first run, then cached;
//! `docker build` 20-22 min, nearly all of it the release build with LTO inside the build
//! stage, at a load average of 10), too long for every CI run.
//!
//! No registry is reachable, so both base images are made here: a Debian 12 root made by
//! `debootstrap` (Debian's mirror, as apt uses) is imported as the runtime base, and the
//! same root with a C toolchain, this machine's Rust 1.95 toolchain and its crates cache as
//! the build stage's image. The Dockerfile gets them through its `RUST_IMAGE` and
//! `BASE_IMAGE` arguments; nothing else differs from a build against the official images.
//! The image then runs the switch (host network, its socket on a mounted directory),
//! `flowctl show` talks to it through that socket from the host and from the image, and
//! the plugin from the image gives a container a network.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Lab, need, run};

/// Where the Debian root is kept between runs (debootstrap takes minutes).
const ROOTFS_CACHE: &str = "/var/tmp/vswitch-docker-test/bookworm-rootfs.tar";

fn rootfs_tar() -> PathBuf {
    let tar = PathBuf::from(ROOTFS_CACHE);
    if tar.exists() {
        return tar;
    }
    need("debootstrap", "debootstrap");
    let dir = tar.parent().unwrap().join("root");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    run(
        "debootstrap",
        &[
            "--variant=minbase",
            "--include=gcc,libc6-dev,pkg-config,ca-certificates",
            "bookworm",
            dir.to_str().unwrap(),
            "http://deb.debian.org/debian",
        ],
    );
    let partial = tar.with_extension("partial");
    run(
        "tar",
        &[
            "-C",
            dir.to_str().unwrap(),
            "-cf",
            partial.to_str().unwrap(),
            ".",
        ],
    );
    std::fs::rename(&partial, &tar).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("debootstrap and tar: {:?}", t.elapsed());
    tar
}

/// The Rust toolchain this test runs with (its `rustc` is next to `cargo`).
fn toolchain() -> PathBuf {
    let sysroot = run("rustc", &["--print", "sysroot"]);
    PathBuf::from(sysroot.trim())
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"))
}

/// Imports the build stage's image: the Debian root, the toolchain under /usr/local/rust
/// and the crates cache under /usr/local/cargo.
fn builder_image(lab: &Lab, base_tar: &Path, tag: &str) {
    let ctx = lab.dir.join("builder");
    std::fs::create_dir_all(&ctx).unwrap();
    let tc = toolchain();
    // docker import takes one tarball: append the toolchain and the cache to the root's.
    let tar = ctx.join("builder.tar");
    std::fs::copy(base_tar, &tar).unwrap();
    run(
        "tar",
        &[
            "-rf",
            tar.to_str().unwrap(),
            "--exclude=share/doc",
            "--exclude=share/man",
            "--transform",
            "s,^\\.,./usr/local/rust,",
            "-C",
            tc.to_str().unwrap(),
            ".",
        ],
    );
    let registry = cargo_home().join("registry");
    if registry.exists() {
        run(
            "tar",
            &[
                "-rf",
                tar.to_str().unwrap(),
                "--transform",
                "s,^registry,./usr/local/cargo/registry,",
                "-C",
                cargo_home().to_str().unwrap(),
                "registry",
            ],
        );
    }
    lab.docker(&[
        "import",
        "-c",
        "ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "-c",
        "ENV CARGO_HOME=/usr/local/cargo",
        tar.to_str().unwrap(),
        tag,
    ]);
    let _ = std::fs::remove_file(&tar);
}

#[test]
#[ignore = "opt-in: ~25 minutes (a release build inside the image); run with --ignored"]
fn dockerfile_builds_and_runs_the_switch() {
    let t = Instant::now();
    let lab = Lab::dockerd_only();
    let id = std::process::id();
    let (base, builder, image) = (
        format!("vsdtest{id}/debian"),
        format!("vsdtest{id}/rust"),
        format!("vsdtest{id}/vswitch"),
    );
    let tar = rootfs_tar();
    lab.docker(&["import", tar.to_str().unwrap(), &base]);
    builder_image(&lab, &tar, &builder);
    eprintln!("base images ready: {:?}", t.elapsed());

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let b = Instant::now();
    lab.docker(&[
        "build",
        "--network",
        "host",
        "-f",
        root.join("docker/Dockerfile").to_str().unwrap(),
        "--build-arg",
        &format!("RUST_IMAGE={builder}"),
        "--build-arg",
        &format!("BASE_IMAGE={base}"),
        "-t",
        &image,
        root.to_str().unwrap(),
    ]);
    eprintln!("docker build: {:?}", b.elapsed());
    let size = lab.docker(&["image", "inspect", &image, "--format", "{{.Size}}"]);
    eprintln!("image size: {} MB", size.parse::<u64>().unwrap_or(0) >> 20);

    // The switch from the image, its socket on a directory of the host.
    let run_dir = lab.dir.join("run-vswitch");
    let db_dir = lab.dir.join("lib-vswitch");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::create_dir_all(&db_dir).unwrap();
    let name = format!("vsdtest{id}-switch");
    lab.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "NET_RAW",
        "--cap-add",
        "IPC_LOCK",
        "--cap-add",
        "SYS_ADMIN",
        "--device",
        "/dev/net/tun",
        "-v",
        &format!("{}:/run/vswitch", run_dir.display()),
        "-v",
        &format!("{}:/var/lib/vswitch", db_dir.display()),
        &image,
    ]);
    let sock = run_dir.join("vswitchd.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(
            Instant::now() < deadline,
            "the switch in the image never listened: {}",
            String::from_utf8_lossy(&lab.docker_try(&["logs", &name]).stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // flowctl from the host, through the mounted socket.
    let server = format!("unix:{}", sock.display());
    let shown = run(
        common::sibling("flowctl").to_str().unwrap(),
        &["--server", &server, "show", "br0"],
    );
    assert!(shown.contains("bridge br0"), "{shown}");
    // And the image's own flowctl.
    let shown = lab.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/run/vswitch", run_dir.display()),
        "--entrypoint",
        "flowctl",
        &image,
        "show",
        "br0",
    ]);
    assert!(shown.contains("bridge br0"), "{shown}");

    // The plugin from the image: a network and a container on it.
    let driver = format!("vsdimg{id}");
    let state = lab.dir.join("lib-plugin");
    let pname = format!("vsdtest{id}-plugin");
    lab.docker(&[
        "run",
        "-d",
        "--name",
        &pname,
        "--network",
        "host",
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "NET_RAW",
        "--security-opt",
        "systempaths=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "-v",
        &format!("{}:/run/vswitch", run_dir.display()),
        "-v",
        "/run/docker/plugins:/run/docker/plugins",
        "-v",
        &format!("{}:/var/lib/vswitch-docker", state.display()),
        "--entrypoint",
        "vswitch-docker",
        &image,
        "--plugin-socket",
        &format!("/run/docker/plugins/{driver}.sock"),
        "--ifname-prefix",
        "ti",
        "--iptables",
        "false",
    ]);
    let psock = PathBuf::from(format!("/run/docker/plugins/{driver}.sock"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&psock).is_err() {
        assert!(
            Instant::now() < deadline,
            "the plugin in the image never listened: {}",
            String::from_utf8_lossy(&lab.docker_try(&["logs", &pname]).stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.docker(&[
        "network",
        "create",
        "-d",
        &driver,
        "--subnet",
        "172.28.20.0/24",
        "imgnet",
    ]);
    lab.docker(&[
        "run",
        "--rm",
        "--network",
        "imgnet",
        "--entrypoint",
        "ip",
        &image,
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    let shown = run(
        common::sibling("flowctl").to_str().unwrap(),
        &["--server", &server, "show", "br-docker"],
    );
    assert!(
        shown.contains("tig"),
        "the plugin's gateway port is missing: {shown}"
    );
    lab.docker(&["network", "rm", "imgnet"]);
    for c in [&pname, &name] {
        lab.docker(&["rm", "-f", c]);
    }
    let _ = std::fs::remove_file(&psock);
    eprintln!("whole test: {:?}", t.elapsed());
}
