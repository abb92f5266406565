//! Passwords: argon2id at OWASP's parameters, hashed on a fixed set of threads behind a
//! bounded queue fair between sources, a dummy hash so unknown accounts cost the same time as known ones, and a
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

/// Hashes and verifies on a fixed set of threads fed by a bounded, fair queue.
///
/// Each thread owns one argon2 memory buffer (19 MiB at our parameters), allocated on its first
/// job and reused for every later one, so the memory argon2 uses is `threads × 19 MiB`
/// whatever the load. A queued request holds only its password (at most [`MAX_BYTES`] + 1
/// bytes), the stored hash and a reply slot.
///
/// Requests are queued by source (a sign-in's network, an account) and the threads take them
/// round-robin, one source at a time, so a flood from one network delays another network's
/// sign-in by about one hash per flooding source, not by the whole queue. When the queue is
/// full, a request from a source with fewer waiting than the longest takes the place of that
/// source's newest, which is refused; otherwise the request itself is refused. A refusal is
/// immediate ([`ApiError::Overloaded`], 503 with `Retry-After`), never a wait behind a flood.
#[derive(Clone)]
pub struct Hasher {
    handle: std::sync::Arc<Handle>,
}

/// Closes the queue when the last [`Hasher`] clone is dropped, so the threads end.
struct Handle {
    queue: std::sync::Arc<FairQueue>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// What a refused or failed job answers.
enum Failure {
    /// Pushed out of a full queue by a source with fewer waiting.
    Overloaded,
    /// Argon2 or the stored hash failed.
    Error(String),
}

enum Job {
    Hash {
        password: Vec<u8>,
        reply: tokio::sync::oneshot::Sender<Result<String, Failure>>,
    },
    Verify {
        password: Vec<u8>,
        hash: Option<String>,
        reply: tokio::sync::oneshot::Sender<Result<bool, Failure>>,
    },
}

impl Job {
    /// Answers the caller that the queue had no room for it.
    fn refuse(self) {
        metrics::counter!("aftercare_password_hashes_refused_total").increment(1);
        match self {
            Job::Hash { reply, .. } => {
                let _ = reply.send(Err(Failure::Overloaded));
            }
            Job::Verify { reply, .. } => {
                let _ = reply.send(Err(Failure::Overloaded));
            }
        }
    }
}

/// Waiting jobs by source, served round-robin.
#[derive(Default)]
struct Queues {
    by_source: std::collections::HashMap<String, std::collections::VecDeque<Job>>,
    /// Sources with waiting jobs, in the order they are served.
    turns: std::collections::VecDeque<String>,
    waiting: usize,
    closed: bool,
}

struct FairQueue {
    capacity: usize,
    queues: std::sync::Mutex<Queues>,
    ready: std::sync::Condvar,
}

impl FairQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        // A thread that panicked holding the lock left the queues consistent (every change
        // is completed before the lock is released).
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `job` for `source`; when full, the longest source's newest job gives way if
    /// that source has more waiting than `source` would. The refused job is answered.
    fn push(&self, source: &str, job: Job) -> Result<(), ApiError> {
        let mut q = self.lock();
        if q.closed {
            return Err(ApiError::internal(
                "the password hashing threads have stopped",
            ));
        }
        if q.waiting >= self.capacity {
            let mine = q.by_source.get(source).map_or(0, |j| j.len());
            let longest = q
                .by_source
                .iter()
                .max_by_key(|(_, jobs)| jobs.len())
                .filter(|(_, jobs)| jobs.len() > mine + 1)
                .map(|(s, _)| s.clone());
            let Some(longest) = longest else {
                drop(q);
                job.refuse();
                return Err(ApiError::Overloaded);
            };
            let evicted = q
                .by_source
                .get_mut(&longest)
                .and_then(|jobs| jobs.pop_back());
            if let Some(evicted) = evicted {
                q.waiting -= 1;
                evicted.refuse();
            }
        }
        let jobs = q.by_source.entry(source.to_owned()).or_default();
        jobs.push_back(job);
        if jobs.len() == 1 {
            q.turns.push_back(source.to_owned());
        }
        q.waiting += 1;
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, taking sources in turn; `None` once closed.
    fn pop(&self) -> Option<Job> {
        let mut q = self.lock();
        loop {
            if q.closed {
                return None;
            }
            while let Some(source) = q.turns.pop_front() {
                let Some(jobs) = q.by_source.get_mut(&source) else {
                    continue;
                };
                let job = jobs.pop_front();
                if jobs.is_empty() {
                    q.by_source.remove(&source);
                } else {
                    q.turns.push_back(source);
                }
                if let Some(job) = job {
                    q.waiting -= 1;
                    return Some(job);
                }
            }
            q = self
                .ready
                .wait(q)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
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

    fn run(mut self, jobs: &FairQueue) {
        // None once every Hasher is gone: the service has stopped.
        while let Some(job) = jobs.pop() {
            match job {
                // A caller that gave up (its client went away) costs nothing more.
                Job::Hash { password, reply } => {
                    if !reply.is_closed() {
                        let _ = reply.send(self.hash(&password).map_err(Failure::Error));
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
                            .map(|ok| ok && known && password.len() <= MAX_BYTES)
                            .map_err(Failure::Error);
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

/// A job's answer as the caller sees it.
async fn answer<T>(
    reply: tokio::sync::oneshot::Receiver<Result<T, Failure>>,
) -> Result<T, ApiError> {
    match reply.await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(Failure::Overloaded)) => Err(ApiError::Overloaded),
        Ok(Err(Failure::Error(e))) => Err(ApiError::internal(e)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

impl Hasher {
    /// A hasher with `threads` hashing threads and room for `queue` waiting requests.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        // Compute the dummy once at start, not on the first unknown-account login.
        let _ = dummy_hash();
        let fair = std::sync::Arc::new(FairQueue {
            capacity: queue.max(1),
            queues: Default::default(),
            ready: std::sync::Condvar::new(),
        });
        for i in 0..threads.max(1) {
            let fair = fair.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || Worker { blocks: Vec::new() }.run(&fair))?;
        }
        Ok(Self {
            handle: std::sync::Arc::new(Handle { queue: fair }),
        })
    }

    /// Hashes a password (PHC string). `source` is whom the request is queued for (see
    /// [`Hasher`]): the client's network for a sign-in, the account for a signed-in change.
    pub async fn hash(&self, source: &str, password: String) -> Result<String, ApiError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.handle.queue.push(
            source,
            Job::Hash {
                password: bounded(password),
                reply,
            },
        )?;
        answer(rx).await
    }

    /// Verifies `password` against `hash`; with `None` verifies against a dummy so the time
    /// taken does not reveal whether the account exists. `source` as for [`Hasher::hash`].
    pub async fn verify(
        &self,
        source: &str,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.handle.queue.push(
            source,
            Job::Verify {
                password: bounded(password),
                hash,
                reply,
            },
        )?;
        answer(rx).await
    }
}

/// The hashing queue's source for a signed-in account's own request.
pub fn account_source(user_id: &str) -> String {
    format!("account:{user_id}")
}

/// The hashing queue's source for a request from a client address (its network, as the
/// sign-in throttle counts them).
pub fn network_source(client_ip: &str) -> String {
    format!(
        "network:{}",
        crate::service::sign_in_throttle::network_of(client_ip)
    )
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

    fn queue(capacity: usize) -> FairQueue {
        FairQueue {
            capacity,
            queues: Default::default(),
            ready: std::sync::Condvar::new(),
        }
    }

    type Answer = tokio::sync::oneshot::Receiver<Result<bool, Failure>>;

    /// Queues a verification whose password is `name`, returning its answer slot.
    fn push(q: &FairQueue, source: &str, name: &str) -> (Result<(), ApiError>, Answer) {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job::Verify {
            password: name.as_bytes().to_vec(),
            hash: None,
            reply,
        };
        (q.push(source, job), rx)
    }

    fn name(job: Job) -> String {
        match job {
            Job::Verify { password, .. } | Job::Hash { password, .. } => {
                String::from_utf8(password).unwrap()
            }
        }
    }

    fn refused(rx: &mut Answer) -> bool {
        matches!(rx.try_recv(), Ok(Err(Failure::Overloaded)))
    }

    #[test]
    fn sources_are_served_in_turn() {
        let q = queue(10);
        for n in ["a1", "a2", "a3"] {
            assert!(push(&q, "a", n).0.is_ok());
        }
        assert!(push(&q, "b", "b1").0.is_ok());
        assert!(push(&q, "c", "c1").0.is_ok());
        let order: Vec<String> = (0..5).map(|_| name(q.pop().unwrap())).collect();
        assert_eq!(order, ["a1", "b1", "c1", "a2", "a3"]);
    }

    #[test]
    fn a_full_queue_makes_room_for_a_source_with_fewer_waiting() {
        let q = queue(4);
        let mut flood: Vec<Answer> = ["a1", "a2", "a3"]
            .iter()
            .map(|n| push(&q, "a", n).1)
            .collect();
        // One below capacity: nothing is refused.
        let (ok, mut b1) = push(&q, "b", "b1");
        assert!(ok.is_ok());
        assert!(!flood.iter_mut().any(refused));
        // Full: another source with fewer waiting pushes out the longest's newest.
        let (ok, mut c1) = push(&q, "c", "c1");
        assert!(ok.is_ok());
        assert!(refused(&mut flood[2]));
        assert!(!refused(&mut flood[0]) && !refused(&mut flood[1]));
        // a has 2, b 1, c 1: a third from a, or a second from b, has no one to push out.
        let (full, mut a4) = push(&q, "a", "a4");
        assert!(matches!(full, Err(ApiError::Overloaded)));
        assert!(refused(&mut a4));
        let (full, _) = push(&q, "b", "b2");
        assert!(matches!(full, Err(ApiError::Overloaded)));
        // A source with none waiting still gets in (a has 2 > 0 + 1).
        assert!(push(&q, "d", "d1").0.is_ok());
        let order: Vec<String> = (0..4).map(|_| name(q.pop().unwrap())).collect();
        assert_eq!(order, ["a1", "b1", "c1", "d1"]);
        assert!(!refused(&mut b1) && !refused(&mut c1));
    }

    #[test]
    fn a_closed_queue_ends_its_threads_and_takes_no_more() {
        let q = queue(2);
        q.close();
        assert!(q.pop().is_none());
        assert!(push(&q, "a", "a1").0.is_err());
    }

    #[actix_web::test]
    async fn one_source_flooding_does_not_keep_another_out() {
        let h = Hasher::new(1, 4).unwrap();
        let flood: Vec<_> = (0..12)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.verify("flood", "guess".into(), None).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!h.verify("other", "mine".into(), None).await.unwrap());
        let mut busy = 0;
        for f in flood {
            if matches!(f.await.unwrap(), Err(ApiError::Overloaded)) {
                busy += 1;
            }
        }
        assert!(
            busy >= 7,
            "one thread and four places cannot take twelve: {busy}"
        );
    }

    #[actix_web::test]
    async fn hash_and_verify() {
        let h = Hasher::new(2, 4).unwrap();
        let hash = h.hash("t", "tidal-marsh-lantern".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h
            .verify("t", "tidal-marsh-lantern".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!h
            .verify("t", "tidal-marsh-lantern!".into(), Some(hash))
            .await
            .unwrap());
        assert!(!h.verify("t", "anything".into(), None).await.unwrap());
    }
}
