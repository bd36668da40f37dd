//! Hostile input, in memory (stream framing, sans-IO) and over real TCP. For every case the
//! node does not panic, the offending connection gets the documented outcome, and another
//! connection keeps working and loses nothing.

use std::time::Duration;

use magicnet::prelude::*;
use magicnet::transport::Endpoint;
use magicnet::transport::tokio::spawn;
use magicnet::{CloseReason, ConnectionId, DiagnosticKind, Event, Framing, Node, Value};

use crate::chat;
use crate::support::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// The message is dropped with this warning; the connection stays usable.
    Dropped(DiagnosticKind),
    /// DISCONNECT with this reason, then close.
    Disconnect(DisconnectReason),
    /// The peer went away; the node just forgets it.
    Closed,
}

enum Act {
    Send(Vec<u8>),
    SendThenHangUp(Vec<u8>),
    Silence,
}

struct Case {
    name: &'static str,
    before_hello: bool,
    act: Act,
    outcome: Outcome,
}

fn cases() -> Vec<Case> {
    use Outcome::*;
    let mut deep = vec![0x92, 65];
    deep.extend(std::iter::repeat_n(0x91, 1000));
    deep.push(0x90);
    vec![
        Case {
            name: "random bytes in a frame",
            before_hello: false,
            act: Act::Send(frame(&[0xc1, 0xff, 0x00, 0x13])),
            outcome: Disconnect(DisconnectReason::MALFORMED),
        },
        Case {
            name: "garbage stream",
            before_hello: false,
            act: Act::Send(vec![0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00]),
            outcome: Disconnect(DisconnectReason::MALFORMED),
        },
        Case {
            name: "array claiming 4 billion items",
            before_hello: false,
            act: Act::Send(frame(&[0x92, 65, 0xdd, 0xff, 0xff, 0xff, 0xff])),
            outcome: Disconnect(DisconnectReason::MALFORMED),
        },
        Case {
            name: "nesting 1000 deep",
            before_hello: false,
            act: Act::Send(frame(&deep)),
            outcome: Disconnect(DisconnectReason::MALFORMED),
        },
        Case {
            name: "a string, not [int, array]",
            before_hello: false,
            act: Act::Send(frame(&[0xa5, b'h', b'e', b'l', b'l', b'o'])),
            outcome: Dropped(DiagnosticKind::MalformedMessage),
        },
        Case {
            name: "three-element message",
            before_hello: false,
            act: Act::Send(frame(&[0x93, 65, 0x90, 0x90])),
            outcome: Dropped(DiagnosticKind::MalformedMessage),
        },
        Case {
            name: "string message type",
            before_hello: false,
            act: Act::Send(frame(&[0x92, 0xa1, b'x', 0x90])),
            outcome: Dropped(DiagnosticKind::MalformedMessage),
        },
        Case {
            name: "params not an array",
            before_hello: false,
            act: Act::Send(frame(&[0x92, 65, 0x05])),
            outcome: Dropped(DiagnosticKind::MalformedMessage),
        },
        Case {
            name: "unknown standard id",
            before_hello: false,
            act: Act::Send(frame(&msg(13, &()))),
            outcome: Dropped(DiagnosticKind::UnknownStandardMessage),
        },
        Case {
            name: "unknown custom id",
            before_hello: false,
            act: Act::Send(frame(&msg(999, &(1u8,)))),
            outcome: Dropped(DiagnosticKind::UnknownMessage),
        },
        Case {
            name: "wrong arity",
            before_hello: false,
            act: Act::Send(frame(&msg(65, &(s("a"), s("b"))))),
            outcome: Dropped(DiagnosticKind::InvalidArguments),
        },
        Case {
            name: "wrong type",
            before_hello: false,
            act: Act::Send(frame(&msg(65, &(Value::Bin(vec![1]),)))),
            outcome: Dropped(DiagnosticKind::InvalidArguments),
        },
        Case {
            name: "out of range standard args",
            before_hello: false,
            act: Act::Send(frame(&msg(5, &(s("a name longer than 16"), 1u8)))),
            outcome: Dropped(DiagnosticKind::InvalidArguments),
        },
        Case {
            name: "HELLO twice",
            before_hello: false,
            act: Act::Send(frame(&hello())),
            outcome: Disconnect(DisconnectReason::HELLO_TWICE),
        },
        Case {
            name: "HELLO with a 100-byte hash",
            before_hello: true,
            act: Act::Send(frame(&msg(2, &(3u16, Value::Bin(vec![0x12; 100]))))),
            outcome: Disconnect(DisconnectReason::HASH_MISMATCH),
        },
        Case {
            name: "HELLO with a string version",
            before_hello: true,
            act: Act::Send(frame(&msg(2, &(s("3"), Value::Bin(vec![0x12, 0x34, 0x56, 0x78]))))),
            outcome: Disconnect(DisconnectReason::WRONG_PROTOCOL_VERSION),
        },
        Case {
            name: "message before HELLO",
            before_hello: true,
            act: Act::Send(frame(&msg(65, &(s("early"),)))),
            outcome: Disconnect(DisconnectReason::MESSAGE_BEFORE_HELLO),
        },
        Case {
            name: "connects and sends nothing",
            before_hello: true,
            act: Act::Silence,
            outcome: Disconnect(DisconnectReason::TIMEOUT),
        },
        Case {
            name: "truncated frame, then gone",
            before_hello: false,
            act: Act::SendThenHangUp(frame(&msg(65, &(s("cut short"),)))[..6].to_vec()),
            outcome: Closed,
        },
        Case {
            name: "length prefix larger than the data, then gone",
            before_hello: false,
            act: Act::SendThenHangUp(vec![0xff, 0xff, 0x92, 65, 0x91]),
            outcome: Closed,
        },
        Case {
            name: "hangs up mid-handshake",
            before_hello: true,
            act: Act::SendThenHangUp(frame(&hello())[..3].to_vec()),
            outcome: Closed,
        },
    ]
}

fn server() -> Node {
    chat::server_node("bad input host").unwrap().0
}

fn reply_texts(msgs: &[magicnet::wire::RawMessage]) -> Vec<String> {
    msgs.iter().filter(|m| m.kind == 66).map(|m| decode::<(String,)>(m).0).collect()
}

fn custom(text: &str) -> Vec<u8> {
    frame(&msg(65, &(s(text),)))
}

fn set_name(name: &str) -> Vec<u8> {
    frame(&msg(64, &(s(name),)))
}

#[test]
fn hostile_input_in_memory() {
    for case in cases() {
        let mut h = Harness::new(server());
        let (good, _) = h.active_peer("client");
        h.feed(good, &set_name("good"));
        h.feed(good, &custom("before"));
        let mut good_msgs = h.take(good);

        let bad = if case.before_hello {
            let c = h.accept("client", Framing::Stream);
            h.take(c);
            c
        } else {
            let (c, _) = h.active_peer("client");
            h.feed(c, &set_name("bad"));
            c
        };
        h.events();
        match &case.act {
            Act::Send(b) => h.feed(bad, b),
            Act::SendThenHangUp(b) => {
                h.feed(bad, b);
                h.node.handle_closed(bad, None);
                h.pump();
            }
            Act::Silence => h.advance(Duration::from_secs(11)),
        }
        let ev = h.events();
        match case.outcome {
            Outcome::Dropped(kind) => {
                assert!(
                    ev.iter().any(|e| matches!(e, Event::Warning(d) if d.kind == kind && d.conn == Some(bad))),
                    "{}: expected a {kind:?} warning, got {ev:?}",
                    case.name
                );
                h.feed(bad, &custom("still here"));
                assert_eq!(reply_texts(&h.take(bad)), vec!["ereh llits"], "{}: the offender still works", case.name);
            }
            Outcome::Disconnect(r) => {
                let msgs = h.take(bad);
                let last = msgs.last().unwrap_or_else(|| panic!("{}: nothing sent", case.name));
                assert_eq!(last.kind, 3, "{}: {msgs:?}", case.name);
                assert_eq!(decode::<(u8, Option<String>)>(last).0, r.code(), "{}", case.name);
                assert!(h.closed.contains(&bad), "{}: closed after DISCONNECT", case.name);
            }
            Outcome::Closed => {
                assert!(
                    ev.iter().any(|e| matches!(e, Event::ConnectionClosed { conn, reason: CloseReason::PeerClosed, .. } if *conn == bad)),
                    "{}: {ev:?}",
                    case.name
                );
                assert!(h.node.connection(bad).is_none());
            }
        }
        h.feed(good, &custom("after"));
        good_msgs.extend(h.take(good));
        assert_eq!(reply_texts(&good_msgs), vec!["erofeb", "retfa"], "{}: the other peer lost nothing", case.name);
        assert!(h.node.connection(good).unwrap().is_active(), "{}", case.name);
    }
}

async fn wait_warning(
    events: &mut magicnet::transport::tokio::EventStream,
    kind: DiagnosticKind,
) -> Option<ConnectionId> {
    match events.wait_for(TIMEOUT, |e| matches!(e, Event::Warning(d) if d.kind == kind)).await {
        Some(Event::Warning(d)) => d.conn,
        other => panic!("no {kind:?} warning: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_over_tcp() {
    for case in cases() {
        let mut node = server();
        node.configure_limits(|l| l.handshake_timeout = Duration::from_millis(300));
        let (handle, mut events) = spawn(node);
        let addr = handle.listen(Endpoint::tcp("127.0.0.1:0"), role_of(&handle, "client").await).await.unwrap();

        let (mut good, _) = RawClient::active(addr).await;
        good.send_raw(&set_name("good")).await;
        good.send_raw(&custom("before")).await;
        let mut good_msgs = good.read_messages(1).await;

        let mut bad = RawClient::connect(addr).await;
        bad.read_messages(1).await; // MOTD
        if !case.before_hello {
            bad.send_raw(&frame(&hello())).await;
            bad.read_messages(1).await; // rp
            bad.send_raw(&set_name("bad")).await;
        }
        let mut bad = Some(bad);
        match &case.act {
            Act::Send(b) => bad.as_mut().unwrap().send_raw(b).await,
            Act::SendThenHangUp(b) => {
                let mut c = bad.take().unwrap();
                c.send_raw(b).await;
                drop(c);
            }
            Act::Silence => {}
        }
        match case.outcome {
            Outcome::Dropped(kind) => {
                wait_warning(&mut events, kind).await;
                let bad = bad.as_mut().unwrap();
                bad.send_raw(&custom("still here")).await;
                assert_eq!(reply_texts(&bad.read_messages(1).await), vec!["ereh llits"], "{}", case.name);
            }
            Outcome::Disconnect(r) => {
                bad.as_mut().unwrap().expect_disconnect(r).await;
            }
            Outcome::Closed => {
                let closed = events
                    .wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionClosed { reason: CloseReason::PeerClosed, .. }))
                    .await;
                assert!(closed.is_some(), "{}: the node noticed the peer left", case.name);
            }
        }
        good.send_raw(&custom("after")).await;
        // Broadcasts from the offender may arrive too; read until the reply is in.
        while reply_texts(&good_msgs).len() < 2 {
            good_msgs.extend(good.read_messages(1).await);
        }
        assert_eq!(reply_texts(&good_msgs), vec!["erofeb", "retfa"], "{}: the other peer lost nothing", case.name);
        handle.shutdown().await;
    }
}
