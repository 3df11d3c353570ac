//! Password hashing: argon2id at the OWASP parameters (m = 19 MiB, t = 2,
//! p = 1), on the blocking pool, at most `max_concurrent_hashes` at a time.
//! A hash costs tens of milliseconds of CPU and 19 MiB; without the bound a
//! burst of logins would occupy every core and starve token traffic.
//!
//! A caller first takes a [`HashPermit`] and waits for it at most
//! `queue_wait`: beyond that the request is refused as busy (503 with
//! `Retry-After`) instead of queueing without end. Login takes the permit
//! *before* it counts an attempt (users.rs), so requests that wait, time out
//! or are cancelled while queued never count against the account.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// OWASP Password Storage Cheat Sheet, argon2id, first option.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2: {0}")]
    Argon2(String),
    #[error("the hashing task failed")]
    Task,
    /// No hashing slot became free within the queue wait.
    #[error("every password hashing slot is busy")]
    Busy,
}

/// The right to run one hash; dropping it frees the slot.
#[derive(Debug)]
pub struct HashPermit {
    _slot: OwnedSemaphorePermit,
}

/// How many hashes to run at once when the settings do not say: every core
/// but one (at least one), so that logins never take the whole machine from
/// token traffic. On this 2-core machine that is 1.
pub fn default_concurrent_hashes(available_parallelism: usize) -> usize {
    available_parallelism.saturating_sub(1).max(1)
}

/// The result of checking a password.
#[derive(Debug)]
pub enum Verified {
    Match {
        /// A new hash when the stored one uses other parameters.
        rehash: Option<String>,
    },
    Mismatch,
}

#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    queue_wait: Duration,
    params: Params,
    /// Verifications against a stored hash (not the dummy) so far: what
    /// lockout bounds. Exported as a metric too.
    verifications: Arc<AtomicU64>,
    /// Verified against for unknown users, so that "no such user" takes as
    /// long as "wrong password".
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// `max_concurrent` hashes at once; a caller waits at most `queue_wait`
    /// for a slot.
    pub fn new(max_concurrent: usize, queue_wait: Duration) -> Result<Self, HashError> {
        Self::with_params(
            max_concurrent,
            queue_wait,
            Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
                .map_err(|e| HashError::Argon2(e.to_string()))?,
        )
    }

    pub(crate) fn with_params(
        max_concurrent: usize,
        queue_wait: Duration,
        params: Params,
    ) -> Result<Self, HashError> {
        let dummy = hash_with(&params, "not a password of anyone")?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            queue_wait,
            params,
            verifications: Arc::new(AtomicU64::new(0)),
            dummy_hash: dummy.into(),
        })
    }

    /// A hashing slot, or [`HashError::Busy`] when none frees up within the
    /// queue wait.
    pub async fn permit(&self) -> Result<HashPermit, HashError> {
        match tokio::time::timeout(self.queue_wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(HashPermit { _slot: slot }),
            Ok(Err(_closed)) => Err(HashError::Task),
            Err(_elapsed) => {
                metrics::counter!("auth_password_hash_busy_total").increment(1);
                Err(HashError::Busy)
            }
        }
    }

    /// Verifications against stored hashes so far.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        let permit = self.permit().await?;
        let params = self.params.clone();
        let password = password.clone();
        Self::blocking(permit, move || hash_with(&params, password.expose_secret())).await?
    }

    /// [`Self::verify_with`], waiting for a slot first.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let permit = self.permit().await?;
        self.verify_with(permit, password, stored).await
    }

    /// Verifies `password` against `stored` (or against a dummy hash when
    /// there is no user) in the slot `permit` holds, and says whether to
    /// rehash.
    pub async fn verify_with(
        &self,
        permit: HashPermit,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let params = self.params.clone();
        let password = password.clone();
        let known = stored.is_some();
        if known {
            self.verifications.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("auth_password_checks_total").increment(1);
        }
        let stored: Arc<str> = stored.map_or_else(|| self.dummy_hash.clone(), Into::into);
        Self::blocking(permit, move || {
            let parsed =
                PasswordHash::new(&stored).map_err(|e| HashError::Argon2(e.to_string()))?;
            let ok = Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            if !ok || !known {
                return Ok(Verified::Mismatch);
            }
            let current = Params::try_from(&parsed).ok();
            let outdated = parsed.algorithm.as_str() != "argon2id"
                || current.is_none_or(|p| {
                    p.m_cost() != params.m_cost()
                        || p.t_cost() != params.t_cost()
                        || p.p_cost() != params.p_cost()
                });
            let rehash = if outdated {
                Some(hash_with(&params, password.expose_secret())?)
            } else {
                None
            };
            Ok(Verified::Match { rehash })
        })
        .await?
    }

    /// Runs `work` on the blocking pool; the slot is freed when the work is
    /// done, even if the caller stopped waiting for it.
    async fn blocking<T: Send + 'static>(
        permit: HashPermit,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| HashError::Task)
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_use_owasp_parameters_and_old_ones_are_rehashed() {
        let hasher = PasswordHasher::new(2, Duration::from_secs(60)).unwrap();
        let pw = SecretString::from("correct horse battery");
        let hash = hasher.hash(&pw).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(matches!(
            hasher.verify(&pw, Some(&hash)).await.unwrap(),
            Verified::Match { rehash: None }
        ));
        assert!(matches!(
            hasher
                .verify(&SecretString::from("wrong"), Some(&hash))
                .await
                .unwrap(),
            Verified::Mismatch
        ));
        // No user: checked against the dummy, never a match.
        assert!(matches!(
            hasher.verify(&pw, None).await.unwrap(),
            Verified::Mismatch
        ));

        let weak = PasswordHasher::with_params(
            1,
            Duration::from_secs(60),
            Params::new(8, 1, 1, None).unwrap(),
        )
        .unwrap();
        let old = weak.hash(&pw).await.unwrap();
        match hasher.verify(&pw, Some(&old)).await.unwrap() {
            Verified::Match { rehash: Some(new) } => {
                assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
            }
            other => panic!("expected a rehash, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_caller_waits_for_a_slot_at_most_the_queue_wait() {
        let hasher = PasswordHasher::with_params(
            1,
            Duration::from_millis(50),
            Params::new(8, 1, 1, None).unwrap(),
        )
        .unwrap();
        let held = hasher.permit().await.unwrap();
        // Bounded: without the queue wait this would never return.
        let waited = tokio::time::timeout(
            Duration::from_secs(30),
            hasher.verify(&SecretString::from("pw"), None),
        )
        .await
        .expect("the wait for a slot is bounded");
        assert!(matches!(waited, Err(HashError::Busy)), "{waited:?}");
        drop(held);
        assert!(hasher.verify(&SecretString::from("pw"), None).await.is_ok());
    }

    #[test]
    fn by_default_every_core_but_one_may_hash() {
        assert_eq!(default_concurrent_hashes(0), 1);
        assert_eq!(default_concurrent_hashes(1), 1);
        assert_eq!(default_concurrent_hashes(2), 1);
        assert_eq!(default_concurrent_hashes(8), 7);
    }
}
