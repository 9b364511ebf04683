//! The indexer: keeps the search index caught up with the ledger.
//!
//! One thread. After every ledger commit (or every `commit_interval`, whichever comes
//! first, and at once when an ingest asks to wait until searchable) it reads each tenant's
//! committed size, applies the records the index lacks in seq order, and commits the index.
//! The index stores how far it is applied per tenant in the same commit as the documents,
//! so after a crash the indexer resumes exactly where the index is: a derived view that
//! never silently misses an event. `veritrail reindex` rebuilds it from nothing the same way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use veritrail_ledger::{Ledger, RemovalScope};
use veritrail_search::{Deletion, SearchIndex};

/// Records read from the ledger per step.
const CHUNK: usize = 5000;
/// Records applied before an intermediate commit while catching up, so that a long
/// catch-up becomes searchable bit by bit.
const CATCH_UP_COMMIT: u64 = 200_000;
/// Shortest time between two commits when ingests keep asking to wait.
const MIN_COMMIT_GAP: Duration = Duration::from_millis(20);
/// The nice value of the index's threads: above the ingest path's 0.
const INDEX_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority (nice 10) so that deriving the
/// search index yields to the ingest path (HTTP and the sequencer) when the cores are busy,
/// and catches up when they are not. On Linux priorities are per thread and threads inherit
/// their creator's, so tantivy's indexing and merge threads, created by the indexer thread
/// or by [`SearchIndex::open`] on a thread that called this, run at the same priority.
/// A failure costs only priority: it is logged.
pub fn yield_to_ingest() {
    #[cfg(target_os = "linux")]
    if let Err(err) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), INDEX_NICE)
    {
        tracing::warn!(%err, "cannot lower the search indexer's priority");
    }
}

/// The running indexer thread.
#[derive(Debug)]
pub struct Indexer {
    stop: Arc<AtomicBool>,
    /// One pending nudge is as good as many: a queue of one.
    nudge: Mutex<mpsc::SyncSender<()>>,
    progress: tokio::sync::watch::Receiver<u64>,
    commits: Arc<AtomicU64>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Indexer {
    /// Starts the thread.
    pub fn start(
        ledger: Arc<Ledger>,
        search: Arc<SearchIndex>,
        interval: Duration,
    ) -> std::io::Result<Indexer> {
        let stop = Arc::new(AtomicBool::new(false));
        let (nudge, nudges) = mpsc::sync_channel(1);
        let (progress_sender, progress) = tokio::sync::watch::channel(0);
        let commits = Arc::new(AtomicU64::new(0));
        let worker = Worker {
            ledger,
            search,
            progress: progress_sender,
            commits: Arc::clone(&commits),
        };
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("veritrail-indexer".into())
            .spawn(move || worker.run(&nudges, interval, &thread_stop))?;
        Ok(Indexer {
            stop,
            nudge: Mutex::new(nudge),
            progress,
            commits,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Asks for a pass now (an ingest waits until searchable).
    pub fn nudge(&self) {
        // Full: a pass is asked for already.
        let _ = self.nudge.lock().expect("nudge lock poisoned").try_send(());
    }

    /// Changes after every index commit.
    pub fn progress(&self) -> tokio::sync::watch::Receiver<u64> {
        self.progress.clone()
    }

    /// Index commits so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Makes a last pass (everything committed to the ledger becomes searchable) and stops.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.nudge();
        if let Some(thread) = self.thread.lock().expect("thread lock poisoned").take()
            && thread.join().is_err()
        {
            tracing::error!("the indexer thread panicked");
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    ledger: Arc<Ledger>,
    search: Arc<SearchIndex>,
    progress: tokio::sync::watch::Sender<u64>,
    commits: Arc<AtomicU64>,
}

impl Worker {
    fn run(&self, nudges: &mpsc::Receiver<()>, interval: Duration, stop: &AtomicBool) {
        yield_to_ingest();
        let mut commits = self.ledger.subscribe();
        let mut last_pass = Instant::now() - interval;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            // A pass when the ledger committed since the last one, or when nudged.
            let nudged = match nudges.recv_timeout(interval) {
                Ok(()) => true,
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            while nudges.try_recv().is_ok() {}
            let changed = commits.has_changed().unwrap_or(false);
            if !(changed || nudged || stopping) {
                continue;
            }
            let since = last_pass.elapsed();
            if since < MIN_COMMIT_GAP && !stopping {
                std::thread::sleep(MIN_COMMIT_GAP - since);
            }
            commits.borrow_and_update();
            last_pass = Instant::now();
            if let Err(err) = catch_up(&self.ledger, &self.search, &mut || self.committed()) {
                tracing::error!(%err, "the search index could not catch up; retrying");
            }
            if stopping || stop.load(Ordering::SeqCst) {
                if let Err(err) = catch_up(&self.ledger, &self.search, &mut || self.committed()) {
                    tracing::error!(%err, "the last search index pass failed");
                }
                return;
            }
        }
    }

    fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.progress.send_modify(|commits| *commits += 1);
    }
}

/// The search index's deletion of what a ledger removal took out.
fn deletion(scope: &RemovalScope) -> Deletion {
    match scope {
        RemovalScope::Below { below, except } => Deletion::Below {
            below: *below,
            except: except.clone(),
        },
        RemovalScope::Seqs(seqs) => Deletion::Seqs(seqs.clone()),
    }
}

/// Applies every committed record the index lacks, committing the index at the end (and
/// every 200,000 records on the way). `on_commit` runs after each commit.
pub fn catch_up(
    ledger: &Ledger,
    search: &SearchIndex,
    on_commit: &mut dyn FnMut(),
) -> anyhow::Result<u64> {
    let mut applied_total = 0;
    let mut uncommitted = 0;
    for (tenant, size) in ledger.committed_sizes() {
        let mut next = search.applied(&tenant);
        while next < size {
            let want = usize::try_from(size - next).unwrap_or(CHUNK).min(CHUNK);
            let read = ledger.records(&tenant, next, want)?;
            if read.end <= next {
                break;
            }
            search.apply_kept(&tenant, &read.records, read.end)?;
            // Removals reported in this range delete what the index holds of them.
            for removal in ledger.removals_reported_in(&tenant, next..read.end) {
                search.delete(&tenant, &deletion(&removal.scope))?;
            }
            let n = read.end - next;
            next = read.end;
            applied_total += n;
            uncommitted += n;
            if uncommitted >= CATCH_UP_COMMIT {
                search.commit()?;
                on_commit();
                uncommitted = 0;
            }
        }
    }
    if uncommitted > 0 {
        search.commit()?;
        on_commit();
    }
    Ok(applied_total)
}
