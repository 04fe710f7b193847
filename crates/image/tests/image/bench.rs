//! Runner for the image benchmark until `stratus bench image` is wired:
//! `cargo test -p stratus-image --test image bench_image -- --ignored --nocapture`.
//! `STRATUS_BENCH_IMAGE_MIB` sets the test file size (default 1024) and
//! `STRATUS_BENCH_IMAGE_S3_MIB` the S3 one (default 256: the test Ceph has a
//! 4 GiB OSD and RGW frees deleted objects only hours later);
//! the S3 store is measured too when `STRATUS_TEST_S3` names an s3.env, or
//! radosgw answers on 127.0.0.1:7480 and `$TMPDIR/stratus-ceph/s3.env`
//! exists (each run uses a bucket of its own).

use stratus_image::bench::{run, s3_config_from_env_file, BenchOptions};
use stratus_image::config::S3Config;

fn s3_config() -> Option<S3Config> {
    let path = match std::env::var("STRATUS_TEST_S3") {
        Ok(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => {
            let default = std::env::temp_dir().join("stratus-ceph/s3.env");
            let answers = std::net::TcpStream::connect_timeout(
                &([127, 0, 0, 1], 7480).into(),
                std::time::Duration::from_secs(1),
            )
            .is_ok();
            if !answers || !default.exists() {
                eprintln!("no radosgw: measuring the file store only");
                return None;
            }
            default
        }
    };
    let mut cfg = s3_config_from_env_file(&path).expect("s3.env");
    cfg.bucket = format!("stratus-bench-{}", uuid::Uuid::new_v4().simple());
    Some(cfg)
}

#[test]
#[ignore = "benchmark: writes and moves 1 GiB several times; run by hand"]
fn bench_image() {
    let mib: u64 = std::env::var("STRATUS_BENCH_IMAGE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let s3_mib: u64 = std::env::var("STRATUS_BENCH_IMAGE_S3_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let opts = BenchOptions {
        size: mib << 20,
        s3_size: Some(s3_mib << 20),
        s3: s3_config(),
        ..BenchOptions::default()
    };
    // A multi-threaded runtime, as the stratus binary serves with.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures = rt.block_on(run(opts)).expect("image bench");
    println!("{figures}");
    assert!(figures.skipped.is_empty(), "{:?}", figures.skipped);
}
