//! The events and queries of the HTTP benchmark, the same for veritrail and PostgreSQL.
//!
//! Event `n` of a stream is a pure function of `(stream, n)`: both systems are loaded with
//! the same 10 million events and asked the same queries. An event is about 450 bytes of
//! JSON (actor with id, name, email and ip; one target; outcome; source; summary; details):
//! one of 20 types in 5 families (`auth.*`, `billing.*`, `data.*`, `admin.*`,
//! `api.*`, each ~20% of events; the family is the PostgreSQL `category`), one of 10,000
//! actors, ~10% failures, `occurred_at` uniform over the 90 days before [`END_UNIX`], one
//! target, a source, a summary and `details` whose `reason` and `note` are words of a
//! 1,024-word vocabulary (each word is in ~0.5% of events).

use std::fmt::Write;

/// Every event's `occurred_at` is in the 90 days before this: 2026-11-01T00:00:00Z.
pub(crate) const END_UNIX: i64 = 1_793_491_200;
/// The span of `occurred_at`.
pub(crate) const SPAN_SECS: i64 = 90 * 86_400;

/// The families: the type prefix on veritrail (`type=auth.*`) is the category on PostgreSQL.
pub(crate) const FAMILIES: [&str; 5] = ["auth", "billing", "data", "admin", "api"];

pub(crate) const TYPES: [[&str; 4]; 5] = [
    ["login", "logout", "password_changed", "mfa_enrolled"],
    [
        "invoice_paid",
        "card_updated",
        "plan_changed",
        "refund_issued",
    ],
    [
        "export_started",
        "record_deleted",
        "record_viewed",
        "report_downloaded",
    ],
    [
        "role_granted",
        "role_revoked",
        "user_invited",
        "setting_changed",
    ],
    [
        "key_created",
        "key_revoked",
        "webhook_failed",
        "rate_limited",
    ],
];

const VERBS: [[&str; 4]; 5] = [
    [
        "signed in to",
        "signed out of",
        "changed the password of",
        "enrolled MFA on",
    ],
    [
        "paid invoice for",
        "updated the card of",
        "changed the plan of",
        "issued a refund for",
    ],
    [
        "started an export of",
        "deleted a record of",
        "viewed a record of",
        "downloaded a report of",
    ],
    [
        "granted a role on",
        "revoked a role on",
        "invited a user to",
        "changed a setting of",
    ],
    [
        "created an API key for",
        "revoked an API key of",
        "saw a webhook fail for",
        "was rate limited on",
    ],
];

pub(crate) const TARGET_KINDS: [&str; 5] =
    ["account", "invoice", "dataset", "workspace", "application"];
const SERVICES: [&str; 5] = ["identity", "billing", "warehouse", "console", "gateway"];
const FIRST: [&str; 16] = [
    "Ada", "Bruno", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia", "Kofi",
    "Lena", "Marco", "Nadia", "Oscar", "Priya",
];
const LAST: [&str; 16] = [
    "Smith", "Garcia", "Okafor", "Novak", "Tanaka", "Muller", "Rossi", "Silva", "Kowalski",
    "Larsen", "Haddad", "Ivanova", "Moreau", "Jensen", "Costa", "Becker",
];
const DOMAINS: [&str; 4] = ["example.com", "acme.io", "globex.net", "initech.org"];
const REGIONS: [&str; 8] = [
    "eu-west-1",
    "eu-central-1",
    "us-east-1",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
];
/// 32 syllables: the vocabulary is every pair, 1,024 words like `kalo`, `mirentor`.
const SYLLABLES: [&str; 32] = [
    "ka", "lo", "mi", "ren", "tor", "va", "zu", "pel", "dri", "nox", "sam", "qui", "bel", "fa",
    "gor", "hu", "jin", "kro", "lum", "mes", "nar", "ost", "pra", "rix", "sol", "tev", "ulm",
    "vor", "wen", "xi", "yor", "zel",
];

/// Vocabulary word `k` (0..1024).
pub(crate) fn word(k: u64, out: &mut String) {
    out.push_str(SYLLABLES[usize::try_from(k % 32).unwrap_or(0)]);
    out.push_str(SYLLABLES[usize::try_from((k / 32) % 32).unwrap_or(0)]);
}

/// SplitMix64: a fast, good-enough generator seeded per event.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: unbiased enough for a benchmark.
        u64::try_from((u128::from(self.next_u64()) * u128::from(n)) >> 64).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }
}

/// One generated event, as the fields both systems store.
#[derive(Debug, Clone, Default)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) family: usize,
    pub(crate) event_type: String,
    pub(crate) occurred_at_ms: i64,
    pub(crate) occurred_at: String,
    pub(crate) actor_id: String,
    pub(crate) actor_name: String,
    pub(crate) actor_email: String,
    pub(crate) actor_ip: String,
    pub(crate) target_id: String,
    pub(crate) target_kind: &'static str,
    pub(crate) target_name: String,
    pub(crate) outcome: &'static str,
    pub(crate) service: &'static str,
    pub(crate) summary: String,
    /// A JSON object.
    pub(crate) details: String,
    /// The PostgreSQL `context` JSON, once [`Event::fill_context`] made it.
    pub(crate) context: String,
}

impl Event {
    #[cfg(test)]
    /// Event `n` of `stream` (a stream names a set of unique ids: the preload, or one
    /// measured phase).
    pub(crate) fn generate(stream: &str, n: u64) -> Self {
        let mut event = Event::default();
        event.fill(stream, n);
        event
    }

    /// Overwrites `self` with event `n` of `stream`, reusing its buffers.
    pub(crate) fn fill(&mut self, stream: &str, n: u64) {
        let mut rng = Rng::new(n.wrapping_mul(0xA24B_AED4_963E_E407) ^ hash(stream));
        let family = usize::try_from(rng.below(5)).unwrap_or(0);
        let kind = usize::try_from(rng.below(4)).unwrap_or(0);
        self.family = family;
        reset(&mut self.id);
        let _ = write!(self.id, "{stream}-{n:010}");
        reset(&mut self.event_type);
        let _ = write!(
            self.event_type,
            "{}.{}",
            FAMILIES[family], TYPES[family][kind]
        );
        self.occurred_at_ms = (END_UNIX - SPAN_SECS) * 1000
            + i64::try_from(rng.below(SPAN_SECS as u64 * 1000)).unwrap_or(0);
        reset(&mut self.occurred_at);
        rfc3339_ms(self.occurred_at_ms, &mut self.occurred_at);
        let actor = rng.below(10_000);
        let first = FIRST[usize::try_from(actor % 16).unwrap_or(0)];
        let last = LAST[usize::try_from((actor / 16) % 16).unwrap_or(0)];
        reset(&mut self.actor_id);
        let _ = write!(self.actor_id, "u_{actor:05}");
        reset(&mut self.actor_name);
        let _ = write!(self.actor_name, "{first} {last}");
        reset(&mut self.actor_email);
        let _ = write!(
            self.actor_email,
            "{}.{}{}@{}",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase(),
            actor,
            DOMAINS[usize::try_from(actor % 4).unwrap_or(0)]
        );
        reset(&mut self.actor_ip);
        let _ = write!(
            self.actor_ip,
            "10.{}.{}.{}",
            actor % 256,
            (actor / 256) % 256,
            rng.below(254) + 1
        );
        let target = rng.below(50_000);
        self.target_kind = TARGET_KINDS[family];
        reset(&mut self.target_id);
        let _ = write!(self.target_id, "{}_{target:05}", &self.target_kind[..3]);
        reset(&mut self.target_name);
        let _ = write!(self.target_name, "{} {target}", self.target_kind);
        let failed = rng.below(10) == 0;
        self.outcome = if failed { "failure" } else { "success" };
        self.service = SERVICES[family];
        reset(&mut self.summary);
        let _ = write!(
            self.summary,
            "{} {} {}{}",
            self.actor_name,
            VERBS[family][kind],
            self.target_name,
            if failed { " (failed)" } else { "" }
        );
        reset(&mut self.details);
        self.details.push_str("{\"reason\":\"");
        for i in 0..3 {
            if i > 0 {
                self.details.push(' ');
            }
            word(rng.below(1024), &mut self.details);
        }
        self.details.push_str("\",\"note\":\"");
        for i in 0..3 {
            if i > 0 {
                self.details.push(' ');
            }
            word(rng.below(1024), &mut self.details);
        }
        let _ = write!(self.details, "\",\"region\":\"{}\"}}", rng.pick(&REGIONS));
    }

    /// The event as the JSON object `POST /api/v1/events` takes, appended to `out`.
    pub(crate) fn write_json(&self, out: &mut String) {
        let _ = write!(
            out,
            "{{\"id\":\"{}\",\"type\":\"{}\",\"occurred_at\":\"{}\",\
             \"actor\":{{\"id\":\"{}\",\"name\":\"{}\",\"email\":\"{}\",\"ip\":\"{}\"}},\
             \"targets\":[{{\"id\":\"{}\",\"type\":\"{}\",\"name\":\"{}\"}}],\
             \"outcome\":\"{}\",\"source\":{{\"service\":\"{}\"}},\
             \"summary\":\"{}\",\"details\":{}}}",
            self.id,
            self.event_type,
            self.occurred_at,
            self.actor_id,
            self.actor_name,
            self.actor_email,
            self.actor_ip,
            self.target_id,
            self.target_kind,
            self.target_name,
            self.outcome,
            self.service,
            self.summary,
            self.details,
        );
    }

    /// Makes [`Event::context`].
    pub(crate) fn fill_context(&mut self) {
        let mut context = std::mem::take(&mut self.context);
        context.clear();
        self.write_pg_context(&mut context);
        self.context = context;
    }

    /// The `context` JSON of the PostgreSQL row: what the event has beyond the columns.
    pub(crate) fn write_pg_context(&self, out: &mut String) {
        let _ = write!(
            out,
            "{{\"actor\":{{\"name\":\"{}\",\"ip\":\"{}\"}},\
             \"targets\":[{{\"id\":\"{}\",\"type\":\"{}\",\"name\":\"{}\"}}],\
             \"source\":{{\"service\":\"{}\"}}}}",
            self.actor_name,
            self.actor_ip,
            self.target_id,
            self.target_kind,
            self.target_name,
            self.service,
        );
    }
}

fn reset(text: &mut String) {
    text.clear();
}

/// FNV-1a of a stream name.
fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Appends `ms` (Unix milliseconds) as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn rfc3339_ms(ms: i64, out: &mut String) {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        of_day / 3600,
        (of_day / 60) % 60,
        of_day % 60
    );
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The search and count queries, the same for both systems.
#[derive(Debug, Clone)]
pub(crate) enum QuerySpec {
    /// First page (50) of one family within `[from, to)` (7 days), newest first.
    Filtered {
        family: usize,
        from_ms: i64,
        to_ms: i64,
    },
    /// First page (50) of events holding every word, newest first.
    Text { words: Vec<String> },
    /// Events per family within `[from, to)` (30 days).
    CountByFamily { from_ms: i64, to_ms: i64 },
    /// Every category with its event count and its types with theirs, over the whole log
    /// (a filter drop-down).
    Categories,
}

/// What kind of query a search phase asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryKind {
    Filtered,
    TextOne,
    TextTwo,
    Count,
    Categories,
}

impl QueryKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            QueryKind::Filtered => "search: family + 7-day range, first page",
            QueryKind::TextOne => "search: free text, one word, first page",
            QueryKind::TextTwo => "search: free text, two words, first page",
            QueryKind::Count => "count by family over 30 days",
            QueryKind::Categories => "categories and types with event counts, whole log",
        }
    }

    pub(crate) fn key(self) -> &'static str {
        match self {
            QueryKind::Filtered => "search_filtered",
            QueryKind::TextOne => "search_text_1",
            QueryKind::TextTwo => "search_text_2",
            QueryKind::Count => "count_by_family",
            QueryKind::Categories => "categories",
        }
    }

    /// Query `n` of this kind.
    pub(crate) fn query(self, n: u64) -> QuerySpec {
        let mut rng = Rng::new(n.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ hash(self.key()));
        let start_ms = (END_UNIX - SPAN_SECS) * 1000;
        let day_ms = 86_400_000;
        match self {
            QueryKind::Filtered => {
                let family = usize::try_from(rng.below(5)).unwrap_or(0);
                let from_ms = start_ms + i64::try_from(rng.below(83)).unwrap_or(0) * day_ms;
                QuerySpec::Filtered {
                    family,
                    from_ms,
                    to_ms: from_ms + 7 * day_ms,
                }
            }
            QueryKind::TextOne | QueryKind::TextTwo => {
                let n_words = if self == QueryKind::TextOne { 1 } else { 2 };
                let words = (0..n_words)
                    .map(|_| {
                        let mut text = String::new();
                        word(rng.below(1024), &mut text);
                        text
                    })
                    .collect();
                QuerySpec::Text { words }
            }
            QueryKind::Count => {
                let from_ms = start_ms + i64::try_from(rng.below(60)).unwrap_or(0) * day_ms;
                QuerySpec::CountByFamily {
                    from_ms,
                    to_ms: from_ms + 30 * day_ms,
                }
            }
            QueryKind::Categories => QuerySpec::Categories,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_deterministic_valid_json_of_the_expected_size() {
        let a = Event::generate("pre", 42);
        let b = Event::generate("pre", 42);
        let mut json_a = String::new();
        a.write_json(&mut json_a);
        let mut json_b = String::new();
        b.write_json(&mut json_b);
        assert_eq!(json_a, json_b);
        let value: serde_json::Value = serde_json::from_str(&json_a).expect("valid JSON");
        assert_eq!(value["id"], "pre-0000000042");
        assert!(
            (350..600).contains(&json_a.len()),
            "{} bytes: {json_a}",
            json_a.len()
        );
        let mut context = String::new();
        a.write_pg_context(&mut context);
        serde_json::from_str::<serde_json::Value>(&context).expect("valid context");
        serde_json::from_str::<serde_json::Value>(&a.details).expect("valid details");
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        let mut text = String::new();
        rfc3339_ms(END_UNIX * 1000 + 5, &mut text);
        assert_eq!(text, "2026-11-01T00:00:00.005Z");
        text.clear();
        rfc3339_ms(951_782_400_000, &mut text);
        assert_eq!(text, "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn families_and_failures_have_the_intended_shares() {
        let mut families = [0u32; 5];
        let mut failures = 0;
        for n in 0..10_000 {
            let event = Event::generate("t", n);
            families[event.family] += 1;
            failures += u32::from(event.outcome == "failure");
        }
        for count in families {
            assert!((1700..2300).contains(&count), "{families:?}");
        }
        assert!((800..1200).contains(&failures), "{failures}");
    }
}
