//! Nobody else gets into the API socket: started under `umask 000` with an unprivileged
//! attacker watching the socket's directory.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged attacker, in C so that it reacts within microseconds: as `nobody`, it
/// watches DIR (inotify) and connects to whatever appears there (a socket, a temporary
/// name, a private directory and what is in it) at once and repeatedly, and to DIR/s in
/// between, until DIR/stop appears; prints `tries hits`.
const ATTACKER: &str = r#"
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
static unsigned long tries, hits;
static void attempt(const char *p) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, p, sizeof a.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    tries++;
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
        hits++;
        fprintf(stderr, "connected to %s\n", p);
    }
    close(s);
}
int main(int argc, char **argv) {
    const char *d = argv[1];
    char target[4096], stop[4096], p[4096], q[8192];
    snprintf(target, sizeof target, "%s/s", d);
    snprintf(stop, sizeof stop, "%s/stop", d);
    int fd = inotify_init1(IN_NONBLOCK);
    if (fd < 0 || inotify_add_watch(fd, d, IN_CREATE | IN_MOVED_TO) < 0) return 2;
    printf("ready\n");
    fflush(stdout);
    char buf[4096] __attribute__((aligned(8)));
    for (unsigned long n = 1;; n++) {
        if (n % 256 == 0 && access(stop, F_OK) == 0) break;
        ssize_t len = read(fd, buf, sizeof buf);
        for (ssize_t i = 0; i < len;) {
            struct inotify_event *e = (struct inotify_event *)(buf + i);
            i += sizeof *e + e->len;
            if (!e->len) continue;
            snprintf(p, sizeof p, "%s/%s", d, e->name);
            for (int k = 0; k < 50; k++) attempt(p);
            DIR *dd = opendir(p);
            if (dd) {
                struct dirent *de;
                while ((de = readdir(dd))) {
                    snprintf(q, sizeof q, "%s/%s", p, de->d_name);
                    attempt(q);
                }
                closedir(dd);
            }
        }
        attempt(target);
    }
    printf("%lu %lu\n", tries, hits);
    return 0;
}
"#;

fn need(cmd: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{cmd} is missing: apt-get install {package}");
}

/// Started under `umask 000`, 60 times, with an unprivileged user connecting to anything in
/// the socket's directory as fast as it can (the API socket and the metrics socket): the
/// user never gets in, the API socket and the store are 0600, the metrics socket 0660.
#[test]
fn the_api_socket_is_never_reachable_by_another_user() {
    need("setpriv", "util-linux");
    need("cc", "gcc");
    let dir = tempfile::tempdir().unwrap();
    // Let others in to the directory (as /run/vswitch is), so only the socket's own
    // permissions stand between them and the API.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tools = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tools.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = tools.path().join("attacker.c");
    let bin = tools.path().join("attacker");
    std::fs::write(&src, ATTACKER).unwrap();
    let cc = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let mut attacker = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the attacker");
    let mut out = std::io::BufReader::new(attacker.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    if line.trim() != "ready" {
        let o = attacker.wait_with_output().unwrap();
        panic!(
            "the attacker did not start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let sock = dir.path().join("s");
    let db = dir.path().join("conf.db");
    let metrics = dir.path().join("m");
    const STARTS: usize = 60;
    for i in 0..STARTS {
        let mut child = Command::new("sh")
            .args(["-c", "umask 000; exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_vswitchd"))
            .arg("--db")
            .arg(&db)
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            .arg("--metrics")
            .arg(format!("unix:{}", metrics.display()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "start {i}: never listened");
            std::thread::sleep(Duration::from_millis(2));
        }
        for f in [&sock, &db] {
            let m = std::fs::symlink_metadata(f).unwrap();
            assert_eq!(m.mode() & 0o777, 0o600, "start {i}: {}", f.display());
        }
        // The metrics socket, bound just after the API's, is 0600 until checked and then
        // the group's too (a scraper's proxy), never others'.
        loop {
            match std::fs::symlink_metadata(&metrics).map(|m| m.mode() & 0o777) {
                Ok(0o660) => break,
                Ok(0o600) | Err(_) => {}
                Ok(mode) => panic!("start {i}: {} is mode {mode:o}", metrics.display()),
            }
            assert!(
                Instant::now() < deadline,
                "start {i}: {} never became 0660",
                metrics.display()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // Alternate clean stops (the socket is removed) and kills (a stale socket stays).
        if i % 2 == 0 {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
        } else {
            child.kill().unwrap();
        }
        child.wait().unwrap();
    }
    std::fs::write(dir.path().join("stop"), b"").unwrap();
    let o = attacker.wait_with_output().unwrap();
    let mut last = String::new();
    std::io::Read::read_to_string(&mut out, &mut last).unwrap();
    let nums: Vec<u64> = last
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "attacker output {last:?}");
    let (tries, hits) = (nums[0], nums[1]);
    eprintln!("{tries} connection attempts as another user in {STARTS} starts, {hits} got in");
    assert!(
        tries > 10_000,
        "the attacker only tried {tries} times: too slow to prove anything"
    );
    assert_eq!(
        hits,
        0,
        "another user connected {hits} times in {STARTS} starts: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
