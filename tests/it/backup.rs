//! Cairn as a backup target, end to end: FUSE mounts (`rclone mount`,
//! `s3fs`) and backup tools (restic, duplicity, rclone sync/copy) against a
//! real `cairn`, every restore compared with its source byte for byte.
//!
//! * Mounts: a tree copied in with rsync, `rsync -a --checksum` again (no
//!   file data re-sent), unmount and remount with a cold cache, random
//!   ranged reads, rename of a file and of a directory, overwrite in place,
//!   append, truncate, delete, explicit mtimes, unmount and remount again:
//!   names, contents, sizes and mtimes (to the second) as in a local mirror
//!   that went through the same operations.
//! * `ls` of a 10,000-entry directory through both mounts, timed.
//! * restic, duplicity and rclone: full and incremental backups,
//!   check/verify, restores, prune; a backup killed with SIGKILL midway and
//!   run again leaves a repository that checks clean.
//! * Dedup: a second full copy of the same tree by tools that do not dedup
//!   themselves (rclone copy to a new prefix, duplicity full) adds under 5 %
//!   of the tree's size to the drives.
//!
//! Sizes are CI-sized by default. `CAIRN_BACKUP_BIG=1` uses files of more
//! than 1 GiB in the mounts and a 1 GiB tree for backups and dedup (run by
//! hand; the last results are in docs/backup.md). The tests run one at a
//! time: they time listings and the machine has two cores. A missing tool
//! (or a missing `/dev/fuse`) fails its test with a clear message unless
//! `CAIRN_SKIP_CLI_TESTS=1`; `.ci/run` installs them all.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, FileTimes, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;
use sha2::{Digest as _, Sha256};

const GIB: u64 = 1024 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// One test at a time: the listing times and the kill points depend on
/// not sharing the two cores with another test's server and clients.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `CAIRN_BACKUP_BIG=1`: files of more than 1 GiB, a 1 GiB dedup tree.
fn big_mode() -> bool {
    std::env::var("CAIRN_BACKUP_BIG").as_deref() == Ok("1")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `/dev/fuse` must exist for the mount tests.
fn require_fuse() -> bool {
    if Path::new("/dev/fuse").exists() {
        return true;
    }
    if std::env::var("CAIRN_SKIP_CLI_TESTS").as_deref() == Ok("1") {
        eprintln!("NOTICE: /dev/fuse is missing; skipping the mount test (CAIRN_SKIP_CLI_TESTS=1)");
        return false;
    }
    panic!(
        "/dev/fuse is missing: FUSE mounts cannot run on this machine (a container needs \
         --device /dev/fuse --cap-add SYS_ADMIN); set CAIRN_SKIP_CLI_TESTS=1 to skip the CLI tests"
    );
}

/// The full path of `tool` on `PATH`.
fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// duplicity and the boto3 module of the Python that runs it (Debian's
/// duplicity runs /usr/bin/python3, which needs `python3-boto3`, not a
/// pip-installed boto3 of another Python).
fn require_duplicity() -> bool {
    if !require_tool("duplicity", "--version") {
        return false;
    }
    let script = which("duplicity").expect("duplicity on PATH");
    let first = std::fs::read(&script)
        .ok()
        .and_then(|b| {
            b.split(|&c| c == b'\n')
                .next()
                .map(|l| String::from_utf8_lossy(l).into_owned())
        })
        .unwrap_or_default();
    let interpreter: Vec<&str> = first
        .strip_prefix("#!")
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_else(|| vec!["python3"]);
    let ok = Command::new(interpreter[0])
        .args(&interpreter[1..])
        .args(["-c", "import boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if std::env::var("CAIRN_SKIP_CLI_TESTS").as_deref() == Ok("1") {
        eprintln!("NOTICE: duplicity's Python lacks boto3; skipping (CAIRN_SKIP_CLI_TESTS=1)");
        return false;
    }
    panic!(
        "duplicity's interpreter ({}) cannot import boto3 (Debian: apt-get install python3-boto3; \
         .ci/run installs it); set CAIRN_SKIP_CLI_TESTS=1 to skip the CLI tests",
        interpreter.join(" ")
    );
}

/// The user metadata of `bucket/key` (HEAD through the SDK).
fn user_metadata(server: &TestServer, bucket: &str, key: &str) -> BTreeMap<String, String> {
    let c = sdk_client(server);
    let h = block_on(c.head_object().bucket(bucket).key(key).send())
        .unwrap_or_else(|e| panic!("HEAD {bucket}/{key}: {e:?}"));
    h.metadata()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Bytes on the drives: the summed length of every segment file. Segment
/// files are append-only and never preallocated, so this is exactly what
/// the data path wrote (shards with parity and record headers); RocksDB
/// (metadata, its WAL, and objects up to 4 KiB stored inline) lives in
/// `meta/`, not on the drives, and is not counted.
fn drive_bytes(server: &TestServer) -> u64 {
    walk_files(&server.data_dir().join("drives"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Every `cairn_s3_requests_total{…}` sample on `/metrics`: the line and its value.
fn request_counters(server: &TestServer) -> Vec<(String, u64)> {
    server
        .metrics()
        .lines()
        .filter(|line| line.starts_with("cairn_s3_requests_total{"))
        .map(|line| {
            let value: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            (line.to_owned(), value as u64)
        })
        .collect()
}

/// No request may have failed with a 5xx; prints the 4xx answers by
/// operation (HEAD of a missing key is how every mount asks "does it
/// exist?").
fn assert_no_server_errors(server: &TestServer, what: &str) {
    let mut four = Vec::new();
    let mut five = Vec::new();
    for (line, value) in request_counters(server) {
        if value == 0 {
            continue;
        }
        if line.contains("status_class=\"5xx\"") {
            five.push(line);
        } else if line.contains("status_class=\"4xx\"") {
            four.push(line);
        }
    }
    if !four.is_empty() {
        eprintln!("{what}: 4xx answers:\n  {}", four.join("\n  "));
    }
    assert!(
        five.is_empty(),
        "{what}: the server answered with 5xx:\n{}\n--- cairn stderr:\n{}",
        five.join("\n"),
        server.stderr_text()
    );
}

// ---------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------

/// Writes `len` bytes from `rng` to `path`, streaming.
fn write_random(path: &Path, rng: &mut Rng, len: u64) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let mut f = std::io::BufWriter::with_capacity(MIB, File::create(path).unwrap());
    let mut buf = vec![0u8; MIB];
    let mut left = len;
    while left > 0 {
        let n = left.min(MIB as u64) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// Sets a local file's atime and mtime (whole seconds).
fn set_mtime(path: &Path, secs: i64) {
    let t = UNIX_EPOCH + Duration::from_secs(secs as u64);
    File::open(path)
        .unwrap()
        .set_times(FileTimes::new().set_accessed(t).set_modified(t))
        .unwrap_or_else(|e| panic!("set the mtime of {}: {e}", path.display()));
}

/// `touch -d @secs path`: how tools set times (utimensat on the path).
fn touch(path: &Path, secs: i64) {
    let out = Command::new("touch")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "touch -d @{secs} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The path of small file number `i` in a tree made by [`make_tree`].
fn small_name(i: usize) -> String {
    const SPECIAL: [&str; 3] = ["with space & plus+.txt", "ünïcødé файл.txt", "empty"];
    let dir = format!("d{}/s{}", i % 10, (i / 10) % 3);
    match SPECIAL.get(i) {
        Some(name) => format!("{dir}/{name}"),
        None => format!("{dir}/f{i:04}.txt"),
    }
}

/// `small` files of 0–20 KiB over nested directories (names with spaces,
/// `+`, `&` and unicode, one empty file), then `big{i}.bin` of each size
/// in `big`. Every file gets a random whole-second mtime in 2015–2025.
fn make_tree(root: &Path, rng: &mut Rng, small: usize, big: &[u64]) {
    for i in 0..small {
        let p = root.join(small_name(i));
        let len = if p.ends_with("empty") {
            0
        } else {
            rng.below(20 * KIB as u64 + 1)
        };
        write_random(&p, rng, len);
        set_mtime(&p, 1_420_070_400 + rng.below(330_000_000) as i64);
    }
    for (i, &len) in big.iter().enumerate() {
        let p = root.join(format!("big{i}.bin"));
        write_random(&p, rng, len);
        set_mtime(&p, 1_420_070_400 + rng.below(330_000_000) as i64);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct FileInfo {
    size: u64,
    mtime: i64,
    sha256: String,
}

fn sha256_file(path: &Path) -> String {
    let mut f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; MIB];
    loop {
        let n = f
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap()
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every regular file under `root`: size, mtime (seconds), SHA-256.
fn snapshot(root: &Path) -> BTreeMap<String, FileInfo> {
    walk_files(root)
        .into_iter()
        .map(|p| {
            let md = std::fs::metadata(&p).unwrap();
            (
                rel(root, &p),
                FileInfo {
                    size: md.len(),
                    mtime: md.mtime(),
                    sha256: sha256_file(&p),
                },
            )
        })
        .collect()
}

/// Every directory under `root` (relative paths).
fn dirs(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                out.insert(rel(root, &e.path()));
                stack.push(e.path());
            }
        }
    }
    out
}

/// Asserts two snapshots are equal (mtimes too if `mtimes`), listing
/// every difference.
fn assert_same_files(
    got: &BTreeMap<String, FileInfo>,
    want: &BTreeMap<String, FileInfo>,
    mtimes: bool,
    what: &str,
) {
    let mut problems = Vec::new();
    for name in want.keys().filter(|k| !got.contains_key(*k)) {
        problems.push(format!("missing: {name}"));
    }
    for name in got.keys().filter(|k| !want.contains_key(*k)) {
        problems.push(format!("unexpected: {name}"));
    }
    for (name, w) in want {
        let Some(g) = got.get(name) else { continue };
        if g.size != w.size {
            problems.push(format!("{name}: {} bytes, expected {}", g.size, w.size));
        } else if g.sha256 != w.sha256 {
            problems.push(format!("{name}: content differs"));
        }
        if mtimes && g.mtime != w.mtime {
            problems.push(format!("{name}: mtime {}, expected {}", g.mtime, w.mtime));
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: {} of {} files differ:\n  {}",
        problems.len(),
        want.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

fn total_size(t: &BTreeMap<String, FileInfo>) -> u64 {
    t.values().map(|f| f.size).sum()
}

/// `count` reads at random offsets of up to `max_len` bytes, compared
/// between `reference` and `under_test` (positional reads: each a seek).
fn random_reads(reference: &Path, under_test: &Path, rng: &mut Rng, count: usize, max_len: u64) {
    let a = File::open(reference).unwrap();
    let b = File::open(under_test).unwrap();
    let len = a.metadata().unwrap().len();
    let mut want = vec![0u8; max_len as usize];
    let mut got = vec![0u8; max_len as usize];
    for i in 0..count {
        let off = rng.below(len);
        let n = (1 + rng.below(max_len)).min(len - off) as usize;
        a.read_exact_at(&mut want[..n], off).unwrap();
        b.read_exact_at(&mut got[..n], off)
            .unwrap_or_else(|e| panic!("read {n} bytes at {off} of {}: {e}", under_test.display()));
        assert!(
            want[..n] == got[..n],
            "random read {i}: {n} bytes at offset {off} of {} differ",
            under_test.display()
        );
    }
}

// ---------------------------------------------------------------------------
// rclone
// ---------------------------------------------------------------------------

/// rclone with a remote `cairn:` for `server`, defined in the environment
/// (and an empty config file, so the machine's config cannot interfere).
struct Rclone {
    config: PathBuf,
    endpoint: String,
}

impl Rclone {
    fn new(server: &TestServer, work: &Path) -> Rclone {
        let config = work.join("rclone.conf");
        std::fs::write(&config, "").unwrap();
        Rclone {
            config,
            endpoint: server.endpoint(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command("rclone");
        cmd.env("RCLONE_CONFIG", &self.config)
            .env("RCLONE_CONFIG_CAIRN_TYPE", "s3")
            .env("RCLONE_CONFIG_CAIRN_PROVIDER", "Other")
            .env("RCLONE_CONFIG_CAIRN_ACCESS_KEY_ID", ACCESS_KEY)
            .env("RCLONE_CONFIG_CAIRN_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("RCLONE_CONFIG_CAIRN_ENDPOINT", &self.endpoint)
            .env("RCLONE_CONFIG_CAIRN_REGION", REGION)
            .args(args);
        cmd
    }

    /// A one-shot command (not a mount): retries off, they would hide
    /// server errors.
    fn run(&self, server: &TestServer, args: &[&str]) -> String {
        let mut cmd = self.cmd(args);
        cmd.args(["--retries", "1", "--low-level-retries", "1", "-v"]);
        run_checked(&mut cmd, &format!("rclone {}", args.join(" ")), server)
    }
}

// ---------------------------------------------------------------------------
// FUSE mounts
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fs {
    Rclone,
    S3fs,
}

impl Fs {
    fn name(self) -> &'static str {
        match self {
            Fs::Rclone => "rclone-mount",
            Fs::S3fs => "s3fs",
        }
    }
}

fn is_mounted(point: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = point.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| mp.replace("\\040", " ") == want)
}

/// `fusermount3 -u` (or `fusermount -u`), with extra flags.
fn fusermount(flags: &str, point: &Path) -> bool {
    ["fusermount3", "fusermount"].iter().any(|tool| {
        Command::new(tool)
            .arg(flags)
            .arg(point)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

/// A running mount (the client runs in the foreground as a child). Dropping
/// it unmounts (lazily if it must) and kills the client, so a failed test
/// leaves no stale mount behind.
struct Mount {
    fs: Fs,
    point: PathBuf,
    child: Option<Child>,
    mounted: bool,
    log: PathBuf,
    rc_port: u16,
    rclone: Option<Rclone>,
}

impl Mount {
    /// Mounts `bucket` at `point`. `generation` numbers the mounts of one
    /// test: each gets its own (empty, i.e. cold) cache directory and log.
    fn new(
        fs: Fs,
        server: &TestServer,
        bucket: &str,
        point: &Path,
        work: &Path,
        generation: usize,
        extra: &[&str],
    ) -> Mount {
        std::fs::create_dir_all(point).unwrap();
        let point = point.canonicalize().unwrap();
        let log = work.join(format!("{}-{generation}.log", fs.name()));
        let log_file = File::create(&log).unwrap();
        let mut rc_port = 0;
        let mut rclone = None;
        let mut cmd = match fs {
            Fs::Rclone => {
                rc_port = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                let r = Rclone::new(server, work);
                let cache = work.join(format!("rclone-cache-{generation}"));
                let mut cmd = r.cmd(&["mount", &format!("cairn:{bucket}")]);
                cmd.arg(&point)
                    .args(["--vfs-cache-mode", "writes", "--vfs-write-back", "1s"])
                    .arg("--cache-dir")
                    .arg(&cache)
                    .args(["--rc", "--rc-no-auth", "--rc-addr"])
                    .arg(format!("127.0.0.1:{rc_port}"))
                    .arg("-v");
                rclone = Some(r);
                cmd
            }
            Fs::S3fs => {
                let passwd = work.join("s3fs.passwd");
                std::fs::write(&passwd, format!("{ACCESS_KEY}:{SECRET_KEY}\n")).unwrap();
                // s3fs refuses a password file others can read.
                std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o600)).unwrap();
                let mut cmd = clean_command("s3fs");
                cmd.arg(bucket)
                    .arg(&point)
                    .arg("-f")
                    .arg("-o")
                    .arg(format!("passwd_file={}", passwd.display()))
                    .arg("-o")
                    .arg(format!("url={}", server.endpoint()))
                    .args(["-o", "use_path_request_style"])
                    .args(["-o", &format!("endpoint={REGION}")])
                    .args(["-o", "dbglevel=warn"]);
                cmd
            }
        };
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", fs.name()));
        let mut m = Mount {
            fs,
            point,
            child: Some(child),
            mounted: true,
            log,
            rc_port,
            rclone,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !is_mounted(&m.point) {
            if let Some(status) = m.child.as_mut().unwrap().try_wait().unwrap() {
                m.mounted = false;
                panic!(
                    "{} exited before mounting ({status}):\n{}",
                    fs.name(),
                    m.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not mount {} within 60 s:\n{}",
                fs.name(),
                m.point.display(),
                m.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until everything written through the mount is on the server.
    /// s3fs uploads when a file is closed; rclone's VFS cache uploads in the
    /// background (`--vfs-write-back`), and an unmount does not wait for it.
    fn settle(&self, server: &TestServer) {
        if self.fs != Fs::Rclone {
            return;
        }
        let r = self.rclone.as_ref().unwrap();
        let deadline = Instant::now() + Duration::from_secs(if big_mode() { 1800 } else { 120 });
        loop {
            let url = format!("http://127.0.0.1:{}/", self.rc_port);
            let out = run_checked(
                &mut r.cmd(&["rc", "--url", &url, "vfs/stats"]),
                "rclone rc vfs/stats",
                server,
            );
            let v: serde_json::Value = serde_json::from_str(&out[..out.rfind('}').unwrap() + 1])
                .unwrap_or_else(|e| panic!("vfs/stats output {out:?}: {e}"));
            let pending = v["diskCache"]["uploadsInProgress"].as_u64().unwrap_or(1)
                + v["diskCache"]["uploadsQueued"].as_u64().unwrap_or(1);
            if pending == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rclone mount still has {pending} uploads pending:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Unmounts and waits for the client to exit; asserts its log has no
    /// errors.
    fn unmount(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while is_mounted(&self.point) {
            if fusermount("-u", &self.point) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "could not unmount {} (busy?)",
                self.point.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        self.mounted = false;
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match c.try_wait().unwrap() {
                    Some(_) => break,
                    None if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    None => {
                        let _ = c.kill();
                        let _ = c.wait();
                        panic!("{} did not exit after the unmount", self.fs.name());
                    }
                }
            }
        }
        self.assert_clean_log();
    }

    fn assert_clean_log(&self) {
        let log = self.log_text();
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| match self.fs {
                // Not errors: rclone's write-back upload racing a later
                // change of the same file (rsync setting the mtime); rclone
                // logs it and uploads again, and the remount compares the
                // final bytes and times.
                Fs::Rclone => {
                    (l.contains(" ERROR ") || l.contains(" CRITICAL "))
                        && !l.contains("source file is being updated")
                }
                // Not errors: the log level line, and s3fs looking for a V2
                // NextContinuationToken in every truncated V1 listing (it
                // then reads NextMarker; it logs this against AWS too).
                Fs::S3fs => {
                    (l.contains("[ERR]") || l.contains("[CRT]"))
                        && !l.contains("change debug level")
                        && !l.contains("marker_xp->nodesetval is empty")
                }
            })
            .collect();
        assert!(
            errors.is_empty(),
            "{} logged errors ({}):\n{}",
            self.fs.name(),
            self.log.display(),
            errors.join("\n")
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted && is_mounted(&self.point) && !fusermount("-u", &self.point) {
            // Busy (a failed test may hold a file open): detach lazily.
            fusermount("-uz", &self.point);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The outcome of one `rsync --itemize-changes --stats` run.
struct RsyncPass {
    /// Itemized lines (`>f+++++++++ path`, `.d..t...... path`, …).
    items: Vec<String>,
    /// "Number of regular files transferred".
    transferred: u64,
    output: String,
}

impl RsyncPass {
    /// Items that moved file data or created something: `>` sent, `c`
    /// created, `*deleting`.
    fn changes(&self) -> Vec<&String> {
        self.items
            .iter()
            .filter(|l| l.starts_with('>') || l.starts_with('c') || l.starts_with('*'))
            .collect()
    }

    /// Items about regular files (any kind, attributes included).
    fn file_items(&self) -> Vec<&String> {
        self.items
            .iter()
            .filter(|l| l.as_bytes().get(1) == Some(&b'f'))
            .collect()
    }
}

/// `rsync -a [--checksum] --itemize-changes --stats src/ dst/`.
fn rsync(src: &Path, dst: &Path, checksum: bool, server: &TestServer) -> RsyncPass {
    let mut cmd = Command::new("rsync");
    cmd.arg("-a");
    if checksum {
        cmd.arg("--checksum");
    }
    cmd.args(["--itemize-changes", "--stats"])
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dst.display()));
    let what = format!(
        "rsync -a{} into the mount",
        if checksum { " --checksum" } else { "" }
    );
    let output = run_checked(&mut cmd, &what, server);
    let items = output
        .lines()
        .filter(|l| {
            let b = l.as_bytes();
            b.len() > 12
                && ((b"<>ch.".contains(&b[0]) && b"fdLDS".contains(&b[1]) && b[11] == b' ')
                    || l.starts_with("*deleting"))
        })
        .map(str::to_owned)
        .collect();
    let transferred = output
        .lines()
        .find_map(|l| l.strip_prefix("Number of regular files transferred:"))
        .map(|v| v.trim().replace(',', "").parse().unwrap())
        .unwrap_or_else(|| panic!("no transfer count in rsync's output:\n{output}"));
    RsyncPass {
        items,
        transferred,
        output,
    }
}

/// The mount suite: copy in, rsync --checksum, remount, random reads,
/// POSIX operations, remount, compare.
fn mount_suite(fs: Fs) {
    let _serial = serial();
    let tool = match fs {
        Fs::Rclone => ("rclone", "version"),
        Fs::S3fs => ("s3fs", "--version"),
    };
    if !require_tool(tool.0, tool.1)
        || !require_tool("rsync", "--version")
        || !require_tool("fusermount3", "--version")
        || !require_fuse()
    {
        return;
    }
    let name = fs.name();
    let big = big_mode();
    let work = tempfile::Builder::new()
        .prefix("cairn-backup-")
        .tempdir()
        .unwrap();
    let server = TestServer::start();
    let bucket = "mounted";
    block_on(create_bucket(&sdk_client(&server), bucket));
    let mut rng = Rng::new(test_seed(name));

    let src = work.path().join("src");
    let big_sizes = if big {
        vec![GIB + 12_345, GIB + 3 * MIB as u64 + 1]
    } else {
        vec![3 * MIB as u64 + 5, 12 * MIB as u64 + 11]
    };
    make_tree(&src, &mut rng, if big { 2000 } else { 300 }, &big_sizes);
    let want = snapshot(&src);
    eprintln!(
        "{name}: source tree {} files, {}",
        want.len(),
        mib(total_size(&want))
    );

    // The canonical path: the one /proc/self/mountinfo shows.
    let point = work.path().join("mnt");
    std::fs::create_dir_all(&point).unwrap();
    let point = point.canonicalize().unwrap();
    let tree = point.join("tree");
    let mut generation = 0;
    let mut m = Mount::new(fs, &server, bucket, &point, work.path(), generation, &[]);

    // 1. Copy in; rsync --checksum again: no file data re-sent.
    let t = Instant::now();
    let pass = rsync(&src, &tree, false, &server);
    assert_eq!(
        pass.transferred as usize,
        want.len(),
        "first rsync:\n{}",
        pass.output
    );
    eprintln!("{name}: rsync -a copy in: {:?}", t.elapsed());
    let t = Instant::now();
    let pass = rsync(&src, &tree, true, &server);
    eprintln!(
        "{name}: rsync -a --checksum again: {:?}, {} items",
        t.elapsed(),
        pass.items.len()
    );
    assert!(
        pass.transferred == 0 && pass.changes().is_empty(),
        "{name}: the second rsync re-sent data:\n{}",
        pass.output
    );
    if !pass.items.is_empty() {
        // s3fs 1.90 may lose an mtime/mode set right after a file is closed
        // (s3fs-fuse PR #2684); rsync fixes that attribute without sending data.
        eprintln!(
            "{name}: attribute-only fixes on the second pass:\n  {}",
            pass.items.join("\n  ")
        );
    }

    // 2. Unmount, remount with a cold cache: everything as in the source.
    let t = Instant::now();
    m.settle(&server);
    eprintln!("{name}: uploads settled: {:?}", t.elapsed());
    m.unmount();
    generation += 1;
    m = Mount::new(fs, &server, bucket, &point, work.path(), generation, &[]);
    let t = Instant::now();
    assert_same_files(
        &snapshot(&tree),
        &want,
        true,
        &format!("{name}: after remount"),
    );
    eprintln!("{name}: read back and hashed: {:?}", t.elapsed());
    let t = Instant::now();
    let pass = rsync(&src, &tree, true, &server);
    eprintln!(
        "{name}: rsync -a --checksum after remount: {:?}",
        t.elapsed()
    );
    assert!(
        pass.transferred == 0 && pass.changes().is_empty() && pass.file_items().is_empty(),
        "{name}: rsync --checksum after the remount found differences:\n{}",
        pass.output
    );

    // 3. Random ranged reads, cold (fresh mount: nothing cached).
    generation += 1;
    m.unmount();
    m = Mount::new(fs, &server, bucket, &point, work.path(), generation, &[]);
    let gets_before = server.metric_with("cairn_s3_requests_total", &[("operation", "GetObject")]);
    let sent_before = server.metric("cairn_s3_sent_bytes_total");
    let t = Instant::now();
    random_reads(
        &src.join("big1.bin"),
        &tree.join("big1.bin"),
        &mut rng,
        200,
        256 * KIB as u64,
    );
    eprintln!(
        "{name}: 200 random reads of a {} file: {:?}, {} GETs, {} sent by the server",
        mib(want["big1.bin"].size),
        t.elapsed(),
        server.metric_with("cairn_s3_requests_total", &[("operation", "GetObject")]) - gets_before,
        mib((server.metric("cairn_s3_sent_bytes_total") - sent_before) as u64)
    );

    // 4. POSIX operations, on the mount and on a local mirror alike.
    let mirror = work.path().join("mirror");
    run_checked(
        Command::new("cp").arg("-a").arg(&src).arg(&mirror),
        "cp -a src mirror",
        &server,
    );
    let copies_before = server.metric_with(
        "cairn_s3_requests_total",
        &[("operation", "CopyObject"), ("status_class", "2xx")],
    );
    let t0 = now_secs();
    let renamed_file = (small_name(10), "d0/s1/f0010 renamed.txt".to_owned());
    let appended = small_name(32);
    let truncated = small_name(33);
    let deleted = small_name(35);
    let touched = small_name(36);
    let new_file = "new/dir/new file.bin";
    // s3fs 1.90 rewrites a file around a write with UploadPartCopy parts of
    // at most 512 MiB and fails (EntityTooSmall, on AWS as here) when the
    // part before the write is cut to under 5 MiB, e.g. a write at 513 MiB
    // (s3fs-fuse PR #1809, fixed in 1.91; docs/backup.md): write at 100 MiB.
    let overwrite_at = (want["big1.bin"].size / 2).min(100 * MIB as u64 + 7);
    let overwrite = rng.bytes(64 * KIB);
    let append = rng.bytes(10 * KIB + 7);
    let new_data = rng.bytes(100 * KIB + 1);
    let big1_len = want["big1.bin"].size / 4 * 3;
    let big0_len = want["big0.bin"].size / 2 + 3;
    let small_len = want[&truncated].size / 2;
    // rclone 1.60 loses the truncation of a file that is not in its VFS
    // cache (docs/backup.md); it truncates files written in this session.
    let cold_truncate = fs == Fs::S3fs;
    for root in [&tree, &mirror] {
        let p = |r: &str| root.join(r);
        std::fs::rename(p(&renamed_file.0), p(&renamed_file.1)).unwrap();
        std::fs::rename(p("d1"), p("d1 renamed")).unwrap();
        // `close` errors are lost in Rust: fsync first (s3fs uploads on
        // fsync and reports a failed upload there).
        let done = |f: File, what: &str| {
            f.sync_all()
                .unwrap_or_else(|e| panic!("{name}: fsync after {what}: {e}"));
        };
        let f = OpenOptions::new().write(true).open(p("big1.bin")).unwrap();
        f.write_all_at(&overwrite, overwrite_at).unwrap();
        done(f, "overwrite in place");
        let mut f = OpenOptions::new().append(true).open(p(&appended)).unwrap();
        f.write_all(&append).unwrap();
        done(f, "append");
        // Shrink the file just written (its overwritten part stays).
        let f = OpenOptions::new().write(true).open(p("big1.bin")).unwrap();
        f.set_len(big1_len).unwrap();
        done(f, "truncate");
        if cold_truncate {
            let f = OpenOptions::new().write(true).open(p(&truncated)).unwrap();
            f.set_len(small_len).unwrap();
            done(f, "truncate");
            let f = OpenOptions::new().write(true).open(p("big0.bin")).unwrap();
            f.set_len(big0_len).unwrap();
            done(f, "truncate");
        }
        std::fs::remove_file(p(&deleted)).unwrap();
        std::fs::remove_dir_all(p("d4")).unwrap();
        std::fs::create_dir_all(p("new/dir")).unwrap();
        let mut f = File::create(p(new_file)).unwrap();
        f.write_all(&new_data).unwrap();
        done(f, "write of a new file");
        std::fs::create_dir(p("empty dir")).unwrap();
        touch(&p(&touched), 1_234_567_890);
    }
    let t1 = now_secs();
    // Files written without explicit times carry the time of the write: the
    // mirror takes the mount's, after a plausibility check.
    let mut written = vec!["big1.bin", appended.as_str(), new_file];
    if cold_truncate {
        written.extend([truncated.as_str(), "big0.bin"]);
    }
    for f in written {
        let mt = std::fs::metadata(tree.join(f)).unwrap().mtime();
        let truncate_only = f == truncated || f == "big0.bin";
        if fs == Fs::S3fs && truncate_only {
            // s3fs 1.90 keeps the old mtime on ftruncate (docs/backup.md).
        } else {
            assert!(
                (t0 - 2..=t1 + 2).contains(&mt),
                "{name}: {f} has mtime {mt} after being written between {t0} and {t1}"
            );
        }
        set_mtime(&mirror.join(f), mt);
    }
    let ops = Instant::now();
    m.settle(&server);
    eprintln!(
        "{name}: POSIX operations: {}s, uploads settled: {:?}, {} UploadPartCopy",
        t1 - t0,
        ops.elapsed(),
        server.metric_with(
            "cairn_s3_requests_total",
            &[("operation", "UploadPartCopy"), ("status_class", "2xx")]
        )
    );
    assert!(
        server.metric_with(
            "cairn_s3_requests_total",
            &[("operation", "CopyObject"), ("status_class", "2xx")]
        ) > copies_before,
        "{name}: the renames used no CopyObject"
    );

    // 5. Unmount, remount cold: names, contents, sizes, mtimes.
    generation += 1;
    m.unmount();
    m = Mount::new(fs, &server, bucket, &point, work.path(), generation, &[]);
    let want2 = snapshot(&mirror);
    assert_same_files(
        &snapshot(&tree),
        &want2,
        true,
        &format!("{name}: after the POSIX operations and a remount"),
    );
    let mut want_dirs = dirs(&mirror);
    if fs == Fs::Rclone {
        // rclone's S3 backend keeps no directory objects: a directory
        // exists while it holds a file (docs/backup.md).
        want_dirs.retain(|d| want2.keys().any(|f| f.starts_with(&format!("{d}/"))));
        assert!(!want_dirs.contains("empty dir"));
    } else {
        assert!(
            list_sizes(&server, bucket, "tree/empty dir/").contains_key("tree/empty dir/"),
            "s3fs: no directory marker object for the empty directory"
        );
    }
    assert_eq!(dirs(&tree), want_dirs, "{name}: directories after remount");
    // The explicit mtime is in the object's metadata, where other clients
    // (rclone, s3fs, restic's S3 readers…) look for it.
    let meta = user_metadata(&server, bucket, &format!("tree/{touched}"));
    let mtime: f64 = meta
        .get("mtime")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name}: no x-amz-meta-mtime on {touched}: {meta:?}"));
    assert_eq!(mtime as i64, 1_234_567_890, "{name}: x-amz-meta-mtime");

    // 6. ls -lR of the whole tree, timed.
    let t = Instant::now();
    let out = run_checked(Command::new("ls").arg("-lR").arg(&tree), "ls -lR", &server);
    let entries = out
        .lines()
        .filter(|l| l.starts_with('-') || l.starts_with('d'))
        .count();
    eprintln!(
        "{name}: ls -lR of {entries} entries (warm): {:?}",
        t.elapsed()
    );
    assert_eq!(entries, want2.len() + want_dirs.len(), "ls -lR entries");

    m.unmount();
    assert_no_server_errors(&server, name);
}

#[test]
fn rclone_mount_copy_rsync_posix_operations_and_remount() {
    mount_suite(Fs::Rclone);
}

#[test]
fn s3fs_copy_rsync_posix_operations_and_remount() {
    mount_suite(Fs::S3fs);
}

/// `ls` of 10,000 entries through both mounts, cold (fresh mount) and warm.
/// `n` objects `many/f00000…` in `bucket`, made through S3 (faster than
/// through a mount) with the mtime metadata both mounts read: object `i`
/// holds the decimal digits of `i` and has mtime 1,500,000,000 + 60·i.
fn put_many_through_s3(server: &TestServer, bucket: &'static str, n: usize) {
    let t = Instant::now();
    let client = sdk_client(server);
    run(async {
        create_bucket(&client, bucket).await;
        let mut tasks = Vec::new();
        for worker in 0..16 {
            let c = client.clone();
            tasks.push(tokio::spawn(async move {
                for i in (worker..n).step_by(16) {
                    c.put_object()
                        .bucket(bucket)
                        .key(format!("many/f{i:05}"))
                        .metadata("mtime", (1_500_000_000 + i * 60).to_string())
                        .body(aws_sdk_s3::primitives::ByteStream::from(
                            i.to_string().into_bytes(),
                        ))
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("PUT many/f{i:05}: {e:?}"));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    eprintln!("{n} objects made through S3: {:?}", t.elapsed());
}

/// (size, mtime) of every entry in `ls -l --time-style=+%s` output.
fn parse_ls_l(out: &str) -> BTreeMap<String, (u64, i64)> {
    out.lines()
        .filter(|l| l.starts_with('-'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[6].to_owned(),
                (f[4].parse().unwrap(), f[5].parse().unwrap()),
            )
        })
        .collect()
}

/// Requests the server answered so far, by operation.
fn requests_by_operation(server: &TestServer) -> BTreeMap<String, u64> {
    let mut by_op = BTreeMap::new();
    for (line, value) in request_counters(server) {
        let op = line
            .split("operation=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?")
            .to_owned();
        *by_op.entry(op).or_insert(0) += value;
    }
    by_op
}

/// One `ls`: its output, its wall time (reported, not asserted: timing
/// belongs to benchmarks) and the requests it made of the server.
fn listed(
    server: &TestServer,
    args: &[&str],
    dir: &Path,
) -> (String, Duration, BTreeMap<String, u64>) {
    let before = requests_by_operation(server);
    let t = Instant::now();
    let out = run_checked(
        Command::new("ls").args(args).arg(dir),
        &format!("ls {}", args.join(" ")),
        server,
    );
    let took = t.elapsed();
    let mut made = requests_by_operation(server);
    for (op, n) in made.iter_mut() {
        *n -= before.get(op).copied().unwrap_or(0);
    }
    made.retain(|_, n| *n > 0);
    (out, took, made)
}

/// The requests one mount's listings of the big directory made.
struct ListingCost {
    label: String,
    fs: Fs,
    default_flags: bool,
    /// A cold `ls` (names only).
    names: BTreeMap<String, u64>,
    /// A cold `ls -lR`.
    cold: BTreeMap<String, u64>,
    /// The same `ls -lR` again.
    warm: BTreeMap<String, u64>,
}

/// Through a fresh mount of `fs`, a cold `ls` lists all `want`'s names;
/// through another, a cold `ls -lR` lists their sizes and mtimes (server
/// time with `--use-server-modtime`: only sizes compared) and a warm one
/// lists them all again. Returns the requests each made.
#[allow(clippy::too_many_arguments)]
fn list_through_mount(
    fs: Fs,
    extra: &[&str],
    server: &TestServer,
    bucket: &str,
    work: &Path,
    generation: &mut usize,
    want: &BTreeMap<String, (u64, i64)>,
) -> ListingCost {
    let n = want.len();
    let label = format!("{} {}", fs.name(), extra.join(" "));
    let label = label.trim();
    let point = work.join(format!("mnt-{generation}"));
    let mut m = Mount::new(fs, server, bucket, &point, work, *generation, extra);
    *generation += 1;
    let (out, names, names_made) = listed(server, &["-1"], &m.point.join("many"));
    assert_eq!(out.lines().count(), n, "{label}: ls");
    m.unmount();
    let mut m = Mount::new(fs, server, bucket, &point, work, *generation, extra);
    *generation += 1;
    let (out, cold, cold_made) = listed(server, &["-lR", "--time-style=+%s"], &m.point);
    let got = parse_ls_l(&out);
    if extra.is_empty() {
        assert_eq!(&got, want, "{label}: ls -lR sizes and mtimes");
    } else {
        // Server time: the mtime metadata is not read.
        let sizes =
            |m: &BTreeMap<String, (u64, i64)>| -> Vec<u64> { m.values().map(|v| v.0).collect() };
        assert_eq!(sizes(&got), sizes(want), "{label}: ls -lR sizes");
    }
    let (out, warm, warm_made) = listed(server, &["-lR", "--time-style=+%s"], &m.point);
    assert_eq!(parse_ls_l(&out).len(), n, "{label}: warm ls -lR");
    m.unmount();
    eprintln!(
        "{label}: {n} entries: ls (cold) {names:?} {names_made:?}; \
         ls -lR cold {cold:?} {cold_made:?}; warm {warm:?} {warm_made:?}"
    );
    ListingCost {
        label: label.to_owned(),
        fs,
        default_flags: extra.is_empty(),
        names: names_made,
        cold: cold_made,
        warm: warm_made,
    }
}

/// What a listing costs the server is the number of requests it makes: a
/// listing page holds 1,000 keys, so 10,000 entries take ~10 pages. Two
/// clients add one HEAD per entry by their design (docs/backup.md): s3fs on
/// its first readdir (in parallel, to fill its stat cache) and rclone
/// mount's `ls -l` (one at a time, for x-amz-meta-mtime). Nothing else may
/// scale with the directory, and a warm listing is served from the
/// client's cache. Wall times are printed for the record; speed is
/// measured in bench/, not asserted here.
fn assert_listing_costs(cost: &ListingCost, n: usize) {
    let slack = 100;
    let heads_per_entry = |made: &BTreeMap<String, u64>, expected: bool| {
        let heads = made.get("HeadObject").copied().unwrap_or(0);
        let others: u64 = made.values().sum::<u64>() - heads;
        let heads_ok = if expected {
            heads <= n as u64 + slack
        } else {
            heads <= slack
        };
        heads_ok && others <= slack
    };
    let ListingCost {
        label,
        fs,
        default_flags,
        names,
        cold,
        warm,
    } = cost;
    assert!(
        heads_per_entry(names, *fs == Fs::S3fs),
        "{label}: a cold `ls` of {n} entries made {names:?}"
    );
    assert!(
        heads_per_entry(cold, *fs == Fs::S3fs || *default_flags),
        "{label}: a cold `ls -lR` of {n} entries made {cold:?}"
    );
    assert!(
        heads_per_entry(warm, false),
        "{label}: a warm `ls -lR` of {n} entries made {warm:?}"
    );
}

#[test]
fn mounts_list_a_10000_entry_directory() {
    let _serial = serial();
    if !require_tool("rclone", "version")
        || !require_tool("s3fs", "--version")
        || !require_tool("fusermount3", "--version")
        || !require_fuse()
    {
        return;
    }
    const N: usize = 10_000;
    let work = tempfile::Builder::new()
        .prefix("cairn-backup-")
        .tempdir()
        .unwrap();
    let server = TestServer::start();
    let bucket = "listing";
    put_many_through_s3(&server, bucket, N);
    let want: BTreeMap<String, (u64, i64)> = (0..N)
        .map(|i| {
            (
                format!("f{i:05}"),
                (i.to_string().len() as u64, (1_500_000_000 + i * 60) as i64),
            )
        })
        .collect();
    let mut generation = 0;
    let mut costs = Vec::new();
    for (fs, extra) in [
        (Fs::S3fs, &[][..]),
        (Fs::Rclone, &[][..]),
        (Fs::Rclone, &["--use-server-modtime"][..]),
    ] {
        costs.push(list_through_mount(
            fs,
            extra,
            &server,
            bucket,
            work.path(),
            &mut generation,
            &want,
        ));
    }
    assert_no_server_errors(&server, "listing");
    for cost in &costs {
        assert_listing_costs(cost, N);
    }
}

// ---------------------------------------------------------------------------
// Backup tools
// ---------------------------------------------------------------------------

/// Polls `bucket/prefix` until more than `at_least` keys exist, then kills
/// `child` with SIGKILL. Panics if the child ended on its own first.
fn kill_when_uploaded(
    child: &mut Child,
    server: &TestServer,
    bucket: &str,
    prefix: &str,
    at_least: usize,
    what: &str,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} ended ({status}) before it could be interrupted: make the tree bigger");
        }
        let n = list_sizes(server, bucket, prefix).len();
        if n > at_least {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: nothing uploaded in 300 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tree for the backup tools: small files and a few random big ones.
fn backup_tree(root: &Path, rng: &mut Rng) {
    if big_mode() {
        make_tree(
            root,
            rng,
            2000,
            &[512 * MIB as u64, 256 * MIB as u64 + 1, 256 * MIB as u64 + 2],
        );
    } else {
        make_tree(root, rng, 200, &[4 * MIB as u64 + 1, 2 * MIB as u64 + 3]);
    }
}

/// The summary line of `restic backup --json`.
fn restic_summary(out: &str) -> serde_json::Value {
    out.lines()
        .filter(|l| l.contains("\"message_type\":\"summary\""))
        .filter_map(|l| serde_json::from_str(l).ok())
        .next_back()
        .unwrap_or_else(|| panic!("no summary in restic's output:\n{out}"))
}

/// restic with a repository in bucket `restic` of `server`, its cache in
/// `cache`.
struct Restic<'a> {
    server: &'a TestServer,
    cache: PathBuf,
}

impl Restic<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command("restic");
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env(
                "RESTIC_REPOSITORY",
                format!("s3:{}/restic/repo", self.server.endpoint()),
            )
            .env("RESTIC_PASSWORD", "correct horse battery staple")
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        run_checked(
            &mut self.cmd(args),
            &format!("restic {}", args.join(" ")),
            self.server,
        )
    }

    /// The summary of `restic backup --json --host cairn <src>`.
    fn backup(&self, src: &Path) -> serde_json::Value {
        restic_summary(&self.run(&["backup", "--json", "--host", "cairn", src.to_str().unwrap()]))
    }

    fn snapshot_ids(&self) -> Vec<String> {
        let out = self.run(&["snapshots", "--json"]);
        let json = &out[out.find('[').unwrap()..=out.rfind(']').unwrap()];
        let v: serde_json::Value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("restic snapshots --json: {e}:\n{out}"));
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["short_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Restores snapshot `id` of `src` into `target`; the restored files.
    fn restore(&self, id: &str, src: &Path, target: &Path) -> BTreeMap<String, FileInfo> {
        self.run(&["restore", id, "--target", target.to_str().unwrap()]);
        // restic restores under the absolute path that was backed up.
        snapshot(&target.join(src.strip_prefix("/").unwrap()))
    }

    /// `restic check --read-data` finds no error.
    fn check_read_data(&self, what: &str) {
        let out = self.run(&["check", "--read-data"]);
        assert!(out.contains("no errors were found"), "{what}:\n{out}");
    }

    /// A backup of `src` slowed to 4 KiB/s with 4 MiB packs, killed by
    /// SIGKILL once a new pack is stored.
    fn backup_killed_after_a_pack(&self, src: &Path) {
        let packs = list_sizes(self.server, "restic", "repo/data/").len();
        let mut child = self
            .cmd(&[
                "backup",
                "--host",
                "cairn",
                "--pack-size",
                "4",
                "--limit-upload",
                "4096",
                src.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let now = kill_when_uploaded(
            &mut child,
            self.server,
            "restic",
            "repo/data/",
            packs,
            "restic backup",
        );
        eprintln!(
            "restic: killed the second backup after {} new packs",
            now - packs
        );
    }
}

#[test]
fn restic_incremental_backups_a_killed_backup_and_check_read_data() {
    let _serial = serial();
    if !require_tool("restic", "version") {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("cairn-backup-")
        .tempdir()
        .unwrap();
    let server = TestServer::start();
    let mut rng = Rng::new(test_seed("backup-restic"));
    let src = work.path().join("src");
    backup_tree(&src, &mut rng);
    let v1 = snapshot(&src);
    let restic = Restic {
        server: &server,
        cache: work.path().join("restic-cache"),
    };

    restic.run(&["init"]);
    let t = Instant::now();
    let s = restic.backup(&src);
    assert_eq!(s["files_new"].as_u64(), Some(v1.len() as u64), "{s}");
    eprintln!(
        "restic: first backup of {}: {:?}",
        mib(total_size(&v1)),
        t.elapsed()
    );

    // Second backup: new data, interrupted by SIGKILL once a pack is stored.
    let added = if big_mode() {
        256 * MIB as u64
    } else {
        16 * MIB as u64
    };
    write_random(&src.join("added/one.bin"), &mut rng, added / 2);
    write_random(&src.join("added/two.bin"), &mut rng, added / 2 + 1);
    write_random(&src.join(small_name(50)), &mut rng, 777);
    let v2 = snapshot(&src);
    restic.backup_killed_after_a_pack(&src);
    assert_eq!(
        restic.snapshot_ids().len(),
        1,
        "the killed backup saved a snapshot"
    );
    // The killed client's lock stays until `unlock` (restic sees its PID is gone).
    let out = restic.run(&["unlock"]);
    assert!(
        out.contains("successfully removed locks"),
        "restic unlock:\n{out}"
    );
    let s = restic.backup(&src);
    assert_eq!(
        s["files_new"].as_u64(),
        Some(2),
        "rerun after the kill: {s}"
    );
    assert_eq!(
        s["files_changed"].as_u64(),
        Some(1),
        "rerun after the kill: {s}"
    );
    restic.check_read_data("restic check --read-data");

    // Third backup, incremental: one file changed in place (same size).
    let changed = small_name(60);
    let len = v2[&changed].size;
    write_random(&src.join(&changed), &mut rng, len);
    std::fs::remove_file(src.join(small_name(61))).unwrap();
    let v3 = snapshot(&src);
    let s = restic.backup(&src);
    assert_eq!(
        (s["files_new"].as_u64(), s["files_changed"].as_u64()),
        (Some(0), Some(1)),
        "incremental backup: {s}"
    );
    assert!(
        s["data_added"].as_u64().unwrap() < 256 * KIB as u64 + len,
        "incremental backup added too much: {s}"
    );

    // Restores: latest, and the first snapshot.
    let ids = restic.snapshot_ids();
    assert_eq!(ids.len(), 3, "snapshots: {ids:?}");
    let t = Instant::now();
    let restored = restic.restore("latest", &src, &work.path().join("r3"));
    assert_same_files(&restored, &v3, true, "restic restore latest");
    eprintln!(
        "restic: restore of {}: {:?}",
        mib(total_size(&v3)),
        t.elapsed()
    );
    let restored = restic.restore(&ids[0], &src, &work.path().join("r1"));
    assert_same_files(&restored, &v1, true, "restic restore first");
    let restored = restic.restore(&ids[1], &src, &work.path().join("r2"));
    assert_same_files(&restored, &v2, true, "restic restore second");

    // forget + prune, then check everything again.
    let out = restic.run(&["forget", "--keep-last", "1", "--prune"]);
    assert!(out.contains("remove"), "forget --prune:\n{out}");
    assert_eq!(restic.snapshot_ids().len(), 1);
    restic.check_read_data("check after prune");
    let restored = restic.restore("latest", &src, &work.path().join("r4"));
    assert_same_files(&restored, &v3, true, "restic restore after prune");
    assert_no_server_errors(&server, "restic");
}

/// duplicity with its boto3 backend (`boto3+s3://`), no encryption
/// (Cairn encrypts at rest).
struct Duplicity<'a> {
    server: &'a TestServer,
    work: PathBuf,
}

impl Duplicity<'_> {
    fn cmd(&self, name: &str, args: &[&str]) -> Command {
        let mut cmd = clean_command("duplicity");
        let config = self.work.join("aws-config");
        if !config.exists() {
            std::fs::write(&config, "").unwrap();
        }
        let tmp = self.work.join("duplicity-tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &config)
            .args(args)
            .args(["--no-encryption", "--s3-endpoint-url"])
            .arg(self.server.endpoint())
            .arg("--archive-dir")
            .arg(self.work.join("duplicity-archive"))
            .args(["--name", name])
            .arg("--tempdir")
            .arg(&tmp);
        cmd
    }

    fn run(&self, name: &str, args: &[&str]) -> String {
        run_checked(
            &mut self.cmd(name, args),
            &format!("duplicity {}", args.join(" ")),
            self.server,
        )
    }
}

#[test]
fn duplicity_full_killed_and_resumed_incremental_verify_restore() {
    let _serial = serial();
    if !require_duplicity() {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("cairn-backup-")
        .tempdir()
        .unwrap();
    let server = TestServer::start();
    block_on(create_bucket(&sdk_client(&server), "duplicity"));
    let mut rng = Rng::new(test_seed("backup-duplicity"));
    let src = work.path().join("src");
    backup_tree(&src, &mut rng);
    write_random(&src.join("more/a.bin"), &mut rng, 8 * MIB as u64);
    write_random(&src.join("more/b.bin"), &mut rng, 8 * MIB as u64 + 1);
    let v1 = snapshot(&src);
    let d = Duplicity {
        server: &server,
        work: work.path().to_owned(),
    };
    let url = "boto3+s3://duplicity/backup";
    let src_arg = src.to_str().unwrap();

    // Full backup in small volumes, killed once two volumes are stored,
    // then run again: duplicity resumes the partial set.
    let volsize = if big_mode() { "25" } else { "1" };
    let t = Instant::now();
    let mut child = d
        .cmd("main", &["full", "--volsize", volsize, src_arg, url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let n = kill_when_uploaded(
        &mut child,
        &server,
        "duplicity",
        "backup/",
        1,
        "duplicity full",
    );
    eprintln!("duplicity: killed the full backup with {n} files stored");
    let out = d.run("main", &["full", "--volsize", volsize, src_arg, url]);
    assert!(
        out.to_lowercase().contains("restarting"),
        "duplicity did not resume the interrupted full backup:\n{out}"
    );
    eprintln!(
        "duplicity: full backup (killed, resumed) of {}: {:?}",
        mib(total_size(&v1)),
        t.elapsed()
    );
    let out = d.run("main", &["collection-status", url]);
    assert!(
        out.contains("No orphaned or incomplete backup sets found"),
        "collection-status:\n{out}"
    );
    let out = d.run("main", &["verify", "--compare-data", url, src_arg]);
    assert!(out.contains(", 0 differences found"), "verify:\n{out}");
    let full_time = now_secs();

    // Incremental: a change in place (same size), a new file, a deletion.
    std::thread::sleep(Duration::from_millis(1100)); // duplicity's times are whole seconds
    let changed = small_name(60);
    let len = v1[&changed].size;
    write_random(&src.join(&changed), &mut rng, len);
    write_random(&src.join("new.bin"), &mut rng, 300 * KIB as u64);
    std::fs::remove_file(src.join(small_name(61))).unwrap();
    let v2 = snapshot(&src);
    let out = d.run("main", &["incremental", "--volsize", volsize, src_arg, url]);
    let stat = |key: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in duplicity's statistics:\n{out}"))
    };
    // Directories count as files too: at least one of each.
    assert!(
        stat("NewFiles ") >= 1 && stat("ChangedFiles ") >= 1 && stat("DeletedFiles ") >= 1,
        "incremental statistics:\n{out}"
    );
    let out = d.run("main", &["verify", "--compare-data", url, src_arg]);
    assert!(
        out.contains(", 0 differences found"),
        "verify after incremental:\n{out}"
    );

    // Restores: latest, and as of the full backup.
    let t = Instant::now();
    let r2 = work.path().join("restore-latest");
    d.run("main", &["restore", url, r2.to_str().unwrap()]);
    eprintln!("duplicity: restore: {:?}", t.elapsed());
    assert_same_files(&snapshot(&r2), &v2, true, "duplicity restore latest");
    let r1 = work.path().join("restore-full");
    d.run(
        "main",
        &[
            "restore",
            "--time",
            &full_time.to_string(),
            url,
            r1.to_str().unwrap(),
        ],
    );
    assert_same_files(
        &snapshot(&r1),
        &v1,
        true,
        "duplicity restore of the full backup",
    );
    assert_no_server_errors(&server, "duplicity");
}

#[test]
fn rclone_sync_and_copy_with_checksum_a_killed_sync_and_restore() {
    let _serial = serial();
    if !require_tool("rclone", "version") {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("cairn-backup-")
        .tempdir()
        .unwrap();
    let server = TestServer::start();
    let r = Rclone::new(&server, work.path());
    let mut rng = Rng::new(test_seed("backup-rclone"));
    let src = work.path().join("src");
    backup_tree(&src, &mut rng);
    write_random(&src.join("more/a.bin"), &mut rng, 8 * MIB as u64);
    let src_arg = src.to_str().unwrap();
    let remote = "cairn:rclone/backup";
    r.run(&server, &["mkdir", "cairn:rclone"]);

    // A sync slowed to 4 MiB/s, killed once files are stored, run again.
    let mut child = r
        .cmd(&["sync", "--checksum", "--bwlimit", "4M", src_arg, remote])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let n = kill_when_uploaded(&mut child, &server, "rclone", "backup/", 10, "rclone sync");
    eprintln!("rclone: killed the sync with {n} objects stored");
    let t = Instant::now();
    r.run(&server, &["sync", "--checksum", src_arg, remote]);
    eprintln!("rclone: sync rerun: {:?}", t.elapsed());
    let v1 = snapshot(&src);
    let out = r.run(&server, &["check", "--download", src_arg, remote]);
    assert!(
        out.contains("0 differences found"),
        "rclone check --download:\n{out}"
    );

    // Nothing changed: nothing copied.
    let out = r.run(&server, &["sync", "--checksum", src_arg, remote]);
    assert!(!out.contains("Copied"), "a second sync copied:\n{out}");

    // Same size and mtime, other content: only --checksum notices.
    let sneaky = small_name(70);
    let info = v1[&sneaky].clone();
    write_random(&src.join(&sneaky), &mut rng, info.size);
    set_mtime(&src.join(&sneaky), info.mtime);
    write_random(&src.join("new/file.bin"), &mut rng, 123_456);
    std::fs::remove_file(src.join(small_name(71))).unwrap();
    let v2 = snapshot(&src);
    let out = r.run(&server, &["sync", "--checksum", src_arg, remote]);
    let copied: Vec<&str> = out.lines().filter(|l| l.contains(": Copied (")).collect();
    assert_eq!(copied.len(), 2, "sync after changes:\n{out}");
    assert!(
        copied.iter().any(|l| l.contains(&sneaky)),
        "--checksum missed the same-size, same-mtime change:\n{out}"
    );
    assert!(out.contains(": Deleted"), "sync did not delete:\n{out}");

    // Restore with copy --checksum: bytes and mtimes.
    let back = work.path().join("restore");
    let t = Instant::now();
    r.run(
        &server,
        &["copy", "--checksum", remote, back.to_str().unwrap()],
    );
    eprintln!(
        "rclone: copy back of {}: {:?}",
        mib(total_size(&v2)),
        t.elapsed()
    );
    assert_same_files(&snapshot(&back), &v2, true, "rclone copy back");
    assert_no_server_errors(&server, "rclone");
}

// ---------------------------------------------------------------------------
// Dedup
// ---------------------------------------------------------------------------

/// A second full copy of the same tree by tools that do not dedup
/// themselves adds under 5 % of the tree's size to the drives. The seed is
/// fixed so that the figure is the same on every run.
#[test]
fn second_full_copies_add_under_5_percent_to_the_drives() {
    let _serial = serial();
    if !require_tool("rclone", "version") || !require_duplicity() {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("cairn-backup-")
        .tempdir()
        .unwrap();
    let server = TestServer::start();
    let r = Rclone::new(&server, work.path());
    let mut rng = Rng::new(0x0dd_ba11);
    let src = work.path().join("src");
    if big_mode() {
        make_tree(
            &src,
            &mut rng,
            2000,
            &[512 * MIB as u64, 256 * MIB as u64 + 1, 256 * MIB as u64 + 2],
        );
    } else {
        make_tree(
            &src,
            &mut rng,
            200,
            &[16 * MIB as u64, 16 * MIB as u64 + 1, 12 * MIB as u64 + 2],
        );
    }
    let tree = snapshot(&src);
    let logical = total_size(&tree);
    let src_arg = src.to_str().unwrap();
    r.run(&server, &["mkdir", "cairn:dedup"]);
    let d = Duplicity {
        server: &server,
        work: work.path().to_owned(),
    };

    let mut lines = vec![format!(
        "tree: {} files, {} ({logical} bytes); drive bytes = summed segment file lengths",
        tree.len(),
        mib(logical)
    )];
    let mut ratios = Vec::new();
    let mut measure = |what: &str, first: &dyn Fn(), second: &dyn Fn()| {
        let d0 = drive_bytes(&server);
        first();
        let d1 = drive_bytes(&server);
        let dd1 = server.metric("cairn_pipeline_chunks_deduplicated_total");
        second();
        let d2 = drive_bytes(&server);
        let dd2 = server.metric("cairn_pipeline_chunks_deduplicated_total");
        let ratio = (d2 - d1) as f64 / logical as f64;
        lines.push(format!(
            "{what}: first copy +{} bytes ({:.3}× the tree), second copy +{} bytes = {:.2} % of the tree ({} chunks deduplicated in the second copy)",
            d1 - d0,
            (d1 - d0) as f64 / logical as f64,
            d2 - d1,
            ratio * 100.0,
            dd2 - dd1
        ));
        ratios.push((what.to_owned(), ratio));
    };
    measure(
        "rclone copy to a new prefix",
        &|| {
            r.run(&server, &["copy", src_arg, "cairn:dedup/rclone-1"]);
        },
        &|| {
            r.run(&server, &["copy", src_arg, "cairn:dedup/rclone-2"]);
        },
    );
    measure(
        "duplicity full (defaults: gzip, 25 MiB volumes; --no-encryption)",
        &|| {
            d.run("dup-1", &["full", src_arg, "boto3+s3://dedup/dup-1"]);
        },
        &|| {
            d.run("dup-2", &["full", src_arg, "boto3+s3://dedup/dup-2"]);
        },
    );
    eprintln!("dedup:\n  {}", lines.join("\n  "));
    for (what, ratio) in ratios {
        assert!(
            ratio < 0.05,
            "{what}: the second full copy added {:.2} % of the tree to the drives:\n  {}",
            ratio * 100.0,
            lines.join("\n  ")
        );
    }
    assert_no_server_errors(&server, "dedup");
}
