//! Password hashing: argon2id at the OWASP parameters (m = 19 MiB, t = 2,
//! p = 1), on the blocking pool, at most `max_concurrent_hashes` at a time.
//! A hash costs tens of milliseconds of CPU and 19 MiB; without the bound a
//! burst of logins would occupy every core and starve token traffic.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

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
    params: Params,
    /// Verified against for unknown users, so that "no such user" takes as
    /// long as "wrong password".
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> Result<Self, HashError> {
        Self::with_params(
            max_concurrent,
            Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
                .map_err(|e| HashError::Argon2(e.to_string()))?,
        )
    }

    fn with_params(max_concurrent: usize, params: Params) -> Result<Self, HashError> {
        let dummy = hash_with(&params, "not a password of anyone")?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            params,
            dummy_hash: dummy.into(),
        })
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.clone();
        self.blocking(move || hash_with(&params, password.expose_secret()))
            .await?
    }

    /// Verifies `password` against `stored` (or against a dummy hash when
    /// there is no user), and says whether to rehash.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let params = self.params.clone();
        let password = password.clone();
        let known = stored.is_some();
        let stored: Arc<str> = stored.map_or_else(|| self.dummy_hash.clone(), Into::into);
        self.blocking(move || {
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

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Task)?;
        tokio::task::spawn_blocking(work)
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
        let hasher = PasswordHasher::new(2).unwrap();
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

        let weak = PasswordHasher::with_params(1, Params::new(8, 1, 1, None).unwrap()).unwrap();
        let old = weak.hash(&pw).await.unwrap();
        match hasher.verify(&pw, Some(&old)).await.unwrap() {
            Verified::Match { rehash: Some(new) } => {
                assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
            }
            other => panic!("expected a rehash, got {other:?}"),
        }
    }
}
