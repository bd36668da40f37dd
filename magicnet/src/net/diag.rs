//! Diagnostics: the one path by which a node reports events, warnings and errors, and the
//! counter of events dropped when nobody takes them fast enough.

use std::collections::VecDeque;

use crate::event::{Diagnostic, DiagnosticKind, Event};
use crate::ids::ConnectionId;

/// Counts events dropped because a queue was full, and logs the count now and then (at
/// powers of two, so a flood costs a handful of log lines). The node's own event queue and
/// each driver's event channel keep one.
#[derive(Debug, Default, Clone, Copy)]
pub struct DroppedCounter {
    dropped: u64,
}

impl DroppedCounter {
    /// Counts one dropped event; `whose` says which queue (for the log).
    pub fn count(&mut self, whose: &'static str) {
        self.dropped += 1;
        if self.dropped.is_power_of_two() {
            tracing::warn!(dropped = self.dropped, "{whose} full: events dropped; read them more often");
        }
    }

    /// How many were dropped.
    pub fn get(&self) -> u64 {
        self.dropped
    }
}

/// The node's event queue, bounded.
pub(crate) struct Diagnostics {
    events: VecDeque<Event>,
    max: usize,
    dropped: DroppedCounter,
    /// The kinds already shown on stderr (see [`Diagnostics::tell_once`]).
    told: Vec<DiagnosticKind>,
}

/// Events the queue keeps room for once drained.
const SPARE_EVENTS: usize = 1024;

/// Kinds that usually mean the application is set up wrong (a node without an object
/// runtime, a message nobody registered, a processor that panics): the first of each is shown
/// on stderr when no `tracing` subscriber is installed, so that a new user who installed none
/// still sees it.
const SETUP_MISTAKES: [DiagnosticKind; 5] = [
    DiagnosticKind::Setup,
    DiagnosticKind::UnknownStandardMessage,
    DiagnosticKind::UnknownMessage,
    DiagnosticKind::InvalidArguments,
    DiagnosticKind::ProcessorPanicked,
];

impl Diagnostics {
    pub(crate) fn new(max: usize) -> Self {
        Self { events: VecDeque::new(), max, dropped: DroppedCounter::default(), told: Vec::new() }
    }

    /// Queues an event for the application (or counts it dropped when the queue is full).
    pub(crate) fn emit(&mut self, e: Event) {
        if self.events.len() >= self.max {
            self.dropped.count("the node's event queue");
            return;
        }
        self.events.push_back(e);
    }

    /// A warning: something suspicious that was handled. Logged and queued.
    pub(crate) fn warn(
        &mut self,
        conn: Option<ConnectionId>,
        kind: DiagnosticKind,
        message_type: Option<u64>,
        text: String,
    ) {
        tracing::warn!(conn = ?conn, ?kind, message_type, "{text}");
        self.tell_once(kind, &text);
        self.emit(Event::Warning(Diagnostic { conn, kind, message_type, text }));
    }

    /// An error: something that went wrong on this node's side. Logged and queued.
    pub(crate) fn error(
        &mut self,
        conn: Option<ConnectionId>,
        kind: DiagnosticKind,
        message_type: Option<u64>,
        text: String,
    ) {
        tracing::error!(conn = ?conn, ?kind, message_type, "{text}");
        self.tell_once(kind, &text);
        self.emit(Event::Error(Diagnostic { conn, kind, message_type, text }));
    }

    /// Shows the first diagnostic of each setup-mistake kind on stderr when no `tracing`
    /// subscriber is installed (the log would go nowhere).
    fn tell_once(&mut self, kind: DiagnosticKind, text: &str) {
        if !SETUP_MISTAKES.contains(&kind) || self.told.contains(&kind) || tracing::dispatcher::has_been_set() {
            return;
        }
        self.told.push(kind);
        eprintln!(
            "magicnet warning: {text}\n  (the first of its kind; install a tracing subscriber, e.g. \
             tracing_subscriber::fmt::init(), to see every warning, or read the node's Event::Warning events)"
        );
    }

    pub(crate) fn poll(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        // A burst grew the queue: give the memory back once it is drained.
        if e.is_none() && self.events.capacity() > SPARE_EVENTS {
            self.events = VecDeque::new();
        }
        e
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Follows a change of [`Limits::max_queued_events`](super::Limits::max_queued_events).
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
    }
}

/// The message of a caught panic.
pub(crate) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}
