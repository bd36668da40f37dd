//! What one attack test measured and which of its assertions held: every measurement is
//! printed (`-- --nocapture` shows them as they come), every assertion is checked, and the
//! test fails at the end listing all the assertions that did not hold (not only the first).

use std::time::{Duration, Instant};

use crate::MIB;
use crate::clients::{GoodStats, ms};
use crate::server::Server;

pub struct Verdict {
    name: String,
    started: Instant,
    failures: Vec<String>,
    checks: usize,
}

impl Verdict {
    pub fn new(name: &str) -> Self {
        println!("\n=== attack {name} ===");
        Self { name: name.to_owned(), started: Instant::now(), failures: Vec::new(), checks: 0 }
    }

    /// A measurement.
    pub fn note(&mut self, what: impl AsRef<str>) {
        println!("[{} +{:5.1}s] {}", self.name, self.started.elapsed().as_secs_f64(), what.as_ref());
    }

    /// An assertion: recorded, printed, and failed at the end if it does not hold.
    pub fn check(&mut self, ok: bool, what: impl AsRef<str>) {
        self.checks += 1;
        let what = what.as_ref();
        println!("[{}] {} {what}", self.name, if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.failures.push(what.to_owned());
        }
    }

    /// The good client held up: it got answers, was not dropped, and its p99 is under `max`.
    pub fn good_client(&mut self, stats: &GoodStats, max: Duration) {
        self.note(stats.summary());
        self.check(
            stats.answered() > 0 && stats.error.is_none(),
            format!(
                "the good client got answers throughout ({} of {} probes answered{})",
                stats.answered(),
                stats.rtts.len(),
                stats.error.as_ref().map(|e| format!("; it failed: {e}")).unwrap_or_default()
            ),
        );
        self.check(stats.p99() < max, format!("good client p99 {:.1} ms < {:.0} ms", ms(stats.p99()), ms(max)));
    }

    /// Item 8: the RSS comes back to within `tolerance` of `before` within `within`.
    pub async fn memory_returns(&mut self, server: &Server, before: u64, tolerance: u64, within: Duration) {
        self.memory_returns_to(server, "before", before, tolerance, within).await;
    }

    /// The same, to a reference other than the RSS before the attack.
    pub async fn memory_returns_to(
        &mut self,
        server: &Server,
        what: &str,
        before: u64,
        tolerance: u64,
        within: Duration,
    ) {
        let (rss, took) = server.wait_rss_below(before + tolerance, within).await;
        match took {
            Some(t) => self.note(format!("RSS back to {} MiB after {:.1} s", mib(rss), t.as_secs_f64())),
            None => self.note(format!("RSS still {} MiB after {:.0} s", mib(rss), within.as_secs_f64())),
        }
        self.check(
            took.is_some(),
            format!(
                "RSS returns to within {} MiB of {what} ({} MiB) within {:.0} s: it is {} MiB",
                tolerance / MIB,
                mib(before),
                within.as_secs_f64(),
                mib(rss)
            ),
        );
    }

    pub fn finish(self) {
        let took = self.started.elapsed();
        println!(
            "=== attack {}: {} of {} checks held, {:.1} s ===",
            self.name,
            self.checks - self.failures.len(),
            self.checks,
            took.as_secs_f64()
        );
        if !self.failures.is_empty() {
            panic!(
                "attack {}: {} of {} assertions failed:\n  - {}",
                self.name,
                self.failures.len(),
                self.checks,
                self.failures.join("\n  - ")
            );
        }
    }
}

/// Bytes as MiB with one decimal.
pub fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / MIB as f64)
}
