//! Passwords: argon2id at OWASP's parameters, hashed on a fixed set of threads behind a
//! bounded queue, a dummy hash so unknown accounts cost the same time as known ones, and a
//! strength check by zxcvbn with the user's own name and email as context.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::domain::validation::FieldError;
use crate::error::ApiError;

/// Shortest password accepted, in characters.
pub const MIN_LENGTH: usize = 12;
/// Longest password accepted, in bytes; checked before hashing so nobody can make us hash
/// megabytes.
pub const MAX_BYTES: usize = 128;

/// Ten thousand of the most common passwords (the top of zxcvbn's frequency list, MIT
/// licence, built from public password leaks) and every entry of twelve characters or more
/// on that list, lower-cased, one per line.
static COMMON: &str = include_str!("common_passwords.txt");

fn common() -> &'static std::collections::HashSet<&'static str> {
    static SET: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().map(str::trim).collect())
}

/// Whether a (lower-cased) password is a common one, or a common one padded with digits and
/// symbols at either end ("password1234", "2026sunshine!") to reach the minimum length.
fn is_common(lower: &str) -> bool {
    let padding = |c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace();
    let core = lower.trim_matches(padding);
    common().contains(lower) || core.chars().count() < 4 || common().contains(core)
}

fn argon2() -> Argon2<'static> {
    // m = 19 MiB, t = 2, p = 1: OWASP's recommended minimum for argon2id.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy; `field` names it in the error.
pub fn check_policy(field: &str, password: &str, context: &[&str]) -> Result<(), FieldError> {
    if password.len() > MAX_BYTES {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_BYTES} bytes"),
        ));
    }
    if password.chars().count() < MIN_LENGTH {
        return Err(FieldError::new(
            field,
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    }
    let lower = password.to_lowercase();
    if is_common(&lower) {
        return Err(FieldError::new(
            field,
            "is too common; choose a less guessable password",
        ));
    }
    let mut chars = lower.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err(FieldError::new(field, "must not repeat one character"));
        }
    }
    for c in context {
        let c = c.trim().to_lowercase();
        if c.len() >= 4 && lower.contains(&c) {
            return Err(FieldError::new(
                field,
                "must not contain your email or name",
            ));
        }
    }
    if built_from_own_words(&lower, context) {
        return Err(FieldError::new(
            field,
            "is built from your name or email; add words of your own that are not about you",
        ));
    }
    let inputs = user_inputs(context);
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    // The estimator is arithmetic on untrusted input: should it ever panic, the checks above
    // stand and the request does not fail.
    let estimate = std::panic::catch_unwind(|| zxcvbn::zxcvbn(password, &inputs));
    match estimate {
        Ok(estimate) if estimate.score() < MIN_SCORE => {
            Err(FieldError::new(field, weak_message(&estimate)))
        }
        _ => Ok(()),
    }
}

/// zxcvbn's score a new password must reach: 3 is "safely unguessable" (about 10^10 guesses
/// in zxcvbn's model), what its authors recommend as the minimum.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// Words anyone guessing a password for this service would try first.
const SERVICE_WORDS: [&str; 16] = [
    "aftercare",
    "recovery",
    "sober",
    "sobriety",
    "clean",
    "clinic",
    "counsellor",
    "counselor",
    "patient",
    "opioid",
    "heroin",
    "fentanyl",
    "methadone",
    "suboxone",
    "naloxone",
    "relapse",
];

/// The user's own words (email, its parts, each word of their name) and the service's, for
/// zxcvbn to treat as the first guesses.
fn user_inputs(context: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = SERVICE_WORDS.iter().map(|w| (*w).to_owned()).collect();
    for c in context {
        let c = c.trim().to_lowercase();
        if c.is_empty() {
            continue;
        }
        out.extend(
            c.split(|ch: char| !ch.is_alphanumeric())
                .filter(|part| part.chars().count() >= 3)
                .map(str::to_owned),
        );
        out.push(c);
    }
    out.sort();
    out.dedup();
    out
}

/// Whether little but the user's own words (name, email, each forwards or backwards) is left
/// of a password once they are taken out: zxcvbn scores "okafordana12" as fair, but it is the
/// first thing someone who knows Dana Okafor would try.
fn built_from_own_words(lower: &str, context: &[&str]) -> bool {
    let mut words: Vec<String> = Vec::new();
    for c in context {
        let c = c.trim().to_lowercase();
        for part in c.split(|ch: char| !ch.is_alphanumeric()) {
            if part.chars().count() >= 3 {
                words.push(part.to_owned());
                words.push(part.chars().rev().collect());
            }
        }
    }
    if words.is_empty() {
        return false;
    }
    // Longest first, so "danielle" goes before "dan".
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    let mut rest = lower.to_owned();
    for w in &words {
        rest = rest.replace(w.as_str(), " ");
    }
    if rest == lower {
        return false;
    }
    rest.chars().filter(|c| c.is_alphabetic()).count() < 4
}

/// What is wrong with a weak password and how to do better, in zxcvbn's words.
fn weak_message(estimate: &zxcvbn::Entropy) -> String {
    let mut message = String::from("is too easy to guess");
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            message.push_str(&format!(": {warning}"));
        }
        let tips: Vec<String> = feedback
            .suggestions()
            .iter()
            .map(ToString::to_string)
            .collect();
        if !tips.is_empty() {
            message.push_str(&format!(" {}", tips.join(" ")));
        }
    }
    if !message.ends_with('.') {
        message.push('.');
    }
    message.push_str(" A few unrelated words together make a strong password.");
    message
}

/// Hashes and verifies on a fixed set of threads fed by a bounded queue.
///
/// Each thread owns one argon2 memory buffer (19 MiB at our parameters), allocated on its first
/// job and reused for every later one, so the memory argon2 uses is `threads × 19 MiB`
/// whatever the load. A queued request holds only its password (at most [`MAX_BYTES`] + 1
/// bytes), the stored hash and a reply slot. When the queue is full the caller is told at
/// once ([`ApiError::Overloaded`], 503 with `Retry-After`) instead of waiting behind a flood,
/// so a sign-in either starts within `queue × hash time / threads` or is refused quickly.
#[derive(Clone)]
pub struct Hasher {
    queue: std::sync::mpsc::SyncSender<Job>,
}

enum Job {
    Hash {
        password: Vec<u8>,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
    Verify {
        password: Vec<u8>,
        hash: Option<String>,
        reply: tokio::sync::oneshot::Sender<Result<bool, String>>,
    },
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"not a real password, never matches", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// The most argon2 memory a stored hash may ask for (64 MiB); a hash asking for more is
/// refused rather than allocated.
const MAX_BLOCKS: usize = 64 * 1024;

/// One hashing thread's reusable state.
struct Worker {
    blocks: Vec<Block>,
}

impl Worker {
    fn memory(&mut self, blocks: usize) -> Result<&mut [Block], String> {
        if blocks > MAX_BLOCKS {
            return Err(format!("a stored hash asks for {blocks} KiB of memory"));
        }
        if self.blocks.len() < blocks {
            self.blocks.resize(blocks, Block::default());
        }
        Ok(&mut self.blocks[..blocks])
    }

    fn hash(&mut self, password: &[u8]) -> Result<String, String> {
        let hasher = argon2();
        let params = hasher.params().clone();
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| e.to_string())?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let memory = self.memory(params.block_count())?;
        hasher
            .hash_password_into_with_memory(password, salt_bytes, &mut out, memory)
            .map_err(|e| e.to_string())?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
        };
        Ok(phc.to_string())
    }

    fn verify(&mut self, password: &[u8], phc: &str) -> Result<bool, String> {
        let parsed = PasswordHash::new(phc).map_err(|e| e.to_string())?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(|e| e.to_string())?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err("a stored hash without salt or output".into());
        };
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| e.to_string())?;
        let mut out = [0u8; Output::MAX_LENGTH];
        let out = &mut out[..expected.len()];
        let memory = self.memory(params.block_count())?;
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt_bytes, out, memory)
            .map_err(|e| e.to_string())?;
        // Output's equality is constant-time.
        Ok(Output::new(out).map_err(|e| e.to_string())? == expected)
    }

    fn run(mut self, jobs: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>) {
        loop {
            let job = match jobs.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            // Every sender is gone: the service has stopped.
            let Ok(job) = job else { return };
            match job {
                // A caller that gave up (its client went away) costs nothing more.
                Job::Hash { password, reply } => {
                    if !reply.is_closed() {
                        let _ = reply.send(self.hash(&password));
                    }
                }
                Job::Verify {
                    password,
                    hash,
                    reply,
                } => {
                    if !reply.is_closed() {
                        let known = hash.is_some();
                        let hash = hash.as_deref().unwrap_or_else(|| dummy_hash());
                        let result = self
                            .verify(&password, hash)
                            .map(|ok| ok && known && password.len() <= MAX_BYTES);
                        let _ = reply.send(result);
                    }
                }
            }
        }
    }
}

/// At most one byte over the limit is kept: enough to know the password was too long.
fn bounded(password: String) -> Vec<u8> {
    let mut bytes = password.into_bytes();
    bytes.truncate(MAX_BYTES + 1);
    bytes
}

impl Hasher {
    /// A hasher with `threads` hashing threads and room for `queue` waiting requests.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        // Compute the dummy once at start, not on the first unknown-account login.
        let _ = dummy_hash();
        let (tx, rx) = std::sync::mpsc::sync_channel(queue.max(1));
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || Worker { blocks: Vec::new() }.run(&rx))?;
        }
        Ok(Self { queue: tx })
    }

    fn submit(&self, job: Job) -> Result<(), ApiError> {
        use std::sync::mpsc::TrySendError;
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                metrics::counter!("aftercare_password_hashes_refused_total").increment(1);
                Err(ApiError::Overloaded)
            }
            Err(TrySendError::Disconnected(_)) => Err(ApiError::internal(
                "the password hashing threads have stopped",
            )),
        }
    }

    /// Hashes a password (PHC string).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Hash {
            password: bounded(password),
            reply,
        })?;
        answer
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// Verifies `password` against `hash`; with `None` verifies against a dummy so the time
    /// taken does not reveal whether the account exists.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Verify {
            password: bounded(password),
            hash,
            reply,
        })?;
        answer
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_boundaries() {
        assert!(check_policy("password", "short-pass1", &[]).is_err()); // 11 chars
        assert!(check_policy("password", "harbour-lamp", &[]).is_ok()); // 12 chars
        assert!(check_policy("password", &"x".repeat(129), &[]).is_err());
        let long = "tidal-marsh-lantern-quay-".repeat(6);
        assert!(check_policy("password", &long[..127], &[]).is_ok()); // 127 bytes
        assert!(check_policy("password", "Password1234", &[]).is_err());
        assert!(check_policy("password", "aaaaaaaaaaaaaa", &[]).is_err());
        assert!(check_policy(
            "password",
            "jordan-likes-tea",
            &["jordan@example.org", "Jordan"]
        )
        .is_err());
    }

    #[test]
    fn common_passwords_padded_to_length_are_refused() {
        for weak in [
            "sunshine2026!",
            "2026Sunshine",
            "monkey!!!!!!",
            "1qaz2wsx3edc",
            "qwertyuiop12",
            "1234567890123",
            "password-2026",
            "ab12345678901",
        ] {
            assert!(check_policy("password", weak, &[]).is_err(), "{weak}");
        }
        for fine in [
            "correct-lantern-harbour",
            "tidal-marsh-lantern",
            "sunshine over the harbour",
            "demo-password-2026",
            // aftercare-load's patients and the README's benchmark admin.
            "bench-passphrase-river-7",
            "load-bench-password-2026",
        ] {
            assert!(check_policy("password", fine, &[]).is_ok(), "{fine}");
        }
    }

    #[test]
    fn the_strength_estimator_refuses_what_the_list_alone_let_through() {
        for weak in [
            "michael12345",
            "ashley123456",
            "trustno1trustno1",
            "iloveyouiloveyou",
            "heroinheroin",
            "aftercare2026",
            "Recovery2026!",
        ] {
            let e = check_policy("password", weak, &[]).unwrap_err();
            assert!(
                e.message.starts_with("is too easy to guess"),
                "{weak}: {}",
                e.message
            );
        }
    }

    #[test]
    fn passwords_built_from_the_users_own_name_are_refused() {
        let me = ["dana.okafor@example.org", "Dana Okafor"];
        for weak in [
            "okafordana12",
            "Dana-Okafor-1",
            "danaokafor2026",
            "rofako-anad!",
        ] {
            assert!(check_policy("password", weak, &me).is_err(), "{weak}");
        }
        assert!(check_policy("password", "tidal-marsh-lantern", &me).is_ok());
    }

    #[actix_web::test]
    async fn hash_and_verify() {
        let h = Hasher::new(2, 4).unwrap();
        let hash = h.hash("tidal-marsh-lantern".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h
            .verify("tidal-marsh-lantern".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!h
            .verify("tidal-marsh-lantern!".into(), Some(hash))
            .await
            .unwrap());
        assert!(!h.verify("anything".into(), None).await.unwrap());
    }
}
