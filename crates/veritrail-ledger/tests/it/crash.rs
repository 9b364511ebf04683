//! Crash safety: a child process appends under load and is killed with SIGKILL at a random
//! moment; the parent reopens the store and checks that nothing acknowledged was lost and
//! that everything verifies. 50 rounds by default; `VERITRAIL_CRASH_ROUNDS=N` for more.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use veritrail_core::checkpoint::Checkpoint;
use veritrail_core::event::EventId;
use veritrail_core::note;
use veritrail_core::record::Record;
use veritrail_ledger::conformance::{test_event, test_signer};
use veritrail_ledger::verify::{Report, VerifyOptions, verify_ledger_dir};
use veritrail_ledger::{EmbeddedStore, LedgerStore};

use crate::support::{Rng, open_embedded, rounds_and_seed, start, tenant};

const CHILD_ENV: &str = "VERITRAIL_CRASH_CHILD_DIR";
const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

/// The child: appends from 8 threads until killed, printing `ack <tenant> <id> <seq>` for
/// every event only after `append` returned. Does nothing unless run by the crash test.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var("VERITRAIL_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let ledger = Arc::new(start(open_embedded(std::path::Path::new(&dir))));
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..8u64)
        .map(|thread| {
            let ledger = Arc::clone(&ledger);
            let stdout = Arc::clone(&stdout);
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut n = 0u64;
                // Bounded: the parent kills it long before this.
                while started.elapsed() < Duration::from_secs(30) {
                    let tenant = tenant(TENANTS[((thread + n) % 3) as usize]);
                    let batch = 1 + (n * 7 + thread) % 13;
                    let events: Vec<_> = (0..batch)
                        .map(|i| {
                            let k = ((round * 8 + thread) << 32) | (n + i);
                            test_event(k, true)
                        })
                        .collect();
                    let ids: Vec<String> = events
                        .iter()
                        .map(|e| e.id().unwrap().as_str().to_owned())
                        .collect();
                    let receipts = ledger.append_blocking(tenant.clone(), events).unwrap();
                    let mut out = String::new();
                    for (id, receipt) in ids.iter().zip(&receipts) {
                        out.push_str(&format!("ack {tenant} {id} {}\n", receipt.seq));
                    }
                    let mut stdout = stdout.lock().unwrap();
                    stdout.write_all(out.as_bytes()).unwrap();
                    stdout.flush().unwrap();
                    n += batch;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn acknowledged_events_survive_sigkill_at_random_moments() {
    let (rounds, seed) = rounds_and_seed("VERITRAIL_CRASH", 50);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut acked: HashMap<(String, String), u64> = HashMap::new();
    let mut torn_tails = 0;
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("VERITRAIL_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_ack, first_ack_seen) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ');
                if parts.next() != Some("ack") {
                    continue;
                }
                let (tenant, id, seq) = (parts.next(), parts.next(), parts.next());
                // A line cut by the kill is not an acknowledgement the client saw in full.
                if let (Some(tenant), Some(id), Some(Ok(seq))) = (tenant, id, seq.map(str::parse)) {
                    if acks.is_empty() {
                        let _ = first_ack.send(());
                    }
                    acks.push((tenant.to_owned(), id.to_owned(), seq));
                }
            }
            acks
        });
        // Kill under load: some time after the first acknowledgement.
        let _ = first_ack_seen.recv_timeout(Duration::from_secs(20));
        std::thread::sleep(Duration::from_micros(rng.below(60_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        let acks = reader.join().unwrap();
        assert!(
            !acks.is_empty(),
            "round {round}: the child acknowledged nothing"
        );
        for (tenant, id, seq) in acks {
            let previous = acked.insert((tenant, id.clone()), seq);
            assert!(
                previous.is_none(),
                "round {round}: id {id} acknowledged twice"
            );
        }

        // The data directory as the crash left it verifies (a torn tail is only a warning).
        let report = verify_deeply(dir.path());
        assert!(
            report.is_ok(),
            "round {round}: after the crash: {:?}",
            report.faults
        );
        torn_tails += usize::from(!report.warnings.is_empty());

        // Reopening recovers; every acknowledged event is there, at its seq.
        let store = open_embedded(dir.path());
        check_acked(&store, &acked, round);
        drop(store);
        let report = verify_deeply(dir.path());
        assert!(
            report.is_ok(),
            "round {round}: after reopening: {:?}",
            report.faults
        );
        assert!(
            report.warnings.is_empty(),
            "round {round}: {:?}",
            report.warnings
        );
    }
    eprintln!(
        "crash test: {} acknowledged events checked, {torn_tails} rounds left a torn tail",
        acked.len()
    );
}

fn verify_deeply(data_dir: &std::path::Path) -> Report {
    let verifier = test_signer().verifier();
    let options = VerifyOptions {
        decode_records: true,
        ..VerifyOptions::default()
    };
    verify_ledger_dir(
        &data_dir.join("ledger"),
        &verifier,
        &options,
        &mut |_, _| {},
    )
    .unwrap()
}

fn check_acked(store: &EmbeddedStore, acked: &HashMap<(String, String), u64>, round: u64) {
    let mut by_tenant: HashMap<&str, Vec<(&str, u64)>> = HashMap::new();
    for ((tenant, id), seq) in acked {
        by_tenant.entry(tenant).or_default().push((id, *seq));
    }
    for (name, entries) in by_tenant {
        let tenant = tenant(name);
        let ids: Vec<EventId> = entries
            .iter()
            .map(|(id, _)| EventId::parse(id).unwrap())
            .collect();
        let id_refs: Vec<&EventId> = ids.iter().collect();
        let found = store.find_event_ids(&tenant, &id_refs).unwrap();
        let size = store.size(&tenant).unwrap();
        for ((id, seq), found) in entries.iter().zip(found) {
            assert_eq!(
                found,
                Some(*seq),
                "round {round}: {name} {id} acknowledged at seq {seq}"
            );
            let record = store.read_records(&tenant, *seq, 1).unwrap().pop().unwrap();
            let record = Record::decode(&record).unwrap();
            assert_eq!(record.event().id().map(|id| id.as_str()), Some(*id));
        }
        let checkpoint = store.checkpoint(&tenant).unwrap().unwrap();
        let opened = note::open(&checkpoint, &[test_signer().verifier()]).unwrap();
        assert_eq!(
            Checkpoint::parse(&opened.text).unwrap().size(),
            size,
            "round {round}: {name}"
        );
    }
}
