//! Password hashing with argon2id, stored as PHC strings, on a fixed pool of
//! hashing threads.
//!
//! Why a pool of our own: a strong hash needs a 19 MiB work area, and one
//! allocated per hash was never given back. Heap-profiled (heaptrack, the
//! `hash_memory` example: 80 hashes, 8 at a time on blocking threads): live
//! heap peaks at 160 MiB (8 areas) and nothing leaks, yet RSS reaches
//! 1.3 GiB. glibc serves the first area with mmap, and on freeing it raises
//! its mmap threshold above 19 MiB; later areas (64-byte aligned, through
//! `posix_memalign`) come from the heap, which fragments and is not trimmed.
//! One arena (`MALLOC_ARENA_MAX=1`) still ends at 1.2 GiB; a fixed
//! threshold (`MALLOC_MMAP_THRESHOLD_`) ends at 4 MiB.
//!
//! Here each of N threads (N = cores) keeps one work area and reuses it
//! while requests wait, so hashing holds at most N areas whatever the load,
//! and gives it back when none waits, so a quiet cloud holds none (the
//! `stratus` binary fixes glibc's mmap threshold, so that a freed area goes
//! back to the OS). A bounded queue takes what the threads cannot start at
//! once, and beyond it a request is refused with 503 and `Retry-After`
//! (Keystone's answer when overloaded) instead of waiting without limit.
//! Same example on the pool: live heap 40 MiB (2 cores, 2 areas), RSS
//! 47 MiB.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::HashCost;
use crate::error::{IdentityError, Result};

/// A stored hash asking for more memory than this is refused rather than
/// let one login make a worker hold a larger area for good.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

fn params(cost: HashCost) -> Result<Params> {
    match cost {
        // OWASP's argon2id minimum (19 MiB, 2 passes), argon2's default.
        HashCost::Strong => Ok(Params::default()),
        // For tests only: still a real argon2id hash, just cheap.
        HashCost::Fast => Params::new(64, 1, 1, None)
            .map_err(|e| IdentityError::Internal(format!("argon2 params: {e}"))),
    }
}

/// One thread's reusable work area, grown to the largest hash it has run.
struct WorkArea(Vec<Block>);

impl WorkArea {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let n = params.block_count();
        if self.0.len() < n {
            self.0.resize(n, Block::default());
        }
        &mut self.0[..n]
    }
}

type Job = Box<dyn FnOnce(&mut WorkArea) + Send>;

/// A fixed set of hashing threads and a bounded queue in front of them.
/// Dropping the pool lets the threads finish their work and exit.
pub struct HashPool {
    queue: SyncSender<Job>,
}

impl HashPool {
    /// `threads` hashing threads; `queue` requests may wait for one.
    pub fn new(threads: usize, queue: usize) -> Result<HashPool> {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx))?;
        }
        Ok(HashPool { queue: tx })
    }

    /// As configured; by default one thread per core, and twice as many
    /// waiting.
    pub fn configured(threads: Option<usize>, queue: Option<usize>) -> Result<HashPool> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = threads.unwrap_or(cores).max(1);
        Self::new(threads, queue.unwrap_or(2 * threads))
    }

    /// Runs `f` on a hashing thread; [`IdentityError::Overloaded`] at once
    /// when the queue is full.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WorkArea) -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |area| {
            // The caller may have gone (client disconnected): nothing to do.
            let _ = tx.send(f(area));
        });
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(IdentityError::Overloaded),
            Err(TrySendError::Disconnected(_)) => {
                return Err(IdentityError::Internal("hashing threads gone".into()))
            }
        }
        rx.await
            .map_err(|_| IdentityError::Internal("hashing thread failed".into()))
    }

    /// A PHC string (`$argon2id$v=19$m=...`) of `password` with a new salt.
    pub async fn hash(&self, password: &str, cost: HashCost) -> Result<String> {
        let password = password.to_owned();
        self.run(move |area| hash_with(password.as_bytes(), cost, area))
            .await?
    }

    /// True when `password` matches `hash` (the hash carries its own
    /// parameters). With no hash (an unknown user, or one without a
    /// password) a dummy hash at the configured cost still runs, so that the
    /// answer takes about as long either way and does not tell whether the
    /// user exists. Errs only when the service is overloaded.
    pub async fn verify(&self, password: &str, hash: Option<&str>, cost: HashCost) -> Result<bool> {
        let password = password.to_owned();
        let hash = hash.map(str::to_owned);
        self.run(move |area| match hash {
            Some(h) => verify_with(password.as_bytes(), &h, area),
            None => {
                let _ = hash_with(password.as_bytes(), cost, area);
                false
            }
        })
        .await
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    let mut area = WorkArea(Vec::new());
    loop {
        // Hold the lock only to take a job, not while hashing.
        let waiting = match rx.lock() {
            Ok(rx) => rx.try_recv(),
            Err(_) => return,
        };
        let job = match waiting {
            Ok(job) => job,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                // Idle: give the area back rather than hold it for good.
                area = WorkArea(Vec::new());
                match rx.lock() {
                    Ok(rx) => match rx.recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    },
                    Err(_) => return,
                }
            }
        };
        job(&mut area);
    }
}

fn internal(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Internal(format!("argon2: {e}"))
}

fn hash_with(password: &[u8], cost: HashCost, area: &mut WorkArea) -> Result<String> {
    let params = params(cost)?;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(internal)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt_bytes, &mut out, area.blocks(&params))
        .map_err(internal)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(internal)?),
    };
    Ok(phc.to_string())
}

/// What `Argon2::verify_password` does, with the thread's work area instead
/// of a fresh allocation.
fn verify_with(password: &[u8], hash: &str, area: &mut WorkArea) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        tracing::warn!(
            m_cost = params.m_cost(),
            "password hash needs too much memory"
        );
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt_bytes, &mut out, area.blocks(&params))
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    fn pool() -> HashPool {
        HashPool::new(2, 4).expect("pool")
    }

    #[tokio::test]
    async fn hashes_verify_and_are_phc() {
        let p = pool();
        let h = p.hash("s3cret", HashCost::Fast).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(p
            .verify("s3cret", Some(&h), HashCost::Fast)
            .await
            .expect("ok"));
        assert!(!p
            .verify("wrong", Some(&h), HashCost::Fast)
            .await
            .expect("ok"));
        assert!(!p
            .verify("s3cret", Some("garbage"), HashCost::Fast)
            .await
            .expect("ok"));
        assert!(!p.verify("s3cret", None, HashCost::Fast).await.expect("ok"));
    }

    #[tokio::test]
    async fn agrees_with_the_argon2_crate_both_ways() {
        let p = pool();
        // Ours is checked by the crate's verifier...
        let ours = p.hash("pw", HashCost::Strong).await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        // ...and hashes the crate made (as stored before the pool, and with
        // other parameters) verify with ours, on a work area of another size.
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        for params in [
            Params::default(),
            Params::new(128, 3, 2, Some(48)).expect("ok"),
        ] {
            let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"pw", &salt)
                .expect("hash")
                .to_string();
            assert!(p
                .verify("pw", Some(&theirs), HashCost::Fast)
                .await
                .expect("ok"));
            assert!(!p
                .verify("px", Some(&theirs), HashCost::Fast)
                .await
                .expect("ok"));
        }
    }

    #[tokio::test]
    async fn refuses_a_hash_asking_for_too_much_memory() {
        let huge = "$argon2id$v=19$m=1048576,t=1,p=1$c2FsdHNhbHRzYWx0$\
                    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!pool()
            .verify("pw", Some(huge), HashCost::Fast)
            .await
            .expect("ok"));
    }

    /// Polls a future once: enough for `HashPool::run` to queue its job.
    async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) {
        tokio::select! {
            biased;
            _ = f => panic!("finished on its first poll"),
            _ = std::future::ready(()) => {}
        }
    }

    #[tokio::test]
    async fn a_full_queue_is_overloaded_and_the_pool_recovers() {
        // One thread, one place in the queue: hold the thread, fill the
        // place, and the next request is refused at once.
        let p = HashPool::new(1, 1).expect("pool");
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let mut busy = Box::pin(p.run(move |_| {
            let _ = started_tx.send(());
            let _ = wait.recv();
        }));
        poll_once(&mut busy).await;
        started.await.expect("the thread took the job");
        let mut queued = Box::pin(p.hash("a", HashCost::Fast));
        poll_once(&mut queued).await;

        let e = p
            .verify("b", None, HashCost::Fast)
            .await
            .expect_err("refused");
        assert!(matches!(e, IdentityError::Overloaded));
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);

        release.send(()).expect("ok");
        busy.await.expect("ok");
        assert!(queued.await.expect("ok").starts_with("$argon2id$"));
        assert!(!p.verify("b", None, HashCost::Fast).await.expect("ok"));
    }
}
