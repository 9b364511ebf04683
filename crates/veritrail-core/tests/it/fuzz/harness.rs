//! The fuzzing harness of veritrail's fuzz tests: seeded random generation and mutation in
//! ordinary `#[test]`s, on the stable toolchain (no libFuzzer, no nightly).
//!
//! [`run`] drives one target: case `i` of a run gets its own generator, seeded from the base
//! seed, the target's name and `i`, so any case can be replayed alone. The target's `generate`
//! makes an input from it and `check` asserts the target's properties (a panic is a
//! failure). A watchdog fails the run when one case takes longer than the per-case bound
//! (a hang), and a failure prints the case, its input and the command that replays it.
//!
//! Shared by the fuzz tests of `veritrail-core` and `veritrail-server` (the latter includes
//! this file with `#[path]`). Run them long with `scripts/fuzz`. The environment:
//!
//! - `VERITRAIL_FUZZ_CASES`: cases per target (default: each target's count for CI, chosen
//!   so that all of them take about 13 s in the debug test profile, CI's budget being 20 s).
//! - `VERITRAIL_FUZZ_SEED`: the base seed, decimal or `0x` hex (default fixed, so CI runs
//!   are reproducible).
//! - `VERITRAIL_FUZZ_CASE`: replay only this case index (its input is printed first).
//! - `VERITRAIL_FUZZ_CASE_SECS`: the longest one case may take (default 10 s).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The base seed when `VERITRAIL_FUZZ_SEED` is not set.
pub(crate) const DEFAULT_SEED: u64 = 0x5eed_7a11_f022_cafe;

/// SplitMix64: small, fast, and good enough to drive generators.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        usize::try_from((u128::from(self.next_u64()) * u128::from(n)) >> 64).unwrap_or(0)
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True one time in `n`.
    pub(crate) fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    pub(crate) fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A size up to `max`, small ones far more likely (each bit length equally likely).
    pub(crate) fn size(&mut self, max: usize) -> usize {
        let bits = usize::BITS - max.leading_zeros();
        let width = self.below(usize::try_from(bits).unwrap_or(0) + 1);
        let top = if width >= 64 {
            usize::MAX
        } else {
            (1usize << width) - 1
        };
        self.range(0, top.min(max))
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

/// The SplitMix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of a target's name, so that each target draws other inputs from the same seed.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The seed of case `index` of `target`.
pub(crate) fn case_seed(base: u64, target: &str, index: u64) -> u64 {
    mix(mix(base ^ name_hash(target)).wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim().replace('_', "");
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
}

/// How many cases each target runs: `VERITRAIL_FUZZ_CASES`, else `default`.
pub(crate) fn cases(default: u64) -> u64 {
    env_u64("VERITRAIL_FUZZ_CASES").unwrap_or(default)
}

/// What a case did with its input, for the run's statistics (a target whose inputs are all
/// rejected tests little).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    Rejected,
}

impl From<bool> for Verdict {
    fn from(accepted: bool) -> Self {
        if accepted {
            Self::Accepted
        } else {
            Self::Rejected
        }
    }
}

/// Why a run failed.
struct Failure {
    index: u64,
    message: String,
    input: Option<String>,
}

/// Longest input text shown in a failure report.
const SHOWN_INPUT: usize = 4000;

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn shown<I: fmt::Debug>(input: &I) -> String {
    let mut text = format!("{input:?}");
    if text.len() > SHOWN_INPUT {
        let mut cut = SHOWN_INPUT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let total = text.len();
        text.truncate(cut);
        text.push_str(&format!(
            "… ({total} bytes in all; replay the case to see it whole)"
        ));
    }
    text
}

/// Runs `target`: `cases(default_cases)` inputs from `generate`, each checked by `check`.
///
/// Fails on the first case whose generation or check panics, or that takes longer than the
/// per-case bound, printing the case index, its input and how to replay it; prints the
/// throughput (cases/s) and the share of inputs accepted.
pub(crate) fn run<I, G, C>(target: &'static str, default_cases: u64, generate: G, check: C)
where
    I: fmt::Debug + 'static,
    G: Fn(&mut Rng) -> I + Send + 'static,
    C: Fn(&I) -> Verdict + Send + 'static,
{
    let base = env_u64("VERITRAIL_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let replay = env_u64("VERITRAIL_FUZZ_CASE");
    let n_cases = if replay.is_some() {
        1
    } else {
        cases(default_cases)
    };
    let case_bound = Duration::from_secs(env_u64("VERITRAIL_FUZZ_CASE_SECS").unwrap_or(10));
    let started = Instant::now();
    // The index of the case being run (+1), and when it started (ms since `started`).
    let current = Arc::new(AtomicU64::new(0));
    let current_since = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let worker = {
        let (current, current_since, finished) = (
            Arc::clone(&current),
            Arc::clone(&current_since),
            Arc::clone(&finished),
        );
        std::thread::Builder::new()
            .name(format!("fuzz-{target}"))
            .spawn(move || {
                let mut accepted = 0u64;
                let mut slowest = (Duration::ZERO, 0u64);
                let indices = match replay {
                    Some(index) => index..index + 1,
                    None => 0..n_cases,
                };
                for index in indices {
                    let case_start = Instant::now();
                    current_since.store(
                        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                    current.store(index + 1, Ordering::Release);
                    let mut rng = Rng::new(case_seed(base, target, index));
                    let input = match catch_unwind(AssertUnwindSafe(|| generate(&mut rng))) {
                        Ok(input) => input,
                        Err(payload) => {
                            finished.store(true, Ordering::Release);
                            return Err(Failure {
                                index,
                                message: format!(
                                    "the generator panicked: {}",
                                    panic_message(payload.as_ref())
                                ),
                                input: None,
                            });
                        }
                    };
                    if replay.is_some() {
                        eprintln!("fuzz {target}: case {index} input: {input:?}");
                    }
                    match catch_unwind(AssertUnwindSafe(|| check(&input))) {
                        Ok(Verdict::Accepted) => accepted += 1,
                        Ok(Verdict::Rejected) => {}
                        Err(payload) => {
                            finished.store(true, Ordering::Release);
                            return Err(Failure {
                                index,
                                message: panic_message(payload.as_ref()),
                                input: Some(shown(&input)),
                            });
                        }
                    }
                    let took = case_start.elapsed();
                    if took > slowest.0 {
                        slowest = (took, index);
                    }
                }
                finished.store(true, Ordering::Release);
                Ok((accepted, slowest))
            })
            .expect("spawn the fuzz worker")
    };
    let replay_hint = |index: u64| {
        format!(
            "replay: VERITRAIL_FUZZ_SEED={base:#x} VERITRAIL_FUZZ_CASE={index} cargo test -p {} --test it -- {target} --nocapture",
            env!("CARGO_PKG_NAME"),
        )
    };
    // The watchdog: a case that runs past the bound is a hang; its thread is left behind.
    while !finished.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
        let running = current.load(Ordering::Acquire);
        let since = Duration::from_millis(current_since.load(Ordering::Relaxed));
        if running > 0
            && !finished.load(Ordering::Acquire)
            && started.elapsed().saturating_sub(since) > case_bound + Duration::from_secs(1)
            && current.load(Ordering::Acquire) == running
        {
            panic!(
                "fuzz target {target}: case {} has run for more than {case_bound:?} (a hang?)\n{}",
                running - 1,
                replay_hint(running - 1)
            );
        }
    }
    let outcome = worker.join().expect("the fuzz worker does not panic");
    match outcome {
        Ok((accepted, (slowest, slowest_index))) => {
            let secs = started.elapsed().as_secs_f64();
            let ran = if replay.is_some() { 1 } else { n_cases };
            let (rate, share) = (
                ran as f64 / secs.max(1e-9),
                100.0 * accepted as f64 / (ran.max(1) as f64),
            );
            eprintln!(
                "fuzz {target:<22} {ran:>9} cases {secs:>8.2} s {rate:>10.0} cases/s  \
                 accepted {share:5.1}%  slowest {:.1} ms (case {slowest_index})  seed {base:#x}",
                slowest.as_secs_f64() * 1000.0
            );
            assert!(
                slowest <= case_bound,
                "fuzz target {target}: case {slowest_index} took {slowest:?}, more than {case_bound:?}\n{}",
                replay_hint(slowest_index)
            );
        }
        Err(failure) => panic!(
            "fuzz target {target} failed at case {} (case seed {:#018x}): {}\ninput: {}\n{}",
            failure.index,
            case_seed(base, target, failure.index),
            failure.message,
            failure.input.as_deref().unwrap_or("(not generated)"),
            replay_hint(failure.index)
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Byte-level mutation
// ---------------------------------------------------------------------------------------

/// Bytes worth inserting or overwriting with in any text format.
pub(crate) const INTERESTING_BYTES: &[u8] = &[
    0x00, 0x01, 0x08, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x22, 0x27, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30,
    0x31, 0x39, 0x3a, 0x5b, 0x5c, 0x5d, 0x7b, 0x7d, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xef, 0xf0,
    0xf4, 0xff,
];

/// Applies 1 to `max_steps` random edits to `bytes`: bit flips, byte changes (random,
/// interesting, off by one), deletion, insertion (random bytes or a `dictionary` token),
/// duplication of a range, overwriting one range with another, truncation.
pub(crate) fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, dictionary: &[&[u8]], max_steps: usize) {
    for _ in 0..rng.range(1, max_steps.max(1)) {
        let len = bytes.len();
        match rng.below(10) {
            0 if len > 0 => {
                let at = rng.below(len);
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                bytes[at] = if rng.bool() {
                    rng.byte()
                } else {
                    *rng.pick(INTERESTING_BYTES)
                };
            }
            2 if len > 0 => {
                let at = rng.below(len);
                bytes[at] = if rng.bool() {
                    bytes[at].wrapping_add(1)
                } else {
                    bytes[at].wrapping_sub(1)
                };
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = rng.size(len - at).max(1);
                bytes.drain(at..at + n);
            }
            4 => {
                let at = rng.below(len + 1);
                let n = rng.size(16).max(1);
                let new = rng.bytes(n);
                bytes.splice(at..at, new);
            }
            5 if !dictionary.is_empty() => {
                let at = rng.below(len + 1);
                let token = rng.pick(dictionary).to_vec();
                bytes.splice(at..at, token);
            }
            6 if len > 0 => {
                let from = rng.below(len);
                let n = rng.size(len - from).max(1);
                let chunk = bytes[from..from + n].to_vec();
                let at = rng.below(len + 1);
                bytes.splice(at..at, chunk);
            }
            7 if len > 1 => {
                let from = rng.below(len);
                let n = rng.size(len - from).max(1);
                let chunk = bytes[from..from + n].to_vec();
                let at = rng.below(len);
                let end = (at + n).min(len);
                bytes.splice(at..end, chunk);
            }
            8 if len > 0 => {
                let keep = rng.below(len);
                bytes.truncate(keep);
            }
            _ => {
                let at = rng.below(len + 1);
                bytes.insert(at, *rng.pick(INTERESTING_BYTES));
            }
        }
    }
}

/// A text after [`mutate`]: the mutated bytes as UTF-8, lossily (most of the parsers under
/// test take `&str`).
pub(crate) fn mutate_text(
    rng: &mut Rng,
    text: &str,
    dictionary: &[&[u8]],
    max_steps: usize,
) -> String {
    let mut bytes = text.as_bytes().to_vec();
    mutate(rng, &mut bytes, dictionary, max_steps);
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}
