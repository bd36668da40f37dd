//! Attacks on the chat server (`b_server`): items 1, 2 and 7 of issue 18.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::clients::*;
use crate::report::{Verdict, mib};
use crate::server::{Example, Server};
use crate::support::{frame, msg, parse_stream};
use crate::*;

/// Log lines each chat attack looks for.
pub const WATCH: &[&str] =
    &["shared parameter", "slow consumer", "reason=203", "reason=207", "reason=200", "reason=202"];

/// Counts endings by kind, for the report.
pub fn tally(endings: &[Ending]) -> String {
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for e in endings {
        let key = match e {
            Ending::Disconnected { reason, .. } => format!("DISCONNECT {reason}"),
            Ending::Closed { .. } => "closed without DISCONNECT".into(),
            Ending::Open => "still open".into(),
            Ending::NotConnected(why) => format!("not connected ({})", why.split(" after").next().unwrap_or(why)),
        };
        *reasons.entry(key).or_default() += 1;
    }
    reasons.iter().map(|(k, n)| format!("{n} x {k}")).collect::<Vec<_>>().join(", ")
}

/// Item 1. 200 connections (40 per address, 5 /24 prefixes) each send 63 SHARED_PARAMETER
/// of 60 KB strings (3.8 MB each, 756 MB in all). Each must be disconnected with 205 and a
/// text about shared parameters; the server's RSS must stay under before + 64 MiB.
/// Returns the RSS before the attack.
pub async fn shared_parameters(server: &Server, v: &mut Verdict) -> u64 {
    const CONNECTIONS: usize = 200;
    const PARAMETERS: usize = 63;
    const VALUE_BYTES: usize = 60_000;
    let spread = Spread { first_prefix: 10, per_prefix: 40, hosts: 1 };
    let good = GoodClient::start(Example::Chat, server.tcp);
    let before = server.baseline(SETTLE).await;
    v.note(format!(
        "before: RSS {} MiB; {CONNECTIONS} attackers from {} prefixes, {PARAMETERS} x {VALUE_BYTES} B each",
        mib(before),
        spread.prefixes(CONNECTIONS)
    ));
    let value = "x".repeat(VALUE_BYTES);
    let mut payload = Vec::new();
    for p in 0..PARAMETERS {
        payload.extend(frame(&msg(SHARED_PARAMETER, &(format!("p{p}"), value.clone()))));
    }
    let payload = Arc::new(payload);
    good.begin();
    let t0 = Instant::now();
    let gate = Arc::new(Semaphore::new(100));
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|k| {
            let (payload, gate, dst, src) = (payload.clone(), gate.clone(), server.tcp, spread.addr(k));
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.unwrap();
                let p = match Peer::join(src, dst, None, Duration::from_secs(10)).await {
                    Ok(p) => p,
                    Err(e) => return Ending::NotConnected(e.to_string()),
                };
                drop(permit);
                let (mut rd, mut wr) = p.stream.into_split();
                let mut buf = p.buf;
                let far = tokio::time::Instant::now() + Duration::from_secs(60);
                let mut reader =
                    tokio::spawn(async move { read_until_disconnect(&mut rd, &mut buf, t0, far, None).await });
                let _ = wr.write_all(&payload).await;
                // once everything is sent, the verdict has a few seconds to arrive
                let end = tokio::time::Instant::now() + Duration::from_secs(3);
                match tokio::time::timeout_at(end, &mut reader).await {
                    Ok(r) => r.unwrap_or(Ending::Open),
                    Err(_) => {
                        reader.abort();
                        Ending::Open
                    }
                }
            })
        })
        .collect();
    let mut endings = Vec::new();
    for t in tasks {
        endings.push(t.await.unwrap());
    }
    let attack = t0.elapsed();
    let peak = server.peak_rss_since(t0);
    let stats = good.finish();
    v.note(format!("attack took {:.1} s; endings: {}", attack.as_secs_f64(), tally(&endings)));
    v.note(format!("peak RSS {} MiB (+{} MiB)", mib(peak), mib(peak.saturating_sub(before))));
    let right = |e: &Ending| match e {
        Ending::Disconnected { reason, detail, .. } => {
            *reason == LIMIT_EXCEEDED && detail.to_lowercase().contains("shared parameter")
        }
        _ => false,
    };
    let n_right = endings.iter().filter(|e| right(e)).count();
    if let Some(Ending::Disconnected { detail, .. }) = endings.iter().find(|e| e.reason().is_some()) {
        v.note(format!("a DISCONNECT detail: {detail:?}"));
    }
    v.check(
        n_right == CONNECTIONS,
        format!(
            "every attacker gets DISCONNECT {LIMIT_EXCEEDED} mentioning \"shared parameter\" \
             (budget {} KiB): {n_right} of {CONNECTIONS}",
            SHARED_PARAMETER_BUDGET / KIB
        ),
    );
    v.check(
        peak < before + SHARED_PARAMETER_RSS_ALLOWANCE,
        format!(
            "peak RSS {} MiB < before {} MiB + {} MiB",
            mib(peak),
            mib(before),
            SHARED_PARAMETER_RSS_ALLOWANCE / MIB
        ),
    );
    v.good_client(&stats, GOOD_P99_MAX);
    v.memory_returns(server, before, RSS_RETURN_TOLERANCE, RSS_RETURN_WITHIN).await;
    before
}

/// Item 2. 300 clients complete the handshake (SET_NAME too) and never read; 10 senders
/// broadcast 250-character lines at a little under the message rate for 10 s. The server
/// must drop non-readers as their backlog passes the per-connection budget (slow consumer
/// 203) or the node's (207), the log must say so, and the RSS must stay under before + the
/// node budget + slack. (A non-reader sent less than its budget is harmless and may stay;
/// the senders' broadcasts are charged to their work rate, 202 once over it.)
/// Returns the RSS before the attack.
pub async fn readers_that_never_read(server: &Server, v: &mut Verdict) -> u64 {
    const NON_READERS: usize = 300;
    const SENDERS: usize = 10;
    const SEND_FOR: Duration = Duration::from_secs(10);
    const TICK: Duration = Duration::from_millis(10);
    const SENDER_WINDOW: usize = 400;
    let per_tick = (SENDER_RATE as u128 * TICK.as_millis() / 1000) as usize; // 19 per 10 ms
    let readers = Spread { first_prefix: 20, per_prefix: 50, hosts: 50 };
    let senders = Spread { first_prefix: 30, per_prefix: SENDERS, hosts: SENDERS };
    let good = GoodClient::start(Example::Chat, server.tcp);
    let before = server.baseline(SETTLE).await;
    v.note(format!(
        "before: RSS {} MiB; {NON_READERS} non-readers over {} prefixes, {SENDERS} senders at {SENDER_RATE}/s \
         (limit {MESSAGE_RATE}/s) for {} s",
        mib(before),
        readers.prefixes(NON_READERS),
        SEND_FOR.as_secs()
    ));
    good.begin();
    let t0 = Instant::now();
    // the readers that never read: a small receive buffer, as a real attacker would use
    let gate = Arc::new(Semaphore::new(100));
    let joins: Vec<_> = (0..NON_READERS)
        .map(|k| {
            let (gate, dst, src) = (gate.clone(), server.tcp, readers.addr(k));
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                let mut p = Peer::join(src, dst, Some(16 * 1024), Duration::from_secs(10)).await?;
                p.stream
                    .write_all(&frame(&msg(SET_NAME, &(format!("nr{k}"),))))
                    .await
                    .map_err(|e| HsError::Io(e.to_string()))?;
                Ok::<_, HsError>(p)
            })
        })
        .collect();
    let mut silent = Vec::new();
    let mut not_joined = Vec::new();
    for j in joins {
        match j.await.unwrap() {
            Ok(p) => silent.push(p),
            Err(e) => not_joined.push(e.to_string()),
        }
    }
    v.note(format!(
        "{} non-readers joined in {:.1} s ({} did not: {:?})",
        silent.len(),
        t0.elapsed().as_secs_f64(),
        not_joined.len(),
        not_joined.first()
    ));
    // the senders
    let line = "b".repeat(250);
    let mut batch = Vec::new();
    for _ in 0..per_tick {
        batch.extend(frame(&msg(CUSTOM, &(line.clone(),))));
    }
    let batch = Arc::new(batch);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    // all senders join first, then all start at once
    let mut joined = Vec::new();
    for i in 0..SENDERS {
        match Peer::join(senders.addr(i), server.tcp, None, Duration::from_secs(10)).await {
            Ok(mut p) => {
                let _ = p.stream.write_all(&frame(&msg(SET_NAME, &(format!("sender{i}"),)))).await;
                joined.push(p);
            }
            Err(e) => v.note(format!("sender {i} could not join: {e}")),
        }
    }
    let mut sender_tasks = Vec::new();
    for p in joined {
        let (mut rd, mut wr) = p.stream.into_split();
        let (batch, stop, sent) = (batch.clone(), stop.clone(), sent.clone());
        // Senders read what they are sent (they are not the slow ones) and count the
        // server's answers (66) to their own lines: a sender keeps at most SENDER_WINDOW
        // lines unanswered. The defended server answers at once, so this never slows the
        // attack there; on today's server it bounds what is still in the pipes (each line
        // fans out to 300 queues) when the safety valve stops the attack.
        let answered = Arc::new(AtomicUsize::new(0));
        let counted = answered.clone();
        let drain = tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(256 * 1024);
            while let Ok(n) = tokio::io::AsyncReadExt::read_buf(&mut rd, &mut buf).await {
                if n == 0 {
                    break;
                }
                let n = parse_stream(&mut buf).iter().filter(|m| m.kind == CUSTOM_RESP).count();
                counted.fetch_add(n, Ordering::Relaxed);
                if buf.capacity() - buf.len() < 64 * 1024 {
                    buf.reserve(256 * 1024);
                }
            }
        });
        sender_tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut mine = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                if mine - answered.load(Ordering::Relaxed) + per_tick > SENDER_WINDOW {
                    continue;
                }
                if wr.write_all(&batch).await.is_err() {
                    break;
                }
                mine += per_tick;
                sent.fetch_add(per_tick, Ordering::Relaxed);
            }
            drop(wr);
            drain.abort();
        }));
    }
    let sending = Instant::now();
    while sending.elapsed() < SEND_FOR {
        if server.over_safety() {
            v.note(format!(
                "SAFETY: RSS {} MiB, over before + {} MiB: the senders stop after {:.1} s",
                mib(server.rss()),
                SAFETY_RSS_GROWTH / MIB,
                sending.elapsed().as_secs_f64()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let sent_for = sending.elapsed();
    for t in sender_tasks {
        let _ = t.await;
    }
    v.note(format!(
        "senders sent {} lines in {:.1} s ({:.0}/s each)",
        sent.load(Ordering::Relaxed),
        sent_for.as_secs_f64(),
        sent.load(Ordering::Relaxed) as f64 / sent_for.as_secs_f64() / SENDERS as f64
    ));
    // At t0 + 15 s, has the server closed every non-reader? Read each one to its end: what
    // its socket buffers hold, then EOF or a reset if the server closed it.
    let check_at = t0 + SLOW_READERS_CLOSED_WITHIN;
    tokio::time::sleep(check_at.saturating_duration_since(Instant::now())).await;
    let peak = server.peak_rss_since(t0);
    let closed_by_server = server.stdout.count("handle died");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let checks: Vec<_> = silent
        .into_iter()
        .map(|mut p| tokio::spawn(async move { drain_until_closed(&mut p.stream, deadline).await }))
        .collect();
    let mut closed = 0;
    for c in checks {
        closed += c.await.unwrap_or(false) as usize;
    }
    let stats = good.finish();
    let slow = server.stderr.count("slow consumer") + server.stderr.count("reason=203");
    let budget = server.stderr.count("reason=207");
    v.note(format!("peak RSS {} MiB (+{} MiB)", mib(peak), mib(peak.saturating_sub(before))));
    v.note(format!(
        "log: {slow} slow-consumer lines, {budget} over-budget (207) lines; the server saw {closed_by_server} \
         connections close before the check (the senders included)"
    ));
    for l in server.stderr.grep("slow consumer", 2) {
        v.note(format!("log: {l}"));
    }
    v.check(
        peak < before + NODE_BUDGET + NODE_BUDGET_SLACK,
        format!(
            "peak RSS {} MiB < before {} MiB + node budget {} MiB + {} MiB (each non-reader holds at most {} MiB)",
            mib(peak),
            mib(before),
            NODE_BUDGET / MIB,
            NODE_BUDGET_SLACK / MIB,
            MAX_QUEUED_BYTES / MIB
        ),
    );
    v.note(format!(
        "{closed} of {NON_READERS} non-readers were closed by the server within {} s",
        SLOW_READERS_CLOSED_WITHIN.as_secs()
    ));
    let cut = server.stderr.count("reason=202");
    v.check(
        slow + budget + cut > 0,
        format!(
            "the log shows the defence: {slow} slow consumers (203), {budget} over-budget drops (207), {cut} senders \
             over their work rate (202)"
        ),
    );
    v.check(!server.over_safety(), "the attack ran its course within the safety margin");
    v.good_client(&stats, GOOD_P99_MAX);
    v.memory_returns(server, before, RSS_RETURN_TOLERANCE, RSS_RETURN_WITHIN).await;
    before
}

/// Item 7. 5000 connections (over 80 prefixes) complete the handshake, then each sends a
/// frame header announcing 65535 bytes and 64,000 of them, and stalls. Each must get
/// DISCONNECT 200 (or 207 from the node budget) within the frame timeout + grace; RSS stays
/// under before + the node budget + slack.
pub async fn stalled_partial_frames(server: &Server, v: &mut Verdict) -> u64 {
    const CONNECTIONS: usize = 5000;
    const SENT: usize = 64_000;
    let spread = Spread { first_prefix: 100, per_prefix: 63, hosts: 63 };
    let good = GoodClient::start(Example::Chat, server.tcp);
    let before = server.baseline(SETTLE).await;
    v.note(format!(
        "before: RSS {} MiB; {CONNECTIONS} attackers over {} prefixes, each {SENT} B of a 65535-byte frame",
        mib(before),
        spread.prefixes(CONNECTIONS)
    ));
    let mut partial = vec![0xff, 0xff];
    partial.extend(std::iter::repeat_n(0x90u8, SENT));
    let partial = Arc::new(partial);
    good.begin();
    let t0 = Instant::now();
    let gate = Arc::new(Semaphore::new(200));
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|k| {
            let (gate, dst, src, partial) = (gate.clone(), server.tcp, spread.addr(k), partial.clone());
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.unwrap();
                let mut p = match Peer::join(src, dst, None, Duration::from_secs(20)).await {
                    Ok(p) => p,
                    Err(HsError::Refused(r, d)) => {
                        return Ending::Disconnected { reason: r, detail: d, after: Duration::ZERO };
                    }
                    Err(e) => return Ending::NotConnected(e.to_string()),
                };
                drop(permit);
                let sent_at = Instant::now();
                if p.stream.write_all(&partial).await.is_err() {
                    return Ending::Closed { after: Duration::ZERO };
                }
                let deadline =
                    tokio::time::Instant::now() + FRAME_TIMEOUT + FRAME_TIMEOUT_GRACE + Duration::from_secs(2);
                let mut buf = std::mem::take(&mut p.buf);
                read_until_disconnect(&mut p.stream, &mut buf, sent_at, deadline, None).await
            })
        })
        .collect();
    let mut endings = Vec::new();
    for t in tasks {
        endings.push(t.await.unwrap());
    }
    let peak = server.peak_rss_since(t0);
    let stats = good.finish();
    v.note(format!("attack took {:.1} s; endings: {}", t0.elapsed().as_secs_f64(), tally(&endings)));
    v.note(format!("peak RSS {} MiB (+{} MiB)", mib(peak), mib(peak.saturating_sub(before))));
    let limit = FRAME_TIMEOUT + FRAME_TIMEOUT_GRACE;
    let in_time = |e: &Ending| match e {
        Ending::Disconnected { reason: TIMEOUT | OVER_BUDGET, after, .. } => *after <= limit,
        // refused before the handshake because the node is over its budget: also bounded
        Ending::Disconnected { reason: SERVER_FULL, after, .. } => after.is_zero(),
        _ => false,
    };
    let ok = endings.iter().filter(|e| in_time(e)).count();
    let slowest = endings.iter().filter_map(|e| e.after()).max().unwrap_or_default();
    v.note(format!("slowest ending after {:.1} s", slowest.as_secs_f64()));
    v.check(
        ok == CONNECTIONS,
        format!(
            "every attacker gets DISCONNECT {TIMEOUT} (or {OVER_BUDGET}; or {SERVER_FULL} before MOTD) within {} s: {ok} of {CONNECTIONS}",
            limit.as_secs()
        ),
    );
    v.check(
        peak < before + NODE_BUDGET + NODE_BUDGET_SLACK,
        format!(
            "peak RSS {} MiB < before {} MiB + node budget {} MiB + {} MiB",
            mib(peak),
            mib(before),
            NODE_BUDGET / MIB,
            NODE_BUDGET_SLACK / MIB
        ),
    );
    v.good_client(&stats, GOOD_P99_MAX);
    v.memory_returns(server, before, RSS_RETURN_TOLERANCE, RSS_RETURN_WITHIN).await;
    before
}
