//! Local-account passwords: argon2id with the crate's recommended parameters
//! (19 MiB of working memory and two passes per hash), computed on a few
//! dedicated threads.
//!
//! The work is bounded: at most [`HASHING_THREADS`] hashes run at once and a
//! caller waits at most [`WAIT_FOR_TURN`] for its turn, after which it is
//! told the server is busy ([`PasswordError::Busy`]) instead of queueing
//! without end. So is the memory: each thread keeps its own 19 MiB of
//! working memory and reuses it for every hash. (Letting argon2 allocate it
//! per hash does not return it: glibc serves the next 19 MiB aligned
//! allocation beside the freed one rather than in it, and the process grew
//! by about 19 MiB a hash, to 300 MiB and more.)

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Passwords hashed or checked at once, process-wide (about 19 MiB each).
pub const HASHING_THREADS: usize = 2;
/// How long a sign-in waits for a free hashing thread before it is refused.
pub const WAIT_FOR_TURN: Duration = Duration::from_secs(2);
/// What a refused caller is told to wait (`Retry-After`).
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hashing thread stayed busy for [`WAIT_FOR_TURN`].
    #[error("too many passwords are being checked right now; try again in a few seconds")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Why a new password is refused, in words for the person choosing it.
pub fn password_problem(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Some(format!("must be at least {MIN_PASSWORD_CHARS} characters"))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some(format!("must be at most {MAX_PASSWORD_BYTES} bytes"))
    } else {
        None
    }
}

pub async fn hash_password(password: String) -> Result<String, PasswordError> {
    on_hashing_thread(move || hash_here(password.as_bytes())).await?
}

/// Whether `password` matches `hash`. With no account (`hash` is `None`) a
/// dummy hash is still checked, so the answer takes as long either way and
/// does not reveal which emails have accounts.
pub async fn verify_password(
    password: String,
    hash: Option<String>,
) -> Result<bool, PasswordError> {
    on_hashing_thread(move || {
        let has_account = hash.is_some();
        let hash = hash.unwrap_or_else(dummy_hash);
        let matches = verify_here(password.as_bytes(), &hash);
        matches && has_account
    })
    .await
}

fn failed(error: impl std::fmt::Display) -> PasswordError {
    PasswordError::Failed(format!("argon2: {error}"))
}

/// A new argon2id PHC string for `password` (on a hashing thread).
fn hash_here(password: &[u8]) -> Result<String, PasswordError> {
    let params = Params::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt.as_salt().decode_b64(&mut salt_bytes).map_err(failed)?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password,
        salt_raw,
        &mut output,
    )
    .map_err(failed)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).map_err(failed)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` gives `hash` (a PHC string, with the algorithm,
/// version and costs it names), on a hashing thread.
fn verify_here(password: &[u8], hash: &str) -> bool {
    let check = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(version) => Version::try_from(version).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).ok()?;
        let mut salt_bytes = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_bytes).ok()?;
        let mut output = vec![0u8; expected.len()];
        argon2_into(algorithm, version, params, password, salt, &mut output).ok()?;
        // `Output` compares in constant time.
        Some(Output::new(&output).ok()? == expected)
    };
    check().unwrap_or(false)
}

thread_local! {
    /// argon2's working memory, kept by each hashing thread for every hash.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    output: &mut [u8],
) -> Result<(), argon2::Error> {
    let needed = params.block_count();
    let usual = Params::default().block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    if needed > usual {
        // A hash made with more memory than ours (not by this version):
        // checked in memory of its own, which is not kept.
        return argon2.hash_password_into(password, salt, output);
    }
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < usual {
            *memory = vec![Block::default(); usual];
        }
        // Every block is written before it is read: what the previous hash
        // left there does not matter.
        argon2.hash_password_into_with_memory(password, salt, output, &mut memory[..needed])
    })
}

type Job = Box<dyn FnOnce() + Send>;

/// A few threads for password work, and the turns to use them.
struct HashingPool {
    /// One per thread: holding one means a thread is free for the job.
    turns: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    /// How long a caller waits for a turn before it is told "busy".
    wait: Duration,
}

impl HashingPool {
    fn start(threads: usize, wait: Duration) -> std::io::Result<HashingPool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("mailwright-password-{index}"))
                .spawn(move || {
                    loop {
                        let next = queue.lock().map(|queue| queue.recv());
                        let Ok(Ok(job)) = next else { return };
                        // A panic fails that one job (its caller sees an
                        // error), not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(HashingPool {
            turns: Arc::new(Semaphore::new(threads)),
            jobs,
            wait,
        })
    }

    /// Run `work` on one of the threads once one is free (waiting at most
    /// `wait`). The turn is held until `work` ends, even if the caller stops
    /// waiting for the answer.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let turn =
            match tokio::time::timeout(self.wait, Arc::clone(&self.turns).acquire_owned()).await {
                Ok(Ok(turn)) => turn,
                Ok(Err(_closed)) => {
                    return Err(PasswordError::Failed("the hashing pool is closed".into()));
                }
                Err(_elapsed) => return Err(PasswordError::Busy),
            };
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let result = work();
                drop(turn);
                let _ = answer.send(result);
            }))
            .map_err(|_| PasswordError::Failed("the hashing threads stopped".into()))?;
        answered
            .await
            .map_err(|_| PasswordError::Failed("password hashing panicked".into()))
    }
}

/// `work` on the process's hashing threads ([`HASHING_THREADS`], waiting at
/// most [`WAIT_FOR_TURN`]).
async fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PasswordError> {
    static POOL: OnceLock<Result<HashingPool, String>> = OnceLock::new();
    let pool = POOL
        .get_or_init(|| {
            HashingPool::start(HASHING_THREADS, WAIT_FOR_TURN)
                .map_err(|error| format!("cannot start the password hashing threads: {error}"))
        })
        .as_ref()
        .map_err(|problem| PasswordError::Failed(problem.clone()))?;
    pool.run(work).await
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_here(b"no account has this password").unwrap_or_default())
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let verify = |password: &str, hash: Option<String>| {
            let password = password.to_owned();
            async move { verify_password(password, hash).await.unwrap() }
        };
        assert!(verify("correct horse battery", Some(hash.clone())).await);
        assert!(!verify("wrong horse battery", Some(hash)).await);
        assert!(!verify("no account has this password", None).await);
    }

    #[test]
    fn hashes_agree_with_the_argon2_crate_in_reused_memory() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        for round in 0..3 {
            let password = format!("password number {round}");
            let ours = hash_here(password.as_bytes()).unwrap();
            let parsed = PasswordHash::new(&ours).unwrap();
            assert!(
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            );
            let theirs = Argon2::default()
                .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
                .unwrap()
                .to_string();
            assert!(verify_here(password.as_bytes(), &theirs));
            assert!(!verify_here(b"another password", &theirs));
            assert!(!verify_here(password.as_bytes(), "not a hash"));
        }
        // Other costs (and the older version) still verify.
        let params = Params::new(1024, 1, 1, None).unwrap();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x10, params)
            .hash_password(b"old password", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(verify_here(b"old password", &old));
        assert!(!verify_here(b"old passwore", &old));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_a_few_hashes_run_at_once_and_waiting_is_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let pool = Arc::new(HashingPool::start(2, Duration::from_secs(30)).unwrap());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, most) =
                    (Arc::clone(&pool), Arc::clone(&running), Arc::clone(&most));
                tokio::spawn(async move {
                    pool.run(move || {
                        most.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for check in checks {
            check.await.unwrap().unwrap();
        }
        assert_eq!(most.load(SeqCst), 2);

        // With every thread taken for longer than the wait: busy, at once
        // after the wait, instead of queueing.
        let pool = Arc::new(HashingPool::start(1, Duration::from_millis(50)).unwrap());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = released.recv();
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        while pool.turns.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(pool.run(|| ()).await, Err(PasswordError::Busy)));
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert!(pool.run(|| ()).await.is_ok(), "free again");
        assert!(
            matches!(
                pool.run(|| panic!("a bug")).await,
                Err(PasswordError::Failed(_))
            ),
            "a panic fails its own job"
        );
        assert!(pool.run(|| ()).await.is_ok(), "and the thread lives on");
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(password_problem("short").is_some());
        assert!(password_problem("long enough, surely").is_none());
    }
}
