//! Web accounts (DESIGN.md §8): events of the `org` stream folded into the
//! registry, passwords kept only as Argon2id PHC strings, and the slowing-down of
//! repeated failed logins.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use traguardo_events::domain::OrgEvent;
use traguardo_events::model::{Role, ORG_STREAM};
use traguardo_events::{AppendBatch, NewEvent};
use traguardo_projections::UserAccount;
use uuid::Uuid;

use crate::commands::Principal;
use crate::error::{AppError, FieldError};
use crate::App;

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

/// A new account, as asked.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Username (the `actor_id`): lowercase letters, digits, `.`, `_`, `-`.
    pub username: String,
    /// The password, hashed before anything is stored.
    pub password: String,
    /// Display name written on events.
    pub actor: String,
    /// Role.
    pub role: Role,
    /// For managers, their units.
    pub units: Vec<String>,
}

impl App {
    /// Creates a web account (admin): the password is hashed with Argon2id and
    /// only its PHC string is stored, in a `user_created` event of `org`.
    ///
    /// # Errors
    /// [`AppError::Domain`] for a non-admin, [`AppError::Invalid`] naming every
    /// bad field, [`AppError::Conflict`] for a username taken.
    pub async fn create_user(
        &self,
        user: NewUser,
        principal: &Principal,
    ) -> Result<UserAccount, AppError> {
        principal.require_admin("gestire gli account")?;
        let username = user.username.trim().to_lowercase();
        let actor = user.actor.trim().to_string();
        let units: Vec<String> = user
            .units
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        let mut errors = Vec::new();
        if username.is_empty()
            || username.len() > 64
            || !username
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
        {
            errors.push(FieldError::new(
                "username",
                "da 1 a 64 caratteri: lettere minuscole, cifre, punto, trattino, trattino basso",
            ));
        }
        if user.password.chars().count() < MIN_PASSWORD {
            errors.push(FieldError::new(
                "password",
                format!("la password deve avere almeno {MIN_PASSWORD} caratteri"),
            ));
        }
        if actor.is_empty() || actor.chars().count() > 200 {
            errors.push(FieldError::new(
                "actor",
                "il nome da mostrare è obbligatorio (al massimo 200 caratteri)",
            ));
        }
        if user.role == Role::Manager && units.is_empty() {
            errors.push(FieldError::new(
                "units",
                "un dirigente ha almeno un'unità organizzativa",
            ));
        }
        if user.role != Role::Manager && !units.is_empty() {
            errors.push(FieldError::new(
                "units",
                "solo i dirigenti sono legati a unità organizzative",
            ));
        }
        let known = self.read(|r| {
            units
                .iter()
                .filter(|u| !r.plans().any(|p| p.unit(u).is_some()))
                .cloned()
                .collect::<Vec<_>>()
        });
        if !known.is_empty() {
            errors.push(FieldError::new(
                "units",
                format!("unità sconosciute: {}", known.join(", ")),
            ));
        }
        if self.read(|r| r.user(&username).is_some()) {
            errors.push(FieldError::new(
                "username",
                format!("l'account {username} esiste già"),
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let password = user.password;
        let phc = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| AppError::Internal(format!("hashing: {e}")))??;
        let event = OrgEvent::UserCreated {
            username: username.clone(),
            actor: actor.clone(),
            role: user.role,
            units: units.clone(),
            password_phc: phc.clone(),
        };
        let batch = AppendBatch::new().push(NewEvent::from_domain(
            ORG_STREAM,
            &event,
            &principal.actor(),
            None,
        )?);
        self.store().append_async(batch).await?;
        Ok(UserAccount {
            username,
            actor,
            role: user.role,
            units,
            password_phc: phc,
        })
    }

    /// Deletes a web account (admin); its sessions end at their next request.
    ///
    /// # Errors
    /// [`AppError::Domain`] for a non-admin, [`AppError::NotFound`] for an unknown
    /// username.
    pub async fn delete_user(&self, username: &str, principal: &Principal) -> Result<(), AppError> {
        principal.require_admin("gestire gli account")?;
        if !self.read(|r| r.user(username).is_some()) {
            return Err(AppError::NotFound(format!(
                "non esiste l'account {username}"
            )));
        }
        let event = OrgEvent::UserDeleted {
            username: username.to_string(),
        };
        let batch = AppendBatch::new().push(NewEvent::from_domain(
            ORG_STREAM,
            &event,
            &principal.actor(),
            None,
        )?);
        self.store().append_async(batch).await?;
        Ok(())
    }

    /// Revokes a bearer token (admin).
    ///
    /// # Errors
    /// [`AppError::Domain`] for a non-admin, [`AppError::NotFound`] for an unknown
    /// or revoked token.
    pub async fn revoke_token(
        &self,
        token_id: Uuid,
        principal: &Principal,
    ) -> Result<(), AppError> {
        principal.require_admin("revocare token")?;
        if !self.read(|r| r.tokens().any(|t| t.token_id == token_id)) {
            return Err(AppError::NotFound(format!(
                "non esiste il token {token_id}"
            )));
        }
        let event = OrgEvent::TokenRevoked { token_id };
        let batch = AppendBatch::new().push(NewEvent::from_domain(
            ORG_STREAM,
            &event,
            &principal.actor(),
            None,
        )?);
        self.store().append_async(batch).await?;
        Ok(())
    }

    /// The principal of a web account, if it exists.
    pub fn account_principal(&self, username: &str) -> Option<Principal> {
        self.read(|r| r.user(username).map(principal_of))
    }

    /// Checks a username and password (on a blocking thread: Argon2id is slow on
    /// purpose). A missing account costs the same as a wrong password.
    pub async fn check_password(&self, username: &str, password: &str) -> Option<Principal> {
        let account = self.read(|r| r.user(username).cloned());
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            let phc = account
                .as_ref()
                .map_or(DUMMY_PHC, |a| a.password_phc.as_str());
            let ok = verify_password(phc, &password);
            account.filter(|_| ok).map(|a| principal_of(&a))
        })
        .await
        .ok()
        .flatten()
    }
}

/// What an account may do, as a principal.
pub fn principal_of(account: &UserAccount) -> Principal {
    Principal {
        name: account.actor.clone(),
        // The username is the account's stable identity.
        actor_id: traguardo_events::identity::actor_id_of(&account.username),
        role: account.role,
        units: account.units.clone(),
    }
}

/// The Argon2id PHC string of a password (default parameters of the argon2 crate:
/// 19 MiB, 2 passes, 1 lane, as OWASP recommends).
///
/// # Errors
/// When no randomness is available for the salt.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(AppError::Randomness)?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| AppError::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("argon2: {e}")))
}

/// Whether `password` matches a PHC string.
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of nothing anyone knows, verified for unknown usernames so that they
/// take as long as known ones.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$N4d4hH8mWqQmZ5Tn0qW6o3pQxK1E3mQy0m8Wb9o0Jp8";

/// Failed logins, per username and per address: after the third failure in a
/// row, each further attempt must wait twice as long as the one before (2 s, 4 s,
/// … up to 15 minutes). A success clears the username's count.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Failures allowed before waiting starts.
const FREE_FAILURES: u32 = 3;
/// The longest wait.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

impl Throttle {
    /// How long `keys` must still wait before trying again, if at all.
    pub fn wait(&self, keys: &[String]) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|k| failures.get(k))
            .filter_map(|(count, last)| {
                let wait = delay(*count)?;
                wait.checked_sub(last.elapsed())
            })
            .max()
    }

    /// Counts a failure for each key.
    pub fn failed(&self, keys: &[String]) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, (_, last)| last.elapsed() < MAX_WAIT);
        }
        for key in keys {
            let entry = failures.entry(key.clone()).or_insert((0, Instant::now()));
            entry.0 += 1;
            entry.1 = Instant::now();
        }
    }

    /// Clears the count of a key after a success.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// The wait after `count` failures in a row.
fn delay(count: u32) -> Option<Duration> {
    let over = count.checked_sub(FREE_FAILURES)?;
    Some(Duration::from_secs(1u64 << (over + 1).min(20)).min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_and_nothing_else() {
        let phc = hash_password("una password lunga").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&phc, "una password lunga"));
        assert!(!verify_password(&phc, "un'altra password"));
        assert!(!verify_password(DUMMY_PHC, ""));
    }

    #[test]
    fn failures_beyond_three_wait_exponentially() {
        assert_eq!(delay(2), None);
        assert_eq!(delay(3), Some(Duration::from_secs(2)));
        assert_eq!(delay(4), Some(Duration::from_secs(4)));
        assert_eq!(delay(40), Some(MAX_WAIT));
        let throttle = Throttle::default();
        let keys = vec!["u:mario".to_string()];
        for _ in 0..2 {
            throttle.failed(&keys);
        }
        assert_eq!(throttle.wait(&keys), None);
        throttle.failed(&keys);
        assert!(throttle.wait(&keys).is_some());
        throttle.succeeded("u:mario");
        assert_eq!(throttle.wait(&keys), None);
    }
}
