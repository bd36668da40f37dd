//! A fault-injection proxy: forwards TCP connections (or UDP datagrams) to an upstream and
//! breaks them on command, to see what a client or server does when the network misbehaves.
//!
//! `cargo run --example fault_proxy -- --listen PORT --upstream HOST:PORT [--udp]
//!  [--cut-every MS] [--delay MS] [--drop-every N] [--reorder]`
//!
//! Then type commands on stdin: `cut`, `cut-every MS|off`, `stall`, `resume`, `delay MS`,
//! `drop-every N|off`, `reorder on|off`, `stats`.

#[path = "common/fault_proxy.rs"]
mod fault_proxy;

use std::net::ToSocketAddrs;
use std::time::Duration;

use fault_proxy::FaultProxy;
use tokio::io::AsyncBufReadExt;

const USAGE: &str = "usage: fault_proxy --listen PORT --upstream HOST:PORT [--udp] [--cut-every MS] [--delay MS] \
                     [--drop-every N] [--reorder]
  --listen PORT        where clients connect (127.0.0.1; or HOST:PORT)
  --upstream HOST:PORT where the proxy forwards them
  --udp                forward UDP datagrams (QUIC) instead of TCP connections
  --cut-every MS       cut every connection every MS milliseconds
  --delay MS           delay everything by MS milliseconds
  --drop-every N       UDP: drop one datagram in N, each way
  --reorder            UDP: swap each pair of datagrams
Commands on stdin: cut, cut-every MS|off, stall, resume, delay MS, drop-every N|off, reorder on|off, stats";

fn number(v: Option<String>, what: &str) -> u64 {
    match v.as_deref().map(str::parse) {
        Some(Ok(n)) => n,
        _ => fail(&format!("{what} needs a number")),
    }
}

fn fail(why: &str) -> ! {
    eprintln!("{why}\n{USAGE}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let (mut listen, mut upstream, mut udp) = (None, None, false);
    let (mut cut_every, mut delay, mut drop_every, mut reorder) = (None, None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next(),
            "--upstream" => upstream = args.next(),
            "--udp" => udp = true,
            "--cut-every" => cut_every = Some(number(args.next(), "--cut-every")),
            "--delay" => delay = Some(number(args.next(), "--delay")),
            "--drop-every" => drop_every = Some(number(args.next(), "--drop-every") as u32),
            "--reorder" => reorder = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    let Some(listen) = listen else { fail("--listen is needed") };
    let listen = if listen.contains(':') { listen } else { format!("127.0.0.1:{listen}") };
    let Some(upstream) = upstream else { fail("--upstream is needed") };
    let Some(upstream) = upstream.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        fail(&format!("cannot resolve the upstream {upstream}"))
    };
    let started = if udp { FaultProxy::udp(&listen, upstream).await } else { FaultProxy::tcp(&listen, upstream).await };
    let proxy = match started {
        Ok(p) => p,
        Err(e) => fail(&format!("cannot listen on {listen}: {e}")),
    };
    proxy.cut_every(cut_every.map(Duration::from_millis));
    proxy.delay(Duration::from_millis(delay.unwrap_or(0)));
    proxy.drop_every(drop_every);
    proxy.reorder(reorder);
    println!("fault proxy on {} ({}) -> {upstream}; commands on stdin", proxy.addr(), if udp { "udp" } else { "tcp" });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => match proxy.command(&line) {
                    Ok(out) if !out.is_empty() => println!("{out}"),
                    Ok(_) => {}
                    Err(e) => eprintln!("{e}"),
                },
                // stdin closed (run in the background): keep proxying
                _ => std::future::pending::<()>().await,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
}
