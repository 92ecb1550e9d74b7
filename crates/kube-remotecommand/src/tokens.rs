//! Streaming URL tokens, as kubelet's streaming server keeps them: random,
//! single use, valid for one minute, at most a thousand outstanding.

use crate::Error;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const TOKEN_TTL: Duration = Duration::from_secs(60);
pub const MAX_TOKENS: usize = 1000;

/// Tokens and what each stands for.
pub struct TokenCache<T> {
    map: HashMap<String, (T, Instant)>,
}

impl<T> Default for TokenCache<T> {
    fn default() -> Self {
        TokenCache {
            map: HashMap::new(),
        }
    }
}

impl<T> TokenCache<T> {
    /// A new token for `target`, issued at `now`.
    pub fn insert_at(&mut self, target: T, now: Instant) -> Result<String, Error> {
        self.map
            .retain(|_, (_, t)| now.duration_since(*t) < TOKEN_TTL);
        if self.map.len() >= MAX_TOKENS {
            return Err(Error::TooManyRequests { max: MAX_TOKENS });
        }
        loop {
            let token = random_token();
            if !self.map.contains_key(&token) {
                self.map.insert(token.clone(), (target, now));
                return Ok(token);
            }
        }
    }

    /// The token's target, once; `None` for unknown, used or expired tokens.
    pub fn take_at(&mut self, token: &str, now: Instant) -> Option<T> {
        let (target, t) = self.map.remove(token)?;
        (now.duration_since(t) < TOKEN_TTL).then_some(target)
    }
}

fn random_token() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_single_use_and_expire() {
        let mut c = TokenCache::default();
        let t0 = Instant::now();
        let a = c.insert_at("pf", t0).unwrap();
        assert!(a.len() >= 8 && a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(c.take_at(&a, t0), Some("pf"));
        assert!(c.take_at(&a, t0).is_none(), "reused");
        let b = c.insert_at("pf", t0).unwrap();
        assert!(c.take_at(&b, t0 + TOKEN_TTL).is_none(), "expired");
        assert!(c.take_at("nope", t0).is_none());
    }

    #[test]
    fn at_most_a_thousand_outstanding_tokens() {
        let mut c = TokenCache::default();
        let t0 = Instant::now();
        for _ in 0..MAX_TOKENS {
            c.insert_at((), t0).unwrap();
        }
        assert!(matches!(
            c.insert_at((), t0),
            Err(Error::TooManyRequests { .. })
        ));
        // Expired ones make room again.
        assert!(c.insert_at((), t0 + TOKEN_TTL).is_ok());
    }
}
