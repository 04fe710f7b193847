//! The image cache against a stub image API (and a real radosgw when one
//! runs): every source, verification, one fetch under concurrency, qcow2
//! overlays checked with `qemu-img info`, usage and cleanup.

#[path = "imagecache/s3.rs"]
mod s3;
#[path = "imagecache/stub.rs"]
mod stub;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use stratus_common::ids::{ImageId, InstanceId};
use stratus_imagecache::{CacheError, ImageCache, ImageCacheConfig, Source};

use stub::{active_image, StubGlance, TOKEN};

pub struct Env {
    pub glance: StubGlance,
    pub dir: tempfile::TempDir,
    pub cache: ImageCache,
}

pub fn config(dir: &Path) -> ImageCacheConfig {
    ImageCacheConfig {
        dir: dir.join("cache"),
        ..ImageCacheConfig::default()
    }
}

impl Env {
    pub async fn new() -> Self {
        Self::with(|c| c).await
    }

    pub async fn with(f: impl FnOnce(ImageCacheConfig) -> ImageCacheConfig) -> Self {
        let glance = StubGlance::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ImageCache::new(f(config(dir.path())), glance.url.clone()).expect("cache");
        Self { glance, dir, cache }
    }

    /// Files in the cache folder other than the (empty) `tmp/`.
    pub fn cache_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.cache.dir())
            .expect("read cache dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != "tmp")
            .collect();
        names.sort();
        let tmp: Vec<_> = std::fs::read_dir(self.cache.dir().join("tmp"))
            .expect("tmp")
            .collect();
        assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
        names
    }

    pub fn instance_dir(&self) -> (InstanceId, PathBuf) {
        let id = InstanceId::new();
        (id, self.dir.path().join("instances").join(id.to_string()))
    }
}

/// Deterministic bytes that do not look like any image format.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn qemu_img(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn qemu_info(p: &Path) -> Value {
    let out = qemu_img(&[
        "info",
        "--output=json",
        "--force-share",
        p.to_str().expect("utf8 path"),
    ]);
    serde_json::from_slice(&out).expect("info json")
}

/// A real qcow2 file of `virtual` bytes (optionally with a backing file), as bytes.
fn qcow2_bytes(virtual_size: &str, backing: Option<&str>) -> Vec<u8> {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("img.qcow2");
    let p = p.to_str().expect("utf8");
    match backing {
        Some(b) => qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            b,
            "-F",
            "raw",
            p,
            virtual_size,
        ]),
        None => qemu_img(&["create", "-q", "-f", "qcow2", p, virtual_size]),
    };
    std::fs::read(p).expect("read qcow2")
}

fn with(mut v: Value, extra: Value) -> Value {
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

#[tokio::test]
async fn api_download_when_the_image_shows_no_locations() {
    let env = Env::new().await;
    let id = ImageId::new();
    let data = pseudo_random(3 << 20, 1);
    env.glance
        .put(id, active_image(id, "raw", &data), data.clone());

    let c = env.cache.ensure(id, TOKEN).await.expect("ensure");
    assert_eq!(c.source, Source::Api);
    assert!(!c.hit);
    assert_eq!(c.disk_format, "raw");
    assert_eq!(c.size, data.len() as u64);
    assert_eq!(std::fs::read(&c.path).expect("cached file"), data);
    assert_eq!(env.glance.downloads(), 1);

    let again = env.cache.ensure(id, TOKEN).await.expect("ensure again");
    assert!(again.hit);
    assert_eq!(again.path, c.path);
    assert_eq!(
        env.glance.downloads(),
        1,
        "a cached image is not downloaded again"
    );

    let s = env.cache.stats();
    assert_eq!(
        (s.hits, s.misses, s.fetched_from_api, s.bytes_fetched),
        (1, 1, 1, data.len() as u64)
    );
    assert_eq!(s.last_source, Some(Source::Api));
    assert_eq!(
        env.cache_files(),
        vec![id.to_string(), format!("{id}.json")]
    );
}

#[tokio::test]
async fn file_location_is_read_directly_and_hard_linked() {
    let env = Env::new().await;
    let store = env.dir.path().join("store");
    std::fs::create_dir_all(&store).expect("store dir");
    let id = ImageId::new();
    let data = pseudo_random(1 << 20, 2);
    let src = store.join(id.to_string());
    std::fs::write(&src, &data).expect("store file");
    let url = file_url(&src);
    let json = with(
        active_image(id, "raw", &data),
        json!({"direct_url": url, "locations": [{"url": url, "metadata": {}}]}),
    );
    env.glance.put(id, json, data.clone());

    let c = env.cache.ensure(id, TOKEN).await.expect("ensure");
    assert_eq!(c.source, Source::File);
    assert_eq!(env.glance.downloads(), 0, "the API download is not used");
    assert_eq!(std::fs::read(&c.path).expect("cached"), data);
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (
        std::fs::metadata(&src).expect("src"),
        std::fs::metadata(&c.path).expect("cached"),
    );
    assert_eq!(
        (a.dev(), a.ino()),
        (b.dev(), b.ino()),
        "same filesystem: a hard link"
    );
    assert_eq!(env.cache.stats().fetched_from_file, 1);
}

#[tokio::test]
async fn unreadable_locations_fall_back_to_the_api() {
    let env = Env::new().await;
    let id = ImageId::new();
    let data = pseudo_random(64 << 10, 3);
    // A file this host does not have, and an S3 location with no S3 configured.
    let json = with(
        active_image(id, "raw", &data),
        json!({"locations": [
            {"url": "file:///nonexistent/stratus/image", "metadata": {}},
            {"url": format!("s3://bucket/{id}"), "metadata": {}}
        ]}),
    );
    env.glance.put(id, json, data.clone());
    let c = env.cache.ensure(id, TOKEN).await.expect("ensure");
    assert_eq!(c.source, Source::Api);
    assert_eq!(std::fs::read(&c.path).expect("cached"), data);
}

#[tokio::test]
async fn hash_mismatch_is_refused_and_leaves_nothing() {
    let env = Env::new().await;
    let data = pseudo_random(256 << 10, 4);
    let mut other = data.clone();
    other[1000] ^= 1;

    // sha512 and md5 of other bytes of the same size (API download).
    let id = ImageId::new();
    env.glance
        .put(id, active_image(id, "raw", &other), data.clone());
    let e = env.cache.ensure(id, TOKEN).await.expect_err("mismatch");
    assert!(
        matches!(&e, CacheError::HashMismatch { algo, .. } if algo == "sha512"),
        "{e}"
    );

    // Only an md5 checksum (an older image).
    let id2 = ImageId::new();
    let json = with(
        active_image(id2, "raw", &other),
        json!({"os_hash_algo": null, "os_hash_value": null}),
    );
    env.glance.put(id2, json, data.clone());
    let e = env
        .cache
        .ensure(id2, TOKEN)
        .await
        .expect_err("md5 mismatch");
    assert!(
        matches!(&e, CacheError::HashMismatch { algo, .. } if algo == "md5"),
        "{e}"
    );

    // More bytes than the declared size: stopped, not stored.
    let id3 = ImageId::new();
    let mut longer = data.clone();
    longer.extend_from_slice(b"extra");
    env.glance.put(id3, active_image(id3, "raw", &data), longer);
    let e = env.cache.ensure(id3, TOKEN).await.expect_err("too long");
    assert!(
        matches!(&e, CacheError::HashMismatch { algo, .. } if algo == "size"),
        "{e}"
    );

    // A direct file location with wrong bits: refused without falling back,
    // and the store's file is untouched.
    let id4 = ImageId::new();
    let src = env.dir.path().join("store-file");
    std::fs::write(&src, &data).expect("store file");
    let json = with(
        active_image(id4, "raw", &other),
        json!({"direct_url": file_url(&src)}),
    );
    env.glance.put(id4, json, other.clone());
    let e = env
        .cache
        .ensure(id4, TOKEN)
        .await
        .expect_err("file mismatch");
    assert!(matches!(e, CacheError::HashMismatch { .. }), "{e}");
    assert_eq!(std::fs::read(&src).expect("store file kept"), data);
    assert_eq!(env.glance.downloads(), 3);

    assert_eq!(env.cache_files(), Vec::<String>::new(), "nothing cached");
    let s = env.cache.stats();
    assert_eq!((s.hash_mismatches, s.misses, s.hits), (4, 4, 0));
}

#[tokio::test]
async fn missing_inactive_and_unauthorised() {
    let env = Env::new().await;
    let e = env
        .cache
        .ensure(ImageId::new(), TOKEN)
        .await
        .expect_err("unknown image");
    assert!(matches!(e, CacheError::NotFound), "{e}");

    let id = ImageId::new();
    let data = b"abc".to_vec();
    env.glance.put(
        id,
        with(active_image(id, "raw", &data), json!({"status": "queued"})),
        data.clone(),
    );
    let e = env.cache.ensure(id, TOKEN).await.expect_err("queued");
    assert!(
        matches!(&e, CacheError::NotActive(s) if s == "queued"),
        "{e}"
    );

    let id = ImageId::new();
    env.glance
        .put(id, active_image(id, "raw", &data), data.clone());
    let e = env
        .cache
        .ensure(id, "wrong-token")
        .await
        .expect_err("bad token");
    assert!(matches!(e, CacheError::Unauthorized(_)), "{e}");

    let id = ImageId::new();
    env.glance.put(id, active_image(id, "vmdk", &data), data);
    let e = env.cache.ensure(id, TOKEN).await.expect_err("vmdk");
    assert!(matches!(e, CacheError::UnsupportedFormat(_)), "{e}");
    assert_eq!(env.glance.downloads(), 0);

    // No image API at all.
    let dir = tempfile::tempdir().expect("tempdir");
    let cache =
        ImageCache::new(config(dir.path()), "http://127.0.0.1:9".to_owned()).expect("cache");
    let e = cache
        .ensure(ImageId::new(), TOKEN)
        .await
        .expect_err("no API");
    assert!(matches!(e, CacheError::Unavailable(_)), "{e}");
}

#[tokio::test]
async fn concurrent_ensure_of_one_image_fetches_once() {
    let env = Env::new().await;
    let id = ImageId::new();
    let data = pseudo_random(2 << 20, 5);
    env.glance
        .put(id, active_image(id, "raw", &data), data.clone());

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let cache = env.cache.clone();
            tokio::spawn(async move { cache.ensure(id, TOKEN).await })
        })
        .collect();
    let mut paths = Vec::new();
    for t in tasks {
        paths.push(t.await.expect("join").expect("ensure").path);
    }
    assert_eq!(env.glance.downloads(), 1);
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
    let s = env.cache.stats();
    assert_eq!(
        (s.misses, s.hits, s.bytes_fetched),
        (1, 7, data.len() as u64)
    );
}

#[tokio::test]
async fn qcow2_overlay_is_made_on_the_cached_image() {
    let env = Env::new().await;
    let id = ImageId::new();
    let data = qcow2_bytes("64M", None);
    env.glance
        .put(id, active_image(id, "qcow2", &data), data.clone());
    let c = env.cache.ensure(id, TOKEN).await.expect("ensure");
    assert_eq!(c.virtual_size, 64 << 20);

    let (_inst, idir) = env.instance_dir();
    let disk = env
        .cache
        .create_overlay(&c, &idir, 1)
        .await
        .expect("overlay");
    assert_eq!(disk, idir.join("disk"));
    let info = qemu_info(&disk);
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 1u64 << 30);
    assert_eq!(info["backing-filename"], c.path.to_str().expect("utf8"));
    assert_eq!(info["backing-filename-format"], "qcow2");

    // Delivered twice: the same disk.
    assert_eq!(
        env.cache.create_overlay(&c, &idir, 1).await.expect("again"),
        disk
    );

    // Size 0: the image's own size.
    let (_i2, idir2) = env.instance_dir();
    let disk2 = env
        .cache
        .create_overlay(&c, &idir2, 0)
        .await
        .expect("overlay size 0");
    assert_eq!(qemu_info(&disk2)["virtual-size"], 64u64 << 20);

    // Both instances share one base file.
    assert_eq!(
        env.cache_files(),
        vec![id.to_string(), format!("{id}.json")]
    );
}

#[tokio::test]
async fn raw_overlay_and_a_disk_smaller_than_the_image() {
    let env = Env::new().await;
    let id = ImageId::new();
    let data = pseudo_random(1 << 20, 6);
    env.glance
        .put(id, active_image(id, "raw", &data), data.clone());
    let c = env.cache.ensure(id, TOKEN).await.expect("ensure");
    assert_eq!(c.virtual_size, 1 << 20);
    let (_i, idir) = env.instance_dir();
    let disk = env
        .cache
        .create_overlay(&c, &idir, 1)
        .await
        .expect("overlay");
    let info = qemu_info(&disk);
    assert_eq!(info["backing-filename-format"], "raw");

    let big = ImageId::new();
    let data = qcow2_bytes("2G", None);
    env.glance.put(big, active_image(big, "qcow2", &data), data);
    let c = env.cache.ensure(big, TOKEN).await.expect("ensure big");
    let (_i, idir) = env.instance_dir();
    let e = env
        .cache
        .create_overlay(&c, &idir, 1)
        .await
        .expect_err("too small");
    assert!(
        matches!(e, CacheError::DiskTooSmall { size_gb: 1, virtual_size } if virtual_size == 2 << 30),
        "{e}"
    );
    assert!(!idir.join("disk").exists());
}

#[tokio::test]
async fn images_that_refer_to_other_files_or_lie_about_their_format_are_refused() {
    let env = Env::new().await;
    let id = ImageId::new();
    let data = qcow2_bytes("64M", Some("/etc/hostname"));
    env.glance.put(id, active_image(id, "qcow2", &data), data);
    let e = env.cache.ensure(id, TOKEN).await.expect_err("backing file");
    assert!(matches!(e, CacheError::BadImage(_)), "{e}");

    let id = ImageId::new();
    let data = qcow2_bytes("64M", None);
    env.glance.put(id, active_image(id, "raw", &data), data);
    let e = env
        .cache
        .ensure(id, TOKEN)
        .await
        .expect_err("qcow2 declared raw");
    assert!(matches!(e, CacheError::BadImage(_)), "{e}");
    assert_eq!(env.cache_files(), Vec::<String>::new());
}

#[tokio::test]
async fn cleanup_removes_unused_images_only() {
    let env = Env::with(|c| ImageCacheConfig {
        max_unused_age_secs: 0,
        ..c
    })
    .await;
    let data_a = pseudo_random(4096, 7);
    let data_b = pseudo_random(4096, 8);
    let data_c = pseudo_random(4096, 9);
    let (a, b, c) = (ImageId::new(), ImageId::new(), ImageId::new());
    env.glance.put(a, active_image(a, "raw", &data_a), data_a);
    env.glance.put(b, active_image(b, "raw", &data_b), data_b);
    env.glance.put(c, active_image(c, "raw", &data_c), data_c);
    let ca = env.cache.ensure(a, TOKEN).await.expect("a");
    env.cache.ensure(b, TOKEN).await.expect("b");
    let cc = env.cache.ensure(c, TOKEN).await.expect("c");
    let (inst, idir) = env.instance_dir();
    env.cache
        .create_overlay(&ca, &idir, 1)
        .await
        .expect("overlay a");
    // A disk in a folder not named by an instance id: in use while it exists.
    let other = env.dir.path().join("elsewhere");
    env.cache
        .create_overlay(&cc, &other, 1)
        .await
        .expect("overlay c");

    assert_eq!(env.cache.cleanup_unused().await.expect("cleanup"), vec![b]);
    assert!(ca.path.exists() && cc.path.exists() && !env.cache.dir().join(b.to_string()).exists());

    // The instance of a is released: a goes; c stays while its disk exists.
    env.cache.release(a, inst).await;
    std::fs::remove_dir_all(&idir).expect("delete instance dir");
    assert_eq!(env.cache.cleanup_unused().await.expect("cleanup"), vec![a]);

    // c's disk is gone: its use is dropped first, the image goes next time.
    std::fs::remove_dir_all(&other).expect("delete disk");
    assert_eq!(
        env.cache.cleanup_unused().await.expect("cleanup"),
        Vec::<ImageId>::new()
    );
    assert_eq!(env.cache.cleanup_unused().await.expect("cleanup"), vec![c]);
    assert_eq!(env.cache_files(), Vec::<String>::new());
    assert_eq!(env.cache.stats().removed, 3);

    // A removed image is fetched again when asked for.
    let again = env.cache.ensure(b, TOKEN).await.expect("b again");
    assert!(!again.hit);
}

#[tokio::test]
async fn recently_used_images_are_kept() {
    let env = Env::new().await; // the default age: one day
    let id = ImageId::new();
    let data = pseudo_random(4096, 10);
    env.glance.put(id, active_image(id, "raw", &data), data);
    env.cache.ensure(id, TOKEN).await.expect("ensure");
    assert_eq!(
        env.cache.cleanup_unused().await.expect("cleanup"),
        Vec::<ImageId>::new()
    );
}

#[tokio::test]
async fn a_restarted_agent_keeps_its_cache_and_uses() {
    let env = Env::new().await;
    let (a, b) = (ImageId::new(), ImageId::new());
    let data = pseudo_random(4096, 11);
    env.glance
        .put(a, active_image(a, "raw", &data), data.clone());
    env.glance.put(b, active_image(b, "raw", &data), data);
    let ca = env.cache.ensure(a, TOKEN).await.expect("a");
    env.cache.ensure(b, TOKEN).await.expect("b");
    let (_inst, idir) = env.instance_dir();
    env.cache
        .create_overlay(&ca, &idir, 1)
        .await
        .expect("overlay");
    // A download that a crash interrupted.
    std::fs::write(env.cache.dir().join("tmp").join("left-over.part"), b"x").expect("leftover");

    let cfg = ImageCacheConfig {
        max_unused_age_secs: 0,
        ..config(env.dir.path())
    };
    let restarted = ImageCache::new(cfg, env.glance.url.clone()).expect("restart");
    let c = restarted
        .ensure(a, TOKEN)
        .await
        .expect("ensure after restart");
    assert!(c.hit);
    assert_eq!(env.glance.downloads(), 2);
    assert_eq!(restarted.cleanup_unused().await.expect("cleanup"), vec![b]);
    assert_eq!(env.cache_files(), vec![a.to_string(), format!("{a}.json")]);
}

#[tokio::test]
async fn the_cleanup_task_runs_periodically() {
    let env = Env::with(|c| ImageCacheConfig {
        max_unused_age_secs: 0,
        cleanup_interval_secs: 1,
        ..c
    })
    .await;
    let id = ImageId::new();
    let data = pseudo_random(4096, 12);
    env.glance.put(id, active_image(id, "raw", &data), data);
    let c = env.cache.ensure(id, TOKEN).await.expect("ensure");
    let task = env.cache.spawn_cleanup_task();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while c.path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cleanup task never removed the image"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    task.abort();
    assert_eq!(env.cache.stats().removed, 1);
}

#[tokio::test]
async fn a_base_with_disks_on_it_is_never_replaced() {
    let env = Env::new().await;
    let id = ImageId::new();
    let data = pseudo_random(4096, 13);
    env.glance
        .put(id, active_image(id, "raw", &data), data.clone());
    let c = env.cache.ensure(id, TOKEN).await.expect("ensure");
    let (_i, idir) = env.instance_dir();
    env.cache
        .create_overlay(&c, &idir, 1)
        .await
        .expect("overlay");

    // The image API now describes other bits under the same id.
    let other = pseudo_random(4096, 14);
    env.glance.put(id, active_image(id, "raw", &other), other);
    let e = env.cache.ensure(id, TOKEN).await.expect_err("differs");
    assert!(matches!(e, CacheError::BadImage(_)), "{e}");
    assert_eq!(std::fs::read(&c.path).expect("base kept"), data);
    assert_eq!(env.glance.downloads(), 1);
}
