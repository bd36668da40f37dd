//! Micro-benchmarks (criterion): encoding and decoding typical messages, the node's
//! decode + validate + dispatch path, and zone fan-out.
//!
//! `cargo bench --features bench --bench codec`

mod common;

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use common::{BenchClientFields, BenchServer, Ping, Pos};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use magicnet::object::{CreateOptions, ZoneId};
use magicnet::prelude::*;
use magicnet::wire::{self, NetType, PayloadItem, PayloadIter};
use magicnet::{Framing, NetMessage, Output};

fn encode_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode custom message (one int)", |b| {
        let mut w = Vec::with_capacity(64);
        b.iter(|| {
            w.clear();
            let m = NetMessage::from_message(black_box(&Ping(123_456))).unwrap();
            wire::encode_message(m.kind, &m.params, &mut w);
            black_box(&w);
        })
    });
    let mut ping = Vec::new();
    wire::encode_message(64, &wire::to_vec(&Ping(123_456)).unwrap(), &mut ping);
    let ping = Bytes::from(ping);
    g.bench_function("decode custom message (one int)", |b| {
        b.iter(|| {
            for item in PayloadIter::new(black_box(ping.clone()), 32) {
                if let Ok(PayloadItem::Message(m)) = item {
                    black_box(wire::from_slice::<Ping>(&m.params).unwrap());
                }
            }
        })
    });
    let field_args = wire::to_vec(&(Pos { x: 1, y: -2, z: 300 },)).unwrap();
    g.bench_function("encode field call (small struct)", |b| {
        let mut w = Vec::with_capacity(64);
        b.iter(|| {
            w.clear();
            let args = wire::to_vec(black_box(&(Pos { x: 1, y: -2, z: 300 },))).unwrap();
            let params = wire::to_vec(&(1u64 << 32 | 7, 0u8, 0u8, magicnet::Value::Nil)).unwrap();
            wire::encode_message(10, &params[..params.len() - 1], &mut w);
            w.extend_from_slice(&args);
            black_box(&w);
        })
    });
    let mut set = Vec::new();
    let params = {
        let mut p = Vec::new();
        wire::msgpack::write_array_len(&mut p, 4);
        (1u64 << 32 | 7).encode(&mut p).unwrap();
        0u8.encode(&mut p).unwrap();
        0u8.encode(&mut p).unwrap();
        p.extend_from_slice(&field_args);
        p
    };
    wire::encode_message(10, &params, &mut set);
    let set = Bytes::from(set);
    g.bench_function("decode field call (small struct)", |b| {
        b.iter(|| {
            for item in PayloadIter::new(black_box(set.clone()), 32) {
                if let Ok(PayloadItem::Message(m)) = item {
                    let (oid, role, field, (pos,)): (u64, u8, u8, (Pos,)) = wire::from_slice(&m.params).unwrap();
                    black_box((oid, role, field, pos));
                }
            }
        })
    });
    g.finish();
}

fn dispatch(c: &mut Criterion) {
    // 1000 pings in one payload through a live server node: decode, validate (u32 range),
    // dispatch to the processor.
    let mut node = common::server(false);
    let role = node.role("client").unwrap();
    let now = Instant::now();
    let conn = node.accept(role, Framing::Datagram, None, now).unwrap();
    let mut hello = Vec::new();
    wire::encode_message(
        2,
        &wire::to_vec(&(3u16, magicnet::Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..]))).unwrap(),
        &mut hello,
    );
    node.handle_datagram(conn, Bytes::from(hello), now);
    while node.poll_output().is_some() {}
    let mut payload = Vec::new();
    for i in 0..1000u32 {
        wire::encode_message(64, &wire::to_vec(&Ping(i)).unwrap(), &mut payload);
    }
    let payload = Bytes::from(payload);
    let mut g = c.benchmark_group("node");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("decode + validate + dispatch (1000 custom messages)", |b| {
        b.iter(|| node.handle_datagram(conn, black_box(payload.clone()), now))
    });
    g.finish();
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fan-out");
    for viewers in [10usize, 100, 1000] {
        let mut node = common::server(true);
        let role = node.role("client").unwrap();
        let now = Instant::now();
        let mut hello = Vec::new();
        wire::encode_message(
            2,
            &wire::to_vec(&(3u16, magicnet::Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..]))).unwrap(),
            &mut hello,
        );
        for _ in 0..viewers {
            let conn = node.accept(role, Framing::Stream, None, now).unwrap();
            let mut f = (hello.len() as u16).to_be_bytes().to_vec();
            f.extend_from_slice(&hello);
            node.handle_input(conn, &f, now);
            node.set_visible_zones(conn, &[ZoneId(1)]).unwrap();
        }
        let oid = node.create_object(BenchServer::default(), CreateOptions::zone(ZoneId(1)), |_, _| {}).unwrap();
        while node.poll_output().is_some() {}
        g.throughput(Throughput::Elements(100 * viewers as u64));
        g.bench_function(format!("100 field updates to {viewers} viewers, then one drain"), |b| {
            let mut i = 0;
            b.iter(|| {
                node.with_object(oid, |o: &mut BenchServer, ctx| {
                    for _ in 0..100 {
                        i += 1;
                        o.send_moved(ctx, Pos { x: i, y: 0, z: 0 }).unwrap();
                    }
                })
                .unwrap();
                let mut bytes = 0;
                while let Some(out) = node.poll_output() {
                    if let Output::Transmit { data, .. } = out {
                        bytes += data.len();
                    }
                }
                black_box(bytes)
            })
        });
        g.throughput(Throughput::Elements(viewers as u64));
        g.bench_function(format!("field update to {viewers} viewers (route + frame + drain)"), |b| {
            let mut i = 0;
            b.iter_batched(
                || {
                    i += 1;
                    i
                },
                |i| {
                    node.with_object(oid, |o: &mut BenchServer, ctx| o.send_moved(ctx, Pos { x: i, y: 0, z: 0 }))
                        .unwrap();
                    let mut bytes = 0;
                    while let Some(out) = node.poll_output() {
                        if let Output::Transmit { data, .. } = out {
                            bytes += data.len();
                        }
                    }
                    black_box(bytes)
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, encode_decode, dispatch, fanout);
criterion_main!(benches);
