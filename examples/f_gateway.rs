//! A gateway: takes clients on any transport and forwards each one to an upstream server as a
//! virtual connection, over one authenticated link. Clients cannot tell: MOTD, HELLO, `rp`,
//! shared parameters and every message are the server's.
//!
//! ```text
//! cargo run --example b_server -- --port 5000 --gateway-port 7000 --no-clients
//! cargo run --example f_gateway -- --port 6000 --upstream 127.0.0.1:7000
//! python examples/python/b_client.py 6000     # or any client, on any transport
//! ```
//!
//! The gateway applies the limit flags of the example servers to its clients (rates,
//! per-address caps, timeouts, hostile input stop here); the server applies its own to the
//! virtual connections.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/stack.rs"]
mod stack;

use magicnet::Event;
use magicnet::gateway::{Gateway, GatewayConfig};

#[tokio::main]
async fn main() -> Result<(), stack::Failure> {
    chat::init_logging();
    let mut upstream = None;
    let mut upstream_ca: Option<String> = None;
    let mut targets: Vec<String> = Vec::new();
    let mut name = String::from("gateway");
    let mut quiet = false;
    let mut flag = |arg: &str, value: &mut dyn FnMut(&str) -> Result<String, String>| {
        match arg {
            "--upstream" => upstream = Some(value(arg)?),
            "--upstream-ca" => upstream_ca = Some(value(arg)?),
            "--transfer-target" => targets.push(value(arg)?),
            "--name" => name = value(arg)?,
            "--quiet" => quiet = true,
            _ => return Ok(false),
        }
        Ok(true)
    };
    let extra = stack::ExtraFlags {
        usage: "--upstream HOST:PORT[,STANDBY...] [--transfer-target HOST:PORT]... [--upstream-ca FILE] [--name NAME] [--quiet]",
        help: "\n  --upstream HOST:PORT the server's gateway port (its --gateway-port); more, comma-separated, are
                       standbys: when the link is lost, the clients are sent SHUTDOWN and the
                       gateway links to the next one that answers (without: it exits)
  --transfer-target HOST:PORT
                       also link to this server's gateway port: the servers may move clients
                       there (b_server's --move-to), without the clients reconnecting
  --upstream-ca FILE   link over TLS, trusting the certificate(s) in this PEM file (the server's
                       --gateway-tls)
  --name NAME          this gateway's name in the server's logs (default gateway)
  --quiet              print no line per connection",
        parse: &mut flag,
    };
    let options = stack::server_options(6000, extra);
    let Some(upstream) = upstream else {
        eprintln!("f_gateway needs --upstream HOST:PORT (the server's --gateway-port); try --help");
        std::process::exit(2);
    };
    // the first is the upstream, the others standbys
    let mut list = upstream.split(',').map(str::trim).filter(|u| !u.is_empty());
    let first = list.next().unwrap_or_default().to_owned();
    let mut config = GatewayConfig::new(first).secret(options.secret()).name(name);
    for standby in list {
        config = config.standby(standby);
    }
    for target in targets {
        config = config.transfer_target(target);
    }
    if let Some(ca) = upstream_ca {
        config = config.tls(magicnet::tls::ClientTls::trusting_pem_file(&ca)?);
    }
    let (gateway, mut events) = Gateway::start(config).await?;
    println!("gateway linked to {upstream}");
    stack::serve(gateway.handle(), gateway.client_role(), &options).await?;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::ConnectionActivated { conn, .. }) if !quiet => println!("client: {conn}"),
                Some(Event::ConnectionClosed { conn, reason, .. }) if !quiet => println!("client left: {conn} ({reason:?})"),
                Some(Event::Gateway(g)) => println!("upstream link: {g:?}"),
                Some(Event::Transfer(t)) if !quiet => println!("transfer: {t:?}"),
                Some(_) => {}
                // the gateway stops by itself only when its upstream is gone
                None => {
                    eprintln!("upstream lost: {}", gateway.upstream_lost().await);
                    std::process::exit(1);
                }
            },
            why = gateway.upstream_lost() => {
                eprintln!("upstream lost: {why}");
                std::process::exit(1);
            }
            _ = tokio::signal::ctrl_c() => {
                println!("shutting down");
                gateway.shutdown().await;
                break;
            }
        }
    }
    Ok(())
}
